"""Mutation testing, one module at a time: mutmut for the Python package, StrykerJS for the
browser's modules (cvae/web/*.js). Not in CI (minutes to hours); docs/mutation.md holds the
latest figures per module.

    python tools/mutation.py cvae/core/files.py            # mutmut, that module's fast tests
    python tools/mutation.py cvae/site.py --tests tests/test_site.py
    python tools/mutation.py js                            # Stryker over cvae/web/*.js, node --test tests/js
    python tools/mutation.py js --files cvae/web/explorer.js

Python: the working tree (tracked and untracked files git does not ignore) is copied to a
scratch folder (``--work``, default a temporary one) with a ``[tool.mutmut]`` table naming the
module and its tests, and ``mutmut run`` runs there under ``nice`` (mutmut 3 writes its
mutants/ beside the code; your tree is never touched). The tests are the module's fast
inner-loop ones (TESTS below, or ``--tests``); browser, load and long tests are left to the
suite. Needs ``pip install -r tools/requirements-mutation.txt``.

JavaScript: Stryker (tools/stryker/, ``npm ci --prefix tools/stryker``) mutates cvae/web/*.js
(or ``--files``) in a sandbox and runs, against each mutant (the command runner), ``node
--test`` with the test files under tests/js that reach the files mutated (import them, or a
module that imports them), then the DOM tests in Chromium (tests/dom/run.py) with the files of
tests/dom that reach them; without ``--files``, all of both. The DOM tests run in one Chromium
kept for the whole run (``run.py --serve``).

mutmut forks each mutant's test run from a process that imported the code already, so code that
runs at import time (a dataclass's field factory, a module's constants) keeps its original
behaviour there and its mutants survive whatever the tests. ``--fresh NAME...`` (after a run,
with its ``--work``) tests such mutants the slow way: each is written into the scratch copy's
source (``mutmut apply``) and the module's tests run in a new pytest process. Every mutant mutmut
calls a timeout is checked that way too, against a wall-clock limit: on a loaded machine mutmut's
limit also stops mutants that do not hang. mutmut keeps each mutant's verdict across runs in one
``--work`` folder, new tests or not: ``--again`` runs the survivors and timeouts once more.

Each run ends with one line per module: mutants, killed, survived, other (no tests, timeout),
and the survivors' names (``--show`` prints their diffs: ``mutmut show NAME`` in the
scratch folder).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STRYKER = REPO / "tools" / "stryker"

# The fast tests that guard each module (seconds to a minute or two each, no browser, no training in a
# child process). Tests marked
# slow, browser or load (pytest.ini) are left out of every run (FAST), here and with --tests.
TESTS: dict[str, list[str]] = {
    "cvae/core/files.py": ["tests/test_files.py", "tests/test_files_behaviour.py"],
    "cvae/training/budget.py": ["tests/test_budget.py", "tests/test_budget_clock.py", "tests/test_budget_plan.py"],
    "cvae/training/config.py": ["tests/test_config.py", "tests/test_budget.py::test_the_schedule_stretches_over_the_planned_steps",
                                "tests/test_train.py::test_learning_rate_schedule_warms_up_then_follows_the_cosine",
                                "tests/test_train.py::test_bad_averaging_options_are_refused",
                                "tests/test_cli.py::test_each_training_option_sets_its_config_field",
                                "tests/test_cli.py::test_bad_training_options_are_refused_before_the_data",
                                "tests/test_cli.py::test_seconds_means_the_quick_recipe_unless_another_is_named",
                                "tests/test_cli.py::test_the_options_are_the_configs_fields"],
    "cvae/core/checkpoint.py": ["tests/test_checkpoint.py", "tests/test_checkpoint_files.py"] + [
        f"tests/test_robustness.py::test_{t}" for t in (
            "code_in_pickle_is_refused_and_never_runs", "broken_and_foreign_files_give_one_line_naming_the_file",
            "wrong_contents_give_one_line_naming_the_file", "wrong_latent_size_says_which_shapes",
            "huge_config_in_a_tiny_file_allocates_nothing", "bare_state_dict_is_explained",
            "oversized_file_is_refused_before_reading", "missing_file_or_folder",
            "consistent_other_latent_size_loads_but_grid_refuses",
            "full_disk_gives_clear_error_and_keeps_previous_file", "saving_where_a_folder_cannot_be_made")] + [
        f"tests/test_importer.py::test_{t}" for t in (
            "pytorch_state_dict_and_checkpoint_are_read", "importing_a_checkpoint_copies_it_whole",
            "a_pickle_that_tries_to_run_code", "an_empty_file")],
    "cvae/core/shipped.py": ["tests/test_shipped_files.py", "tests/test_shipped.py",
                             "tests/test_film.py::test_the_shipped_film_is_small_valid_and_for_the_shipped_model",
                             "tests/test_film.py::test_the_shipped_film_is_shown_only_beside_the_shipped_checkpoint"],
    "cvae/core/model.py": ["tests/test_model.py", "tests/test_model_behaviour.py"],
    "cvae/core/importer.py": ["tests/test_importer.py", "tests/test_keras_alignment.py", "tests/test_importer_files.py"],
    "cvae/core/posterior.py": ["tests/test_posterior.py"],
    "cvae/core/payloads.py": ["tests/test_payloads.py"],
    "cvae/core/data.py": ["tests/test_data_dirs.py", "tests/test_data.py"],
    "cvae/core/summary.py": ["tests/test_summary.py"],
    "cvae/core/geometry.py": ["tests/test_geometry.py", "tests/test_geometry_density.py"],
    "cvae/core/explain.py": ["tests/test_explain.py"],
    "cvae/core/latent.py": ["tests/test_latent_maths.py", "tests/test_latent.py", "tests/test_figures.py",
                            "tests/test_properties.py", "tests/test_overlays.py"],
    "cvae/training/pace.py": ["tests/test_pace.py"],
    "cvae/training/augment.py": ["tests/test_augment.py"],
    "cvae/training/callbacks.py": ["tests/test_callbacks.py"],
    "cvae/training/hardware.py": ["tests/test_hardware.py"],
    # test_kl_warmup.py's two tests that train a run are left out (seconds each): tests/test_step_behaviour.py
    # covers what they reach, the run's optimizer and its ways.
    "cvae/training/step.py": ["tests/test_step_behaviour.py",
                              "tests/test_train.py::test_split_batch_gives_the_whole_batch_gradient",
                              "tests/test_train.py::test_augmented_training_scores_the_augmented_images",
                              "tests/test_gemm.py::test_the_gemm_step_leaves_frozen_parameters_alone"] + [
        f"tests/test_kl_warmup.py::test_{t}" for t in (
            "each_way_of_a_step_weights_the_kl_term_and_reports_the_whole_loss",
            "free_bits_leave_out_the_kl_gradient_of_a_dimension_under_the_floor", "no_free_bits_is_the_plain_gradient")],
    # tests/test_film.py's fast tests share a module fixture that trains a run (tens of seconds): the
    # recorder's and the film's own behaviour tests need no training and no MNIST.
    "cvae/training/recorder.py": ["tests/test_recorder_behaviour.py"],
    "cvae/core/film.py": ["tests/test_film_behaviour.py",
                          "tests/test_checkpoint_files.py::test_the_training_film_travels_with_the_weights",
                          "tests/test_checkpoint_files.py::test_a_film_of_another_latent_space_is_named_and_the_weights_still_load"],
    "cvae/training/loop.py": ["tests/test_loop_behaviour.py",
                              "tests/test_kl_warmup.py::test_a_run_anneals_the_kl_term_over_its_planned_steps",
                              "tests/test_kl_warmup.py::test_a_run_passes_its_free_bits_to_every_step"],
    "cvae/training/jobs.py": ["tests/test_jobs_behaviour.py", "tests/test_jobs.py::test_every_event_kind_reaches_its_field"],
    # gemm.py: scoped to its entry points (--functions check_layout native_bf16 kl_floor_mask loss_and_grads)
    "cvae/training/gemm.py": ["tests/test_gemm_entry.py", "tests/test_gemm.py",
                              "tests/test_kl_warmup.py::test_the_matrix_products_weight_the_kl_terms_gradient",
                              "tests/test_kl_warmup.py::test_free_bits_leave_out_the_kl_gradient_of_a_dimension_under_the_floor"],
    "cvae/core/encodings.py": ["tests/test_encodings.py", "tests/test_images.py::test_encodings_csv_round_trips"],
    "cvae/site.py": ["tests/test_site.py", "tests/test_site_written.py", "tests/test_site_files.py"],
    "ui/models.py": ["tests/test_model_link.py", "tests/test_models_list.py", "tests/test_model_info.py",
                     "tests/test_model_details.py", "tests/test_model_picker.py"],
    "ui/training.py": ["tests/test_run_names.py", "tests/test_training_text.py", "tests/test_training_form.py",
                       "tests/test_training_ui.py::test_a_finished_run_that_collapsed_says_so",
                       "tests/test_training_ui.py::test_a_running_budget_too_short_to_spread_says_so_above_the_film",
                       "tests/test_training_ui.py::test_every_tab_sees_the_latest_snapshot_and_curves_of_a_run"],
}
FAST = "not slow and not browser and not load"
NICE = ["nice", "-n", "15"]
# Each mutant's tests run in a process forked from a server that has imported the tests but run nothing
# (process_isolation "forkserver"): forked from mutmut's own process, which ran the suite, they inherit
# torch's thread pool and can hang in its first parallel op.
# mutmut calls a mutant a timeout when its test run lasts more than (its tests' time + 1 s) x this x 2
# seconds of wall-clock time, the forked test process's collection and imports included. On a loaded
# shared machine a mutant that does not hang can take that long too; every timeout is therefore
# run again in a fresh process against a wall-clock limit (run_fresh), so those come out as the
# survivors they are. mutmut's default (15) keeps such false timeouts rare.
TIMEOUT_MULTIPLIER = 15.0


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def scratch_copy(work: Path) -> None:
    for f in tracked_files():
        dst = work / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, dst)


def toml_list(items) -> str:
    return "[" + ", ".join(json.dumps(str(i)) for i in items) + "]"


def mutmut_statuses(work: Path, env: dict) -> dict[str, str]:
    res = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=work, env=env,
                         capture_output=True, text=True)
    statuses = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s+(\S+): (.+)$", line)
        if m:
            statuses[m.group(1)] = m.group(2).strip()
    return statuses


def function_patterns(module: str, functions: list[str]) -> list[str]:
    """mutmut's names for the mutants of ``functions`` (``name``, ``Class.method``, globs allowed) of
    ``module``: ``--functions`` scopes a run to them (a module's public entry points, say)."""
    dotted = module[:-3].replace("/", ".")
    out = []
    for f in functions:
        cls, _, meth = f.rpartition(".")
        out.append(f"{dotted}.x\u01c1{cls}\u01c1{meth}__mutmut_*" if cls else f"{dotted}.x_{f}__mutmut_*")
    return out


def run_python(module: str, tests: list[str], work: Path, jobs: int, show: bool, again: bool = False,
               functions: list[str] = ()) -> dict:
    if not (REPO / module).is_file():
        sys.exit(f"no such module: {module}")
    tests = tests or TESTS.get(module) or sys.exit(f"no fast tests known for {module}: give --tests")
    tests = [t for t in tests if (REPO / t.split("::")[0]).is_file()]
    scratch_copy(work)
    top = module.split("/")[0]
    also = [p for p in ("devkit.py", "app.py", "pytest.ini", "assets", "ui", "cvae", "tools", "benchmarks",
                        "deploy", "README.md", "docs", ".streamlit") if (work / p).exists() and p != top]
    with open(work / "pyproject.toml", "a", encoding="utf-8") as fh:
        fh.write(f"""
[tool.mutmut]
source_paths = {toml_list([top])}
only_mutate = {toml_list([module])}
also_copy = {toml_list(also)}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x", "-m", {json.dumps(FAST)}]
timeout_multiplier = {TIMEOUT_MULTIPLIER}
process_isolation = "forkserver"
pytest_add_cli_args_test_selection = {toml_list(tests)}
""")
    env = dict(os.environ, PYTHONPATH="", CVAE_DATA=os.environ.get("CVAE_DATA", str(REPO.parent / "shared" / "mnist")))
    t0 = time.time()
    only = function_patterns(module, functions)

    def scoped(statuses: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in statuses.items() if not only or any(fnmatch.fnmatch(k, p) for p in only)}

    # mutmut runs every mutant it is given by name, verdict or not: in a work folder that has some, only
    # the scoped mutants not yet checked are named (--again reruns the survivors and timeouts).
    named = only
    if only and (work / "mutants").is_dir():
        named = sorted(k for k, v in scoped(mutmut_statuses(work, env)).items() if v == "not checked")
    r = subprocess.run(NICE + [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *named],
                       cwd=work, env=env) if named or not only else subprocess.CompletedProcess([], 0)

    statuses = scoped(mutmut_statuses(work, env))
    # mutmut keeps a verdict when tests change: with --again, survivors and timeouts run again by name.
    survivors = sorted(k for k, v in statuses.items() if v in ("survived", "timeout"))
    if again and survivors:
        subprocess.run(NICE + [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *survivors],
                       cwd=work, env=env)
        statuses = scoped(mutmut_statuses(work, env))
    # mutmut's timeouts are wall-clock limits that a loaded machine can also reach with a mutant that
    # does not hang: each is run again in a fresh process against a limit of its own.
    timeouts = sorted(k for k, v in statuses.items() if v == "timeout")
    if timeouts:
        statuses.update(run_fresh(module, tests, work, timeouts)["fresh"])
    counts = Counter(statuses.values())
    survivors = sorted(k for k, v in statuses.items() if v == "survived")
    if show:
        for name in survivors:
            print(subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work, env=env,
                                 capture_output=True, text=True).stdout)
    return {"module": module, "functions": list(functions), "tests": tests, "mutants": len(statuses),
            "killed": counts.get("killed", 0),
            "survived": counts.get("survived", 0),
            "other": {k: v for k, v in counts.items() if k not in ("killed", "survived")},
            "survivors": survivors, "minutes": round((time.time() - t0) / 60, 1), "work": str(work),
            "mutmut_exit": r.returncode}


def run_fresh(module: str, tests: list[str], work: Path, names: list[str]) -> dict:
    """Each mutant ``names`` written into ``work``'s copy of ``module`` in turn, and the tests run in a
    new process (so code that runs at import is mutated too), with a wall-clock limit of four times
    the unmutated run's time plus 30 s (past it: "timeout", a hang)."""
    tests = tests or TESTS.get(module) or sys.exit(f"no fast tests known for {module}: give --tests")
    tests = [t for t in tests if (REPO / t.split("::")[0]).is_file()]
    src = work / module
    if not (work / "mutants").is_dir():
        sys.exit(f"{work} holds no mutmut run: run the module first with --work {work}")
    original = src.read_bytes()
    env = dict(os.environ, PYTHONPATH=str(work),
               CVAE_DATA=os.environ.get("CVAE_DATA", str(REPO.parent / "shared" / "mnist")))
    pytest = NICE + [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", "-m", FAST, *tests]
    t0 = time.time()
    base = subprocess.run(pytest, cwd=work, env=env, capture_output=True, text=True)
    if base.returncode != 0:
        sys.exit(f"the tests fail without a mutant:\n{base.stdout[-3000:]}")
    limit = 4 * (time.time() - t0) + 30
    statuses = {}
    try:
        for name in names:
            subprocess.run([sys.executable, "-m", "mutmut", "apply", name], cwd=work, env=env, check=True,
                           capture_output=True)
            if src.read_bytes() == original:
                sys.exit(f"mutmut apply {name} changed nothing in {module}")
            try:
                r = subprocess.run(pytest, cwd=work, env=env, capture_output=True, text=True, timeout=limit)
                statuses[name] = "survived" if r.returncode == 0 else "no tests" if r.returncode == 5 else "killed"
            except subprocess.TimeoutExpired:
                statuses[name] = "timeout"
            print(f"{name}: {statuses[name]}", flush=True)
            src.write_bytes(original)
    finally:
        src.write_bytes(original)
    counts = Counter(statuses.values())
    return {"module": module, "tests": tests, "fresh": statuses, "killed": counts.get("killed", 0),
            "timeout": counts.get("timeout", 0), "survived": counts.get("survived", 0), "limit_s": round(limit)}


def web_reach(names: set[str]) -> set[str]:
    """The cvae/web modules that ``names`` (file names there) import, directly or not, and themselves."""
    seen, todo = set(), list(names)
    while todo:
        n = todo.pop()
        if n in seen or not (REPO / "cvae" / "web" / n).is_file():
            continue
        seen.add(n)
        todo += re.findall(r'^import .* from "\./([\w.]+\.js)";', (REPO / "cvae" / "web" / n).read_text(), re.M)
    return seen


def js_tests_of(files: list[str], folder: str = "js", pattern: str = "*.test.js") -> list[str]:
    """The test files under tests/FOLDER that reach any of ``files`` (cvae/web/NAME.js): that
    import one of them, or a module that imports one, directly or not; the direct ones first."""
    names = {Path(f).name for f in files}
    out = []
    for t in sorted((REPO / "tests" / folder).glob(pattern)):
        imported = set(re.findall(r'/cvae/web/([\w.]+\.js)"', t.read_text()))
        if web_reach(imported) & names:
            out.append((not imported & names, str(t.relative_to(REPO))))
    return [t for _, t in sorted(out)]  # those that import them directly first: a mutant ends at its first failure


def js_command(files: list[str]) -> tuple[str, list[str]]:
    """Stryker's command for ``files``: node's tests (tests/js) that reach them, then the DOM
    tests in Chromium (tests/dom/run.py) that reach them; and the test files."""
    node = js_tests_of(files) if files else ["tests/js"]
    dom = js_tests_of(files, "dom", "*.dom.js") if files else []
    if not files and (REPO / "tests" / "dom").is_dir():
        dom = ["tests/dom"]
    parts = ([f"node --test {' '.join(node)}"] if node else []) + \
        ([f"{sys.executable} tests/dom/run.py {' '.join(t for t in dom if t != 'tests/dom')}".rstrip()] if dom else [])
    return " && ".join(parts), node + dom


@contextlib.contextmanager
def dom_server(tests: list[str]):
    """The environment for Stryker's runs: with DOM tests, one Chromium kept for all of them
    (tests/dom/run.py --serve, its socket in $CVAE_DOM_SERVER), stopped at the end."""
    env = dict(os.environ)
    if not any(t.startswith("tests/dom") for t in tests):
        yield env
        return
    sock = Path(tempfile.mkdtemp(prefix="dom-server-")) / "socket"
    server = subprocess.Popen(NICE + [sys.executable, "tests/dom/run.py", "--serve", str(sock)], cwd=REPO)
    try:
        t0 = time.time()
        while not sock.exists():
            if server.poll() is not None or time.time() - t0 > 120:
                sys.exit("the DOM tests' Chromium did not start (python tests/dom/run.py --serve)")
            time.sleep(0.2)
        env["CVAE_DOM_SERVER"] = str(sock)
        yield env
    finally:
        server.terminate()
        server.wait(30)


def run_js(files: list[str], jobs: int, only: list[str] | None = None) -> dict:
    if not (STRYKER / "node_modules" / "@stryker-mutator" / "core").is_dir():
        sys.exit("StrykerJS is not installed: npm ci --prefix tools/stryker")
    mutate = files or ["cvae/web/*.js"]
    command, tests = js_command(files)
    if only:  # --tests: these test files only (tests/js/*.test.js run by node, tests/dom/*.dom.js in Chromium)
        node, dom = [t for t in only if t.startswith("tests/js")], [t for t in only if t.startswith("tests/dom")]
        command = " && ".join(([f"node --test {' '.join(node)}"] if node else []) +
                              ([f"{sys.executable} tests/dom/run.py {' '.join(dom)}"] if dom else []))
        tests = node + dom
    if not tests:
        sys.exit(f"no test in tests/js or tests/dom reaches {', '.join(files)}")
    report = Path(tempfile.mkdtemp(prefix="stryker-report-")) / "mutation.json"
    config = {
        "$schema": "./node_modules/@stryker-mutator/core/schema/stryker-schema.json",
        "testRunner": "command", "commandRunner": {"command": command},
        "mutate": mutate, "concurrency": jobs, "coverageAnalysis": "off", "timeoutMS": 30000,
        "reporters": ["clear-text", "json", "progress"], "jsonReporter": {"fileName": str(report)},
        "tempDirName": str(Path(tempfile.gettempdir()) / "stryker-tmp-cvae"), "cleanTempDir": True,
        "ignorePatterns": ["/runs", "/test-artifacts", "/site", "/tools/stryker/node_modules", "/.git"],
    }
    cfg = Path(tempfile.mkdtemp(prefix="stryker-conf-")) / "stryker.config.json"
    cfg.write_text(json.dumps(config, indent=2))
    t0 = time.time()
    with dom_server(tests) as env:
        subprocess.run(NICE + [str(STRYKER / "node_modules" / ".bin" / "stryker"), "run", str(cfg)], cwd=REPO, env=env)
    data = json.loads(report.read_text())
    per_file = {}
    for name, f in data["files"].items():
        c = Counter(m["status"] for m in f["mutants"])
        per_file[name] = {"mutants": sum(c.values()), "killed": c.get("Killed", 0) + c.get("Timeout", 0),
                          "survived": c.get("Survived", 0), "no coverage": c.get("NoCoverage", 0),
                          "other": {k: v for k, v in c.items() if k not in ("Killed", "Timeout", "Survived",
                                                                             "NoCoverage")},
                          "survivors": [f"{name}:{m['location']['start']['line']} {m['mutatorName']}: "
                                        f"{m.get('replacement', '')!r}" for m in f["mutants"]
                                        if m["status"] == "Survived"]}
    return {"module": "cvae/web (Stryker)", "tests": tests, "files": per_file, "minutes": round((time.time() - t0) / 60, 1),
            "report": str(report)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("module", help="a Python file (cvae/core/files.py) or js")
    p.add_argument("--tests", nargs="*", default=[], help="pytest selections (default: TESTS[module]); js: test files "
                   "of tests/js and tests/dom (default: those that reach --files)")
    p.add_argument("--files", nargs="*", default=[], help="js: the files to mutate (default cvae/web/*.js)")
    p.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1: a shared machine)")
    p.add_argument("--work", type=Path, help="python: the scratch folder (default: a new temporary one)")
    p.add_argument("--fresh", nargs="+", metavar="NAME", help="python, after a run with --work: test these mutants "
                   "each in a new pytest process (code that runs at import time)")
    p.add_argument("--again", action="store_true", help="python, with the --work of an earlier run: run its "
                   "survivors and timeouts again (after tests were added; mutmut keeps a verdict otherwise)")
    p.add_argument("--functions", nargs="+", default=[], metavar="NAME", help="python: mutate only these "
                   "functions of MODULE (name, Class.method; globs allowed), e.g. a module's public entry points")
    p.add_argument("--show", action="store_true", help="print each survivor's diff")
    p.add_argument("--json", type=Path, help="also write the summary here")
    args = p.parse_args(argv)
    if args.module == "js":
        out = run_js(args.files, args.jobs, args.tests)
    elif args.fresh:
        if not args.work:
            sys.exit("--fresh needs the --work folder of a run of the module")
        out = run_fresh(args.module, args.tests, args.work, args.fresh)
    else:
        work = args.work or Path(tempfile.mkdtemp(prefix="mutmut-" + args.module.replace("/", "_") + "-"))
        out = run_python(args.module, args.tests, work, args.jobs, args.show, args.again, args.functions)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

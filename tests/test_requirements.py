"""Every third-party module the product, the tests and the benchmarks import is named in a
requirements file, so the environment that `.ci/run` builds from those files alone runs all of
them: the product's own imports (cvae/, ui/, app.py) from requirements.txt, what users install;
the tests' and the benchmarks' from requirements-dev.txt.

Imports are read from the source (ast), so an import inside a function or a rarely taken branch
counts too; an import name is mapped to the distribution that provides it by
``importlib.metadata.packages_distributions()`` (``yaml`` -> PyYAML, ``PIL`` -> pillow).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from devkit import REPO

PRODUCT = ["cvae", "ui", "app.py"]
DEV = ["tests", "benchmarks"]


def sources(roots: list[str], repo: Path = REPO) -> list[Path]:
    out = []
    for root in roots:
        p = repo / root
        out.extend([p] if p.is_file() else sorted(p.rglob("*.py")))
    return out


def local_names(repo: Path = REPO) -> set[str]:
    """Names that resolve to this repository's own modules: the packages, app, and the helper
    modules beside the tests and the benchmarks (each folder is on sys.path when they run)."""
    return {"cvae", "ui", "app"} | {p.stem for d in DEV for p in (repo / d).rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    """Top-level names of every absolute import in ``path``."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def third_party(files: list[Path], local: set[str]) -> dict[str, list[str]]:
    """{import name: the files importing it} for every name that is neither stdlib nor local."""
    found: dict[str, list[str]] = {}
    for f in files:
        for name in imports_of(f):
            if name in sys.stdlib_module_names or name in local or name == "__future__":
                continue
            found.setdefault(name, []).append(f.name)
    return found


def normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()  # PEP 503


def declared(requirements: Path) -> set[str]:
    """The distributions a requirements file names, following ``-r`` includes (normalized)."""
    out = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            out |= declared(requirements.parent / line.split(None, 1)[1])
        elif not line.startswith("-"):  # -e ., --index-url ...: not a named distribution
            out.add(normalize(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line).group()))
    return out


def unprovided(imports: dict[str, list[str]], names: set[str], providers: dict[str, list[str]]) -> list[str]:
    """One sentence for each imported name that no distribution in ``names`` provides."""
    bad = []
    for name, files in sorted(imports.items()):
        dists = providers.get(name)
        if not dists:
            bad.append(f"{name} (imported by {', '.join(sorted(set(files)))}) is installed by no "
                       f"distribution in this environment")
        elif not {normalize(d) for d in dists} & names:
            bad.append(f"{name} (imported by {', '.join(sorted(set(files)))}) comes from {' or '.join(dists)}, "
                       f"which no requirements file names")
    return bad


@pytest.fixture(scope="module")
def providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def test_the_products_imports_are_in_requirements_txt(providers):
    imports = third_party(sources(PRODUCT), local_names())
    assert {"torch", "numpy", "streamlit", "plotly", "PIL"} <= set(imports)  # the walk sees the code
    assert unprovided(imports, declared(REPO / "requirements.txt"), providers) == []


def test_the_tests_and_benchmarks_imports_are_in_requirements_dev_txt(providers):
    imports = third_party(sources(PRODUCT + DEV), local_names())
    assert {"pytest", "playwright", "yaml", "locust", "websocket"} <= set(imports)
    assert unprovided(imports, declared(REPO / "requirements-dev.txt"), providers) == []


def test_the_check_sees_an_import_no_requirements_file_names(tmp_path, providers):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        "import os, json\nfrom collections.abc import Sequence\nfrom . import sibling\nimport helper\n"
        "def f():\n    import yaml\n    from PIL import Image\n    import websocket\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "helper.py").write_text("")
    imports = third_party(sources(["pkg"], tmp_path), {"helper"})
    assert set(imports) == {"yaml", "PIL", "websocket"}  # stdlib, relative and local imports are not counted
    base = tmp_path / "requirements.txt"
    base.write_text("# users\npillow>=10.0\nwebsocket_client==1.8.*  # a comment\n")
    dev = tmp_path / "requirements-dev.txt"
    dev.write_text("-r requirements.txt\n-e .\nPyYAML>=6\n")
    assert declared(dev) == {"pillow", "websocket-client", "pyyaml"}
    missing = unprovided(imports, declared(base), providers)
    assert len(missing) == 1 and missing[0].startswith("yaml (imported by mod.py) comes from PyYAML"), missing
    assert unprovided(imports, declared(dev), providers) == []
    assert unprovided({"no_such_module_here": ["x.py"]}, declared(dev), providers) == [
        "no_such_module_here (imported by x.py) is installed by no distribution in this environment"]


def test_users_install_the_product_alone_on_the_python_the_readme_names():
    """pyproject.toml installs app.py, cvae and ui: not the tests' kit (tests/devkit.py, hostile
    pickles among it) nor anything else under tests/ or benchmarks/; the README's Python is
    pyproject's."""
    pyproject = (REPO / "pyproject.toml").read_text()
    modules = re.search(r"^py-modules = \[(.*)\]$", pyproject, re.M).group(1)
    packages = re.search(r"^include = \[(.*)\]$", pyproject, re.M).group(1)
    assert re.findall(r'"([^"]+)"', modules) == ["app"]
    assert re.findall(r'"([^"]+)"', packages) == ["cvae", "cvae.*", "ui"]
    assert not (REPO / "devkit.py").exists() and (REPO / "tests" / "devkit.py").is_file()
    lowest = re.search(r'^requires-python = ">=(3\.\d+)"$', pyproject, re.M).group(1)
    readme = (REPO / "README.md").read_text()
    assert f"(Python {lowest} or newer" in readme
    assert set(re.findall(r"Python (3\.\d+)", readme)) <= {lowest, "3.11"}, "the README names another Python"

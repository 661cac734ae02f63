"""The package's layers, read from its source: no import cycle inside ``cvae``, and imports only
go downwards (app -> ui -> cvae; inside cvae: cli -> draw, training -> core). The core and the
training never reach Plotly, Pillow or Streamlit, and only ``cvae/core/files.py`` writes files.

Every ``import`` statement counts, at any depth (a function's local import is still an edge).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from devkit import REPO

PACKAGE = REPO / "cvae"
# What each part of cvae may import from cvae (besides itself and the package's own __init__,
# which only re-exports). The core imports nothing above it.
ALLOWED = {
    "cvae.core": {"cvae.core"},
    "cvae.training": {"cvae.core", "cvae.training"},
    "cvae.draw": {"cvae.core", "cvae.draw"},
    "cvae.web": {"cvae.web"},
    "cvae.site": {"cvae.core", "cvae.draw", "cvae.web"},
    "cvae.cli": {"cvae.core", "cvae.training", "cvae.draw", "cvae.site"},
    "cvae.__main__": {"cvae.cli"},
    "cvae": {"cvae.core", "cvae.training"},
}
# Third-party packages a part must never import.
FORBIDDEN = {
    "cvae.core": {"plotly", "PIL", "streamlit", "ui", "app"},
    "cvae.training": {"plotly", "PIL", "streamlit", "ui", "app"},
    "cvae.draw": {"streamlit", "ui", "app"},
    "cvae.web": {"plotly", "PIL", "streamlit", "torch", "ui", "app"},
    "cvae.site": {"streamlit", "plotly", "ui", "app"},
    "cvae.cli": {"streamlit", "ui", "app"},
}


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.add(mod)
            # ``from .core import shipped`` imports the module cvae.core.shipped
            out.update(f"{mod}.{a.name}" for a in node.names if (PACKAGE.parent / f"{mod}.{a.name}".replace(".", "/")).
                       with_suffix(".py").is_file())
    return out


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: the cvae modules it imports} for every module under ``root``."""
    mods = {module_name(p): p for p in root.rglob("*.py")}
    return {m: {i for i in imports_of(p) if i in mods} - {m} for m, p in mods.items()}


def part_of(module: str) -> str:
    for part in sorted(ALLOWED, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    raise AssertionError(f"{module} belongs to no layer; add it to ALLOWED")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def violations(edges: dict[str, set[str]], third_party: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in edges.items():
        part = part_of(mod)
        for dep in deps:
            if dep == "cvae" or part_of(dep) == part:
                continue
            if part_of(dep) not in ALLOWED[part]:
                bad.append(f"{mod} imports {dep}")
    for mod, names in third_party.items():
        for name in names:
            if name.split(".")[0] in FORBIDDEN.get(part_of(mod), ()):
                bad.append(f"{mod} imports {name}")
    return bad


def test_the_package_has_no_import_cycle_and_imports_only_downwards():
    edges = graph()
    assert "cvae.core.model" in edges and "cvae.draw.film" in edges and "cvae.training.loop" in edges
    assert cycles(edges) == []
    third = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}
    assert violations(edges, third) == []


def test_the_checks_see_a_cycle_and_a_forbidden_import():
    """The walker itself: a cycle, a core module drawing, a core module reaching up."""
    edges = {"cvae.core.a": {"cvae.core.b"}, "cvae.core.b": {"cvae.core.a"}, "cvae.draw.x": {"cvae.core.a"}}
    assert cycles(edges) == [["cvae.core.a", "cvae.core.b"]]
    assert violations({"cvae.core.a": {"cvae.draw.x"}}, {}) == ["cvae.core.a imports cvae.draw.x"]
    assert violations({"cvae.training.t": {"cvae.training.jobs"}}, {"cvae.training.t": {"plotly.graph_objects"}}) \
        == ["cvae.training.t imports plotly.graph_objects"]
    # A local import inside a function counts.
    src = PACKAGE / "core" / "film.py"
    assert "cvae.core.files" in imports_of(src)


def test_the_architecture_docs_table_is_this_tests_rules():
    """docs/architecture.md lists what each part may import; it says what ALLOWED says."""
    doc = (REPO / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| `(cvae[\w.]*)`[^|]* \| (.+) \|$", doc, re.M)
    table = {part: set() if cell == "nothing" else set(re.findall(r"`([\w.]+)`", cell)) for part, cell in rows}
    assert table == {part: allowed - {part} for part, allowed in ALLOWED.items()}


def test_ui_never_imported_by_cvae_and_app_reads_ui():
    for p in PACKAGE.rglob("*.py"):
        assert not {i for i in imports_of(p) if i.split(".")[0] in ("ui", "app", "streamlit")}, p
    assert any(i.startswith("ui") for i in imports_of(REPO / "app.py"))


# Calls that write a file. Only cvae/core/files.py makes them; everything else hands its bytes
# (or a function that writes to a file object) to files.atomic_write.
WRITER_METHODS = {"write_bytes", "write_text", "touch"}  # pathlib
WRITER_CALLS = {"os.replace", "os.rename", "tempfile.mkstemp", "tempfile.NamedTemporaryFile", "shutil.copyfile",
                "shutil.copy", "shutil.copy2", "shutil.move", "np.save", "np.savez", "np.savez_compressed",
                "torch.save"}


def _writes(path: Path) -> list[str]:
    found = []
    source = path.read_text()
    tree = ast.parse(source, str(path))
    inside_atomic = {id(n) for call in ast.walk(tree) if isinstance(call, ast.Call)
                     and isinstance(call.func, ast.Name) and call.func.id == "atomic_write"
                     for arg in call.args[1:] for n in ast.walk(arg)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in inside_atomic:
            continue
        f = node.func
        dotted = ast.unparse(f)
        if isinstance(f, ast.Name) and f.id == "open" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                and any(c in str(node.args[1].value) for c in "wax+"):
            found.append(f"{path.name}:{node.lineno} {dotted}")
        elif dotted in WRITER_CALLS or (isinstance(f, ast.Attribute) and f.attr in WRITER_METHODS):
            found.append(f"{path.name}:{node.lineno} {dotted}")
    return found


def test_only_the_atomic_writer_writes_files():
    found = [w for p in PACKAGE.rglob("*.py") if p.name != "files.py" for w in _writes(p)]
    assert found == []


@pytest.mark.parametrize("snippet, hit", [
    ("from pathlib import Path\nPath('x').write_bytes(b'')\n", True),
    ("open('x', 'wb').write(b'')\n", True),
    ("import numpy as np\nnp.savez('x', a=1)\n", True),
    ("import torch\ntorch.save({}, 'x')\n", True),
    ("import torch\natomic_write('x', lambda fh: torch.save({}, fh))\n", False),
    ("open('x').read()\n", False),
])
def test_the_writer_check_sees_a_direct_write(tmp_path, snippet, hit):
    p = tmp_path / "mod.py"
    p.write_text(snippet)
    assert bool(_writes(p)) is hit

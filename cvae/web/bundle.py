"""One file from the explorer's ES modules, for hosts that cannot load modules one by one.

The app's loader imports its code from a Blob URL (relative imports do not resolve there) and
a static site opened as a file cannot load modules at all (browsers refuse module scripts from
``file:`` pages). So both hosts get one bundle of the same module files. The modules keep to
two forms this reads: ``import { a, b as c } from "./x.js";`` on one line, and ``export``
before a top-level ``function``, ``class``, ``const`` or ``let``. Each module becomes a
function scope returning its exports, in dependency order; each module appears once.
"""

from __future__ import annotations

import re
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
_IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"(\.{1,2}/[^"]+\.js)";\s*$')
_EXPORT = re.compile(r"^export\s+((?:async\s+)?(?:function\*?|class|const|let)\s+([A-Za-z_$][\w$]*))")


class BundleError(ValueError):
    """A module outside the two forms, or an import that names no export."""


def _parse(path: Path) -> tuple[list[tuple[Path, list[tuple[str, str]]]], list[str], str]:
    imports, exports, body = [], [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = _IMPORT.match(line)
        if m:
            names = []
            for part in filter(None, (p.strip() for p in m.group(1).split(","))):
                src, _, dst = part.partition(" as ")
                names.append((src.strip(), (dst or src).strip()))
            imports.append(((path.parent / m.group(2)).resolve(), names))
            continue
        if line.startswith("import ") or line.startswith("export default") or line.startswith("export {"):
            raise BundleError(f"{path.name}:{n}: the bundler reads only `import {{ .. }} from \"./x.js\";` and `export <declaration>`")
        m = _EXPORT.match(line)
        if m:
            exports.append(m.group(2))
            line = line[len("export "):]
        body.append(line)
    return imports, exports, "\n".join(body)


def bundle(entries: list[Path], *, script: bool = False) -> str:
    """The modules reachable from ``entries`` as one text: an ES module exporting the first
    entry's exports, or (``script=True``) a classic script for ``<script src>``."""
    order: list[Path] = []
    parsed: dict[Path, tuple] = {}

    def visit(path: Path, stack: tuple = ()) -> None:
        if path in stack:
            raise BundleError(f"import cycle: {' -> '.join(p.name for p in (*stack, path))}")
        if path in parsed:
            return
        parsed[path] = _parse(path)
        for dep, _ in parsed[path][0]:
            visit(dep, (*stack, path))
        order.append(path)

    entries = [Path(e).resolve() for e in entries]
    for e in entries:
        visit(e)
    ids = {p: f"__m{i}_{re.sub(r'[^A-Za-z0-9]', '_', p.stem)}" for i, p in enumerate(order)}
    out = [f"// The CVAE explorer, bundled by cvae/web/bundle.py from: {', '.join(p.name for p in order)}."]
    if script:
        out.append('(() => {\n"use strict";')
    for p in order:
        imports, exports, body = parsed[p]
        lines = [f"// ---- {p.name}", f"const {ids[p]} = (() => {{"]
        for dep, names in imports:
            missing = [src for src, _ in names if src not in parsed[dep][1]]
            if missing:
                raise BundleError(f"{p.name} imports {', '.join(missing)} from {dep.name}, which does not export it")
            lines.append(f"const {{ {', '.join(s if s == d else f'{s}: {d}' for s, d in names)} }} = {ids[dep]};")
        lines += [body, f"return {{ {', '.join(exports)} }};", "})();"]
        out.append("\n".join(lines))
    if script:
        out.append("})();")
    else:
        first = entries[0]
        out.append(f"export const {{ {', '.join(parsed[first][1])} }} = {ids[first]};")
    return "\n".join(out) + "\n"

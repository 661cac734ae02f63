"""The explorer's JavaScript: node's own test runner over tests/js (the decoder against
PyTorch, the commit protocol), the golden file kept true to PyTorch, and the bundler that
joins the modules for the app and the static site."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from cvae.web import WEB_DIR, bundle
from cvae.web.bundle import BundleError
from devkit import REPO
from jsgolden import GOLDEN, golden

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node not found (apt-get install nodejs); a failure under CI=true")


def _node(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([NODE, *args], capture_output=True, text=True, timeout=120, **kw)


@needs_node
def test_node_unit_tests_pass():
    r = _node("--test", str(REPO / "tests" / "js"), cwd=REPO)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "# fail 0" in r.stdout and "# pass 0" not in r.stdout


def test_the_golden_file_is_what_pytorch_computes():
    committed = json.loads(GOLDEN.read_text())
    fresh = golden()
    assert committed["payload"]["hash"] == fresh["payload"]["hash"]
    for a, b in zip(committed["images"], fresh["images"], strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-9


@needs_node
@pytest.mark.parametrize("script", [False, True], ids=["module", "script"])
def test_a_bundle_runs_and_keeps_each_module_once(tmp_path, script):
    text = bundle([WEB_DIR / "decoder.js", WEB_DIR / "protocol.js"], script=script)
    assert text.count("// ---- payload.js") == 1  # imported by decoder.js only, bundled once
    if script:  # a classic script: its modules' names stay out of the global scope
        out = tmp_path / "b.js"
        out.write_text(text + "\nconsole.log(typeof __m0_payload, typeof prepareDecoder);\n")
        r = _node(str(out))
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["undefined", "undefined"]
        return
    out = tmp_path / "b.mjs"
    payload = json.loads(GOLDEN.read_text())
    out.write_text(text + f"""
const g = {json.dumps(payload)};
const img = decode(prepareDecoder(g.payload), g.points[1]);
console.log(Math.max(...img.map((v, i) => Math.abs(v - g.images[1][i]))));
""")
    r = _node(str(out))
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) < 1e-7


def test_the_bundler_refuses_what_it_cannot_read(tmp_path):
    (tmp_path / "a.js").write_text('import { b } from "./b.js";\nexport const a = b;\n')
    (tmp_path / "b.js").write_text('import { a } from "./a.js";\nexport const b = 1;\n')
    with pytest.raises(BundleError, match="import cycle: a.js -> b.js -> a.js"):
        bundle([tmp_path / "a.js"])
    (tmp_path / "b.js").write_text("export const c = 1;\n")
    with pytest.raises(BundleError, match="imports b from b.js, which does not export it"):
        bundle([tmp_path / "a.js"])
    (tmp_path / "b.js").write_text("export default 1;\n")
    with pytest.raises(BundleError, match="b.js:1"):
        bundle([tmp_path / "a.js"])


def test_each_explorer_module_is_in_the_apps_bundle():
    from ui.explorer import _code_assets

    code, _ = _code_assets(True)
    for name in ("decoder.js", "payload.js", "protocol.js", "views.js", "gesture.js", "plotly_hook.js", "explorer.js", "hooks.js",
                 "explorer_host.js"):
        assert f"// ---- {name}" in code["text"]
    assert "// ---- hooks.js" not in _code_assets(False)[0]["text"]  # test hooks only when asked for

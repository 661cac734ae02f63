"""The static site as written to disk by `python -m cvae site` and as the app's ZIP holds it,
read back from the files themselves: the Content-Security-Policy its index.html carries, and
permissions any static host can serve (a web server's user reads every file and lists the
folder), whatever the umask of the process that wrote it."""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

from cvae.core.shipped import SHIPPED_CHECKPOINT
from cvae.site import site_files, site_zip
from devkit import REPO

WANT_CSP = {"default-src": ["'self'"], "img-src": ["'self'", "data:"], "object-src": ["'none'"],
            "base-uri": ["'none'"], "form-action": ["'none'"]}


def csp_of(html: str) -> dict[str, list[str]]:
    metas = re.findall(r'<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]*)"\s*/?>', html, re.I)
    assert len(metas) == 1, metas
    head = html.lower().split("</head>")[0]
    assert head.index("content-security-policy") < min(head.index("<script") if "<script" in head else len(head),
                                                       head.index("<link rel=\"stylesheet\""))  # before what it guards
    rules = [r.split() for r in metas[0].split(";") if r.strip()]
    return {r[0]: r[1:] for r in rules}


def test_the_written_site_carries_its_policy_and_can_be_served_whatever_the_umask(tmp_path):
    out = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "cvae", "site", str(SHIPPED_CHECKPOINT), "--out", str(out),
                        "--data-dir", str(tmp_path / "no-mnist")], cwd=REPO, capture_output=True, text=True,
                       timeout=300, preexec_fn=lambda: os.umask(0o077))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["index.html", "explorer.js", "data.js", "explorer.css", "site.css"]), names
    for p in out.iterdir():
        assert p.is_file() and stat.S_IMODE(p.stat().st_mode) == 0o644, (p.name, oct(p.stat().st_mode))
    assert csp_of((out / "index.html").read_text(encoding="utf-8")) == WANT_CSP
    # Nothing left beside it (the temporary folder it was written as).
    assert [p.name for p in tmp_path.iterdir() if p.name != "no-mnist"] == ["site"]


def test_the_zip_unpacks_to_files_a_static_host_can_serve(tmp_path):
    files = site_files(SHIPPED_CHECKPOINT, tmp_path / "no-mnist", hooks=False)
    with zipfile.ZipFile(io.BytesIO(site_zip(files))) as z:
        infos = z.infolist()
        assert sorted(i.filename for i in infos) == sorted(f"cvae-explorer/{n}" for n in files)
        for i in infos:
            mode = i.external_attr >> 16
            assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o644, (i.filename, oct(mode))
        assert csp_of(z.read("cvae-explorer/index.html").decode("utf-8")) == WANT_CSP
    # As unzip(1) unpacks it: the modes it stores are the ones the files get.
    if (unzip := Path("/usr/bin/unzip")).is_file():
        (tmp_path / "s.zip").write_bytes(site_zip(files))
        subprocess.run([str(unzip), "-q", "s.zip"], cwd=tmp_path, check=True, timeout=60)
        for p in (tmp_path / "cvae-explorer").iterdir():
            assert stat.S_IMODE(p.stat().st_mode) & 0o044 == 0o044, (p.name, oct(p.stat().st_mode))

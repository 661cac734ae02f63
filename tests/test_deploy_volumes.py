"""deploy/: the container's volumes read from the files: the folder the app saves runs to
(CVAE_RUNS) is the one compose mounts the shared volume at and the image declares a volume,
created and owned by the user the server runs as (a named volume starts as the image's
folder: a root-owned one could not be written), and MNIST's folder is where the compose file
says to mount it."""

from __future__ import annotations

import re
import shlex

import yaml

from devkit import REPO

DEPLOY = REPO / "deploy"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "")
            for ln in (x.strip() for x in text.splitlines()) if ln and not ln.startswith("#")]


def env_of(steps) -> dict[str, str]:
    env = {}
    for k, a in steps:
        if k == "ENV":
            env.update(dict(w.split("=", 1) for w in shlex.split(a)))
    return env


def under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def test_runs_are_saved_in_the_shared_volume_by_a_user_who_can_write_it():
    steps = instructions()
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    app = compose["services"]["app"]
    mounts = [v.split(":") for v in app["volumes"]]
    named = [(src, dst) for src, dst, *_ in mounts if src in (compose.get("volumes") or {})]
    assert len(named) == 1, mounts  # one named volume, shared by every replica
    volume_dir = named[0][1]
    assert env_of(steps)["CVAE_RUNS"] == volume_dir
    declared = [v for k, a in steps if k == "VOLUME" for v in re.findall(r'"([^"]+)"', a) or a.split()]
    assert volume_dir in declared, declared
    user_at = max(i for i, (k, _) in enumerate(steps) if k == "USER")
    user = steps[user_at][1].split(":")[0]
    assert user not in ("root", "0")
    runs_before_user = " && ".join(a for k, a in steps[:user_at] if k == "RUN")
    made = [w for cmd in runs_before_user.split("&&") if "mkdir" in cmd for w in shlex.split(cmd)[1:] if w.startswith("/")]
    assert any(under(volume_dir, m) or m == volume_dir for m in made), made
    chowns = [shlex.split(cmd) for cmd in runs_before_user.split("&&") if cmd.strip().startswith("chown")]
    assert any(c[-2].split(":")[0] == user and any(under(volume_dir, p) for p in c[1:] if p.startswith("/"))
               and ("-R" in c or c[-1] == volume_dir) for c in chowns), chowns
    useradd = re.search(r"useradd\b[^&]*?\s(\S+)\s*(?:&&|$)", runs_before_user)
    assert useradd and useradd.group(1) == user
    # The trained models never go into the image: runs/ is left out of the build context.
    assert "runs" in (DEPLOY / "Dockerfile.dockerignore").read_text().split()


def test_mnist_is_read_where_the_compose_file_says_to_mount_it():
    env = env_of(instructions())
    text = (DEPLOY / "compose.yaml").read_text()
    hint = re.search(r"#\s*-\s*([^:\s]+):([^:\s]+)(?::ro)?\s", text)
    assert hint and hint.group(2) == env["CVAE_DATA"], text

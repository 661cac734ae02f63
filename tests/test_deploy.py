"""deploy/: the container image kept in step with requirements.txt and the README, and the
replicas' configuration tested without Docker: two `streamlit run app.py` servers sharing one
runs/ folder behind nginx with deploy/nginx/explorer.conf itself. Through nginx, the class load
test's users spread over both replicas and lose nothing; every request of one browser (its
cookie) reaches one replica; a model trained through one replica is listed by the other."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from devkit import REPO, data_dir, free_port, needs_data, require_prerequisite, start_server, wait_for_port

DEPLOY = REPO / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "")
            for ln in (x.strip() for x in text.splitlines()) if ln and not ln.startswith("#")]


def test_the_image_installs_what_the_readme_installs_and_runs_what_it_runs():
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")  # the README's Python
    readme = (REPO / "README.md").read_text()
    install = re.search(r"^(pip install -r requirements\.txt) && (streamlit run app\.py)$", readme, re.M)
    assert install, "the README's quick start changed: change deploy/Dockerfile with it"
    runs = [a for k, a in steps if k == "RUN"]
    copies = [a for k, a in steps if k == "COPY"]
    assert copies[0] == "requirements.txt ." and runs[0] == install.group(1)  # the requirements, before the code
    assert "pip install" not in " ".join(runs[1:])  # nothing else installed beside them
    assert ". ." in copies  # the code, the shipped model in assets/ with it
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert not any(i.strip("/") in ("assets", "app.py", "ui", "cvae", "requirements.txt") for i in ignored)
    for f in ("assets/cvae_mnist.pt", "assets/test_encodings.npz"):
        assert (REPO / f).is_file()
    user = [a for k, a in steps if k == "USER"]
    assert user and user[-1] not in ("root", "0")
    health = next(a for k, a in steps if k == "HEALTHCHECK")
    assert "/_stcore/health" in health and "8501" in health
    cmd = next(a for k, a in steps if k == "CMD")
    assert cmd.startswith('["streamlit", "run", "app.py"') and "--server.port=8501" in cmd
    env = " ".join(a for k, a in steps if k == "ENV")
    assert "CVAE_RUNS=/data/runs" in env


def test_compose_runs_replicas_behind_nginx_with_one_runs_volume():
    c = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    app, nginx = c["services"]["app"], c["services"]["nginx"]
    assert app["build"]["dockerfile"] == "deploy/Dockerfile" and app["deploy"]["replicas"] >= 2
    assert "runs:/data/runs" in app["volumes"] and "runs" in c["volumes"]
    assert "./nginx/explorer.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    conf = (DEPLOY / "nginx" / "explorer.conf").read_text()
    assert re.search(r"upstream explorer \{\s*hash \$cvae_replica consistent;", conf)
    assert "server app:8501;" in conf  # the compose service, every replica


def nginx_conf(port: int, upstreams: list[str], prefix: Path) -> Path:
    """deploy/nginx/explorer.conf as it is, with this machine's upstreams and port, inside the
    main context the official image gives it; a log line per request names the replica that
    answered it ($upstream_addr) and the test's client that sent it (header X-Test-Client)."""
    conf = (DEPLOY / "nginx" / "explorer.conf").read_text()
    conf = conf.replace("server app:8501;", "\n".join(f"server {u};" for u in upstreams))
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
    (prefix / "explorer.conf").write_text(conf)
    for d in ("logs", "tmp"):
        (prefix / d).mkdir(exist_ok=True)
    main = prefix / "nginx.conf"
    main.write_text(f"""
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {prefix}/tmp/body; proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fcgi; uwsgi_temp_path {prefix}/tmp/uwsgi; scgi_temp_path {prefix}/tmp/scgi;
    log_format route '$request_uri|$cvae_replica|$upstream_addr|$status|$http_x_test_client';
    access_log {prefix}/logs/access.log route;
    include {prefix}/explorer.conf;
}}
""")
    return main


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    require_prerequisite(Path(NGINX).is_file(), "nginx not found (apt-get install nginx-light)")  # fails under CI=true
    tmp = tmp_path_factory.mktemp("replicas")
    runs = tmp / "runs"  # one runs/ for both: the compose file's volume
    env = {"CVAE_DATA": str(data_dir()), "CVAE_RUNS": str(runs), "CVAE_TEST_HOOKS": "1"}
    servers = [start_server("app.py", env, log=tmp / f"replica{i}.log") for i in range(2)]
    port = free_port()
    main = nginx_conf(port, [s.url.split("//")[1] for s in servers], tmp)
    proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(main)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    wait_for_port(port, proc)
    yield {"url": f"http://127.0.0.1:{port}", "servers": servers, "log": tmp / "logs" / "access.log", "runs": runs}
    proc.terminate()
    proc.wait(10)
    for s in servers:
        s.stop()


CLASS_USERS = 24  # a class's users (and the affinity test's clients): see the class test for why 24


def routes(log: Path) -> list[tuple[str, str, str, str, str]]:
    """(uri, route, replica that answered, status, test client) per request."""
    return [tuple(ln.split("|")) for ln in log.read_text().splitlines() if ln.count("|") == 4]


@pytest.mark.load
@needs_data
def test_a_class_through_nginx_spreads_over_both_replicas_and_loses_nothing(replicas):
    """Every user of a class opens through nginx, and both replicas serve sessions. A user's
    replica is chance (a random route on nginx's hash ring), so the class is large enough that
    chance alone does not put it all on one: the ring gave one replica 40-57% of routes over 30
    pairs of ports (12,000 routes), and at 40% all 24 users land on the other with p = 5e-6."""
    users = CLASS_USERS
    r = subprocess.run([sys.executable, "benchmarks/class_load.py", "--host", replicas["url"], "--users", str(users),
                        "--ramp", "6", "--minutes", "0.4"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    row = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("given host"))
    nums = re.findall(r"\d+", row)
    assert nums[0:3] == [str(users)] * 3, row  # users, opened, of
    seen = routes(replicas["log"])
    streams = [u for uri, cookie, u, status, _ in seen if uri == "/_stcore/stream"]
    by_replica = {s.url.split("//")[1]: streams.count(s.url.split("//")[1]) for s in replicas["servers"]}
    assert sum(by_replica.values()) >= users and min(by_replica.values()) >= 1, by_replica  # both serve sessions


@pytest.mark.load
def test_every_request_of_one_browser_reaches_the_replica_that_answered_its_first(replicas):
    """Affinity, grouped by who asked (CLASS_USERS clients, each with its own cookie jar, named by a header
    nginx does not use) and by which replica answered: each client's requests all reached one
    replica, and the clients were spread over both. A route cookie that nginx set but did not
    read back would send a client's later requests anywhere."""
    import http.cookiejar
    import urllib.request

    for i in range(CLASS_USERS):
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        for path in ["/", "/_stcore/health", "/_stcore/host-config", "/_stcore/health", "/", "/_stcore/health"]:
            req = urllib.request.Request(replicas["url"] + path, headers={"X-Test-Client": f"client{i}"})
            with opener.open(req, timeout=60) as r:
                assert r.status == 200
    # nginx logs a request after its response has gone: wait for all the lines.
    deadline = time.monotonic() + 30
    while sum(c.startswith("client") for *_, c in routes(replicas["log"])) < 6 * CLASS_USERS and time.monotonic() < deadline:
        time.sleep(0.05)
    answered: dict[str, list] = {}
    for _uri, _route, upstream, _status, client in routes(replicas["log"]):
        if client.startswith("client"):
            answered.setdefault(client, []).append(upstream)
    assert sorted(answered) == sorted(f"client{i}" for i in range(CLASS_USERS))
    assert all(len(u) == 6 for u in answered.values()), answered
    assert all(len(set(u)) == 1 for u in answered.values()), {c: u for c, u in answered.items() if len(set(u)) > 1}
    assert len({u[0] for u in answered.values()}) == 2, answered  # both replicas have clients


@needs_data
@pytest.mark.load
def test_a_model_trained_through_one_replica_is_listed_by_the_other(replicas, browser):
    """A browser trains a small model through nginx; a browser that nginx sends to the other
    replica lists it in its model picker."""
    url, log = replicas["url"], replicas["log"]

    def replica_of(ctx) -> str:
        cookie = next(c["value"] for c in ctx.cookies() if c["name"] == "cvae_replica")
        # Any request of its (a websocket is logged only when it closes; the page's at once).
        return next(u for uri, c, u, s, _ in routes(log) if c == cookie)

    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(180_000)
    page.goto(url)
    page.wait_for_function("() => globalThis.cvaeExplorer && cvaeExplorer.stats().some(s => s.hasModel)")
    trained_on = replica_of(ctx)
    side = page.locator('[data-testid="stSidebar"]')
    side.get_by_text("Train a new model").click()
    side.get_by_text("Epochs", exact=True).click()
    for label, value in (("Epochs", 1), ("Training images", 1000)):
        box = side.locator(f'input[aria-label^="{label}"]').first
        box.fill(str(value))
        box.press("Tab")
    side.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training:", exact=False).first.wait_for()
    page.get_by_text("Training:", exact=False).first.wait_for(state="detached")
    made = sorted(p.name for p in replicas["runs"].glob("*.pt"))
    assert len(made) == 1, made
    ctx.close()
    # A new browser until nginx sends one to the other replica (each has an even chance).
    for _ in range(20):
        other = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = other.new_page()
        pg.set_default_timeout(180_000)
        pg.goto(url)
        pg.wait_for_function("() => globalThis.cvaeExplorer && cvaeExplorer.stats().some(s => s.hasModel)")
        if replica_of(other) != trained_on:
            break
        other.close()
    else:
        pytest.fail("nginx sent 20 new browsers to one replica")
    picker = pg.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first
    picker.click()
    options = pg.get_by_role("option").all_inner_texts()
    assert any(Path(made[0]).stem in o for o in options), options
    other.close()

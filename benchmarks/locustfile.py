"""Locust users for a class on one server (benchmarks/class_load.py runs them; so can Locust's
own command line, e.g. ``locust -f benchmarks/locustfile.py --headless -u 100 -r 4 -t 150s
--host http://127.0.0.1:8501 ExplorerUser``).

- ExplorerUser: opens the app as a browser tab does (the first full run, the explorer's data and
  payloads), then commits a move of the point every 1-3 s (a person's pace); each commit must
  come back with its sequence number and the point it sent (benchmarks/streamlit_ws.py).
- BareUser: the same pace on the bare page (benchmarks/bare_page.py): each move is a new z1
  slider value, a full rerun.

Requests in Locust's statistics: "open" (connect to the first run finished), "commit" (sent
to the run finished) and "poll" (a fragment rerun the server asked for with run_every, e.g. a
training run's progress, sent when due as a browser's timer sends it), request type "ws". A lost commit, a wrong point, an error on the page or
a closed socket is a failure.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from locust import User, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streamlit_ws import ProtocolError, Tab  # noqa: E402


class _Tab(User):
    abstract = True
    wait_time = between(1, 3)

    def fire(self, name: str, t0: float, length: int = 0, exc: Exception | None = None) -> None:
        events.request.fire(request_type="ws", name=name, response_time=(time.perf_counter() - t0) * 1000,
                            response_length=length, exception=exc, context={})

    def on_start(self) -> None:
        self.tab = Tab(self.host, timeout=120)
        t0 = time.perf_counter()
        try:
            run = self.tab.open()
        except (ProtocolError, OSError) as exc:
            self.fire("open", t0, exc=exc)
            self.tab.close()
            self.tab = None
            return
        self.fire("open", t0, run.bytes)

    def on_stop(self) -> None:
        if self.tab is not None:
            self.tab.close()

    def act(self, name: str, do) -> None:
        if self.tab is None:  # its session never opened: that was counted once, as a failed open
            return
        t0 = time.perf_counter()
        try:
            run = do()
        except (ProtocolError, OSError) as exc:
            self.fire(name, t0, exc=exc)
            return
        self.fire(name, t0, run.bytes)


class ExplorerUser(_Tab):
    @task
    def move(self) -> None:
        if self.tab is not None and self.tab.due():
            self.act("poll", self.tab.poll)

        def commit():
            lo1, hi1, lo2, hi2 = self.tab.data["bounds"]
            return self.tab.commit(round(random.uniform(lo1, hi1), 3), round(random.uniform(lo2, hi2), 3))

        self.act("commit", commit)


class BareUser(_Tab):
    @task
    def move(self) -> None:
        self.act("commit", lambda: self.tab.slide("z1", round(random.uniform(-4, 4), 2)))

"""A Streamlit client with no browser: Streamlit's own websocket protocol (the BackMsg and
ForwardMsg protobufs shipped in the ``streamlit`` package), as a browser tab speaks it.

- :meth:`Tab.open`: get the page (and any cookie it sets: a load balancer's affinity), connect
  to ``/_stcore/stream`` with the cookies and ask for the first full run, as a page load does; read until that run has finished (every element the page would draw, the
  explorer's data and payloads among them);
- :meth:`Tab.commit`: the explorer's ``commit`` trigger (what ui/explorer_host.js sends on a
  release: ``{z1, z2, select, decodes, seq, session}``) as a rerun of the explorer's fragment;
  read until it finished, and check that the explorer's new data echoes the commit's number and
  holds the point sent;
- :meth:`Tab.slide`: a slider's new value (the bare page's ``z1``), a full rerun;
- :meth:`Tab.poll`: the fragment reruns the server asked for (``run_every``: a run in progress
  followed by every tab), when they are due, as the browser's timer sends them.

websocket-client is synchronous; under Locust it runs on gevent's sockets (monkey-patched).
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field

import websocket
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

EXPLORER = "cvae_explorer"  # the component's name (ui/explorer.py COMPONENT)
DONE = ("FINISHED_SUCCESSFULLY", "FINISHED_FRAGMENT_RUN_SUCCESSFULLY")


class ProtocolError(RuntimeError):
    """The server did not answer as it answers a browser (a lost commit, an error, a closed socket)."""


@dataclass
class Run:
    """What one run sent back."""

    seconds: float
    bytes: int
    messages: int
    explorer: dict | None = None  # the explorer's data, if the run drew it
    elements: dict = field(default_factory=dict)  # element kind -> count
    exceptions: list = field(default_factory=list)


class Tab:
    def __init__(self, base_url: str, timeout: float = 60.0, cookie: str | None = None):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.cookie = cookie
        self.ws = None
        self.page_hash = ""
        self.explorer_id = None
        self.fragment = None
        self.data = None
        self.widgets: dict[str, str] = {}  # slider and other widget ids seen, by user key
        self.auto: dict[str, list[float]] = {}  # fragment id -> [interval s, next due (monotonic)]

    # -- the wire
    def get_page(self) -> None:
        """GET the page as a browser does first, keeping the cookies it sets."""
        headers = {"Cookie": self.cookie} if self.cookie else {}
        with urllib.request.urlopen(urllib.request.Request(self.base + "/", headers=headers), timeout=self.timeout) as r:
            r.read()
            jar = dict(c.split("=", 1) for c in (self.cookie or "").split("; ") if "=" in c)
            for header in r.headers.get_all("Set-Cookie") or []:
                name, _, value = header.split(";", 1)[0].partition("=")
                jar[name.strip()] = value.strip()
        self.cookie = "; ".join(f"{k}={v}" for k, v in jar.items()) or None

    def connect(self) -> None:
        url = "ws" + self.base[len("http"):] + "/_stcore/stream"
        self.ws = websocket.create_connection(url, timeout=self.timeout,
                                              subprotocols=["streamlit"], cookie=self.cookie)

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            finally:
                self.ws = None

    def _context(self, msg: BackMsg) -> None:
        ci = msg.rerun_script.context_info
        ci.timezone, ci.timezone_offset, ci.locale, ci.url = "UTC", 0, "en-US", self.base + "/"
        ci.is_embedded, ci.color_scheme = False, "light"

    def _run(self, msg: BackMsg) -> Run:
        t0 = time.perf_counter()
        self.ws.send_binary(msg.SerializeToString())
        run = Run(0.0, 0, 0)
        deadline = time.monotonic() + self.timeout
        while True:
            if time.monotonic() > deadline:
                raise ProtocolError(f"no end of the run in {self.timeout:.0f} s")
            try:
                raw = self.ws.recv()
            except websocket.WebSocketException as exc:
                raise ProtocolError(f"the socket closed: {exc}") from exc
            if not isinstance(raw, bytes):
                continue
            run.bytes += len(raw)
            run.messages += 1
            fm = ForwardMsg()
            fm.ParseFromString(raw)
            kind = fm.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = fm.new_session.page_script_hash or self.page_hash
            elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                ek = el.WhichOneof("type")
                run.elements[ek] = run.elements.get(ek, 0) + 1
                if ek == "bidi_component" and el.bidi_component.component_name == EXPLORER:
                    self.explorer_id = el.bidi_component.id
                    self.fragment = fm.delta.fragment_id
                    run.explorer = json.loads(el.bidi_component.json)
                elif ek == "exception":
                    run.exceptions.append(el.exception.message)
                elif ek == "slider":
                    self.widgets[el.slider.label] = el.slider.id
            elif kind == "auto_rerun":
                every = fm.auto_rerun.interval
                self.auto[fm.auto_rerun.fragment_id] = [every, time.monotonic() + every]
            elif kind == "stop_auto_rerun":
                self.auto.clear()
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(fm.script_finished)
                if status in DONE:
                    break
                if status == "FINISHED_WITH_COMPILE_ERROR":
                    raise ProtocolError("the script did not compile")
                # FINISHED_EARLY_FOR_RERUN: a newer run took over; its end follows
        run.seconds = time.perf_counter() - t0
        if run.exceptions:
            raise ProtocolError(f"the page shows an exception: {run.exceptions[0][:200]}")
        if run.explorer is not None:
            self.data = run.explorer
        return run

    # -- what a person does
    def open(self, query: str = "") -> Run:
        t0 = time.perf_counter()
        self.get_page()
        self.connect()
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.widget_states.SetInParent()
        self._context(msg)
        run = self._run(msg)
        run.seconds = time.perf_counter() - t0  # the connection included, as a page load
        return run

    def commit(self, z1: float, z2: float) -> Run:
        """Commit a move of the explorer's point; ProtocolError unless the run echoes it."""
        if self.data is None or self.explorer_id is None:
            raise ProtocolError("the page has no explorer")
        seq = int(self.data["seq"]) + 1
        value = {"z1": z1, "z2": z2, "select": None, "decodes": True, "seq": seq, "session": self.data["session"]}
        msg = BackMsg()
        rs = msg.rerun_script
        rs.page_script_hash = self.page_hash
        rs.fragment_id = self.fragment or ""
        w = rs.widget_states.widgets.add()
        w.id = f"$$STREAMLIT_INTERNAL_KEY_{self.explorer_id}__events"
        w.json_trigger_value = json.dumps([{"event": "commit", "value": value}])
        self._context(msg)
        run = self._run(msg)
        got = run.explorer
        if got is None:
            raise ProtocolError(f"commit {seq}: the run did not redraw the explorer")
        if got.get("seq") != seq:
            raise ProtocolError(f"commit {seq} lost: the explorer echoes {got.get('seq')}")
        if abs(got["z"][0] - z1) > 1e-9 or abs(got["z"][1] - z2) > 1e-9:
            raise ProtocolError(f"commit {seq}: sent ({z1}, {z2}), the explorer holds {got['z']}")
        return run

    def due(self) -> bool:
        now = time.monotonic()
        return any(now >= d[1] for d in self.auto.values())

    def poll(self) -> Run:
        """Rerun each fragment whose run_every interval has passed (as the browser's timer does)."""
        total, now = Run(0.0, 0, 0), time.monotonic()
        for fragment, due in list(self.auto.items()):
            if now < due[1]:
                continue
            due[1] = now + due[0]
            msg = BackMsg()
            msg.rerun_script.page_script_hash = self.page_hash
            msg.rerun_script.fragment_id = fragment
            msg.rerun_script.widget_states.SetInParent()
            self._context(msg)
            run = self._run(msg)
            total.seconds, total.bytes, total.messages = (total.seconds + run.seconds, total.bytes + run.bytes,
                                                           total.messages + run.messages)
        return total

    def slide(self, label: str, value: float) -> Run:
        """Move a slider (the bare page's z1): a full rerun with its new value."""
        msg = BackMsg()
        rs = msg.rerun_script
        rs.page_script_hash = self.page_hash
        w = rs.widget_states.widgets.add()
        w.id = self.widgets[label]
        w.double_array_value.data.append(value)
        self._context(msg)
        return self._run(msg)

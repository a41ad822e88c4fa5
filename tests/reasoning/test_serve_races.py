"""The three races of ``verimath serve``'s sessions (issue 20), each over real HTTP.

1. concurrent ``POST /v1/sessions`` at the limit must not open more than ``max_sessions``;
2. a cell that starts on a session must not have that session closed by the idle reaper
   right after (the reaper decided before the cell, closed after it);
3. one client flooding one session with cells must not starve ``/v1/grade``.

Each failed on the code before the fix (checked on the parent commit). :class:`SlowSessions`
only widens the windows: programs, sessions and the grader are real.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.reasoning.serve_util import ThreadServer, free_port
from verimath.reasoning.sandbox import Sandbox, SandboxConfig
from verimath.reasoning.service.app import ServeConfig


class SlowSessions:
    """The real sandbox whose session open / close take ``open_s`` / ``close_s`` longer.

    A test-only wrapper that widens race windows (session opening and closing are slow on a
    loaded machine too); everything else is the wrapped sandbox. ``closed`` lists closed
    sessions in order.
    """

    def __init__(self, box: Sandbox, open_s: float = 0.0, close_s: float = 0.0) -> None:
        self.box, self.open_s, self.close_s = box, open_s, close_s
        self.closing: list[Any] = []
        self.closed: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.box, name)

    def session(self, **kw: Any) -> Any:
        time.sleep(self.open_s)
        return _SlowClose(self.box.session(**kw), self)


class _SlowClose:
    def __init__(self, sess: Any, owner: SlowSessions) -> None:
        self.sess, self.owner = sess, owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sess, name)

    def close(self) -> None:
        self.owner.closing.append(self)
        time.sleep(self.owner.close_s)
        self.sess.close()
        self.owner.closed.append(self)


@pytest.fixture(scope="module")
def box() -> Sandbox:
    b = Sandbox(SandboxConfig(timeout_s=5.0, memory_mb=512, workers=2))
    yield b
    b.close()


def test_concurrent_creates_never_exceed_the_limit(box) -> None:
    slow = SlowSessions(box, open_s=0.3)
    cfg = ServeConfig(port=free_port(), sandbox=box.config, max_sessions=2)
    with ThreadServer(cfg, sandbox=slow) as srv:
        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(
                lambda _: httpx.post(srv.url + "/v1/sessions", json={}, timeout=30).status_code,
                range(6)))
        assert codes.count(200) == 2 and codes.count(429) == 4, codes
        assert len(srv.state.sessions) == 2


def test_a_cell_that_started_keeps_its_session(box) -> None:
    slow = SlowSessions(box, close_s=0.5)
    cfg = ServeConfig(port=free_port(), sandbox=box.config, session_idle_s=2.0)
    with ThreadServer(cfg, sandbox=slow) as srv:
        sids = [httpx.post(srv.url + "/v1/sessions", json={}).json()["session_id"]
                for _ in range(3)]
        end = time.monotonic() + 10
        while not slow.closing and time.monotonic() < end:  # the reaper has started
            time.sleep(0.01)
        assert slow.closing, "the reaper never closed an idle session"
        first = httpx.post(srv.url + f"/v1/sessions/{sids[-1]}/run", json={"code": "x = 1"},
                           timeout=30)
        # let the reaper finish what it decided (3 closes of 0.5 s), but ask again well within
        # session_idle_s of the first cell, so a session that is merely idle again stays
        end = time.monotonic() + 1.2
        while len(slow.closed) < 3 and time.monotonic() < end:
            time.sleep(0.02)
        second = httpx.post(srv.url + f"/v1/sessions/{sids[-1]}/run", json={"code": "x"},
                            timeout=30)
        if first.status_code == 200:  # the cell found its session: it must still be there
            assert first.json()["status"] == "ok"
            assert second.status_code == 200, "a session was reaped right after a cell ran"
            assert second.json()["stdout"] == "1\n"
        else:  # or the reaper took it first, and the cell was told so
            assert first.status_code == 404


def test_flooding_one_session_does_not_starve_grading(box) -> None:
    cfg = ServeConfig(port=free_port(), sandbox=box.config, threads=2)
    with ThreadServer(cfg, sandbox=box) as srv:
        pair = {"pairs": [{"gold": "2", "pred": "2"}]}
        assert httpx.post(srv.url + "/v1/grade", json=pair, timeout=120).status_code == 200
        sid = httpx.post(srv.url + "/v1/sessions", json={}).json()["session_id"]
        n, done = 12, []
        lock = threading.Lock()

        def cell(_: int) -> int:
            r = httpx.post(srv.url + f"/v1/sessions/{sid}/run",
                           json={"code": "import time; time.sleep(0.3)"}, timeout=60)
            with lock:
                done.append(r.status_code)
            return r.status_code

        with ThreadPoolExecutor(n) as pool:
            futs = [pool.submit(cell, i) for i in range(n)]
            time.sleep(0.2)  # the flood is queued on the session
            r = httpx.post(srv.url + "/v1/grade", json=pair, timeout=120)
            with lock:
                done_when_graded = len(done)
            assert all(f.result() == 200 for f in futs)
        assert r.status_code == 200 and r.json()["verdicts"][0]["status"] == "correct"
        # grading did not queue behind the session's cells (ordering, not timing)
        assert done_when_graded <= n // 2, f"{done_when_graded}/{n} cells ran before grading"

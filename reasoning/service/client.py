"""Clients of ``verimath serve``: drop-in remote versions of the Sandbox and the Grader.

:class:`RemoteSandbox` has the interface the jobs use of
:class:`~verimath.reasoning.sandbox.Sandbox` (``config``, ``isolation``, ``submit``, ``run``,
``run_many``, ``session``, ``close``) and :class:`RemoteGrader` that of
:class:`~verimath.reasoning.grading.Grader` (``grade``, ``grade_many``, ``grade_iter``, ``close``).
Work is spread round-robin over the endpoints; an endpoint that fails at the transport level
(refused, reset, timed out) or answers 5xx is set aside for ``cooldown_s`` and probed with ``GET
/health`` before it gets work again; 429 is retried after its ``Retry-After``. A request that still
fails after ``retries`` more tries (on other endpoints when there are any) gives every item it
carried ``SANDBOX_ERROR`` (programs) or ``ERROR`` (verdicts): counted as "could not judge", never as
wrong. Sessions are pinned to the server that opened them; a cell is never re-sent after its request
left (it could run twice), so a lost server makes that cell ``SANDBOX_ERROR`` and the next cell
starts a fresh interpreter elsewhere with the session's restart note. 401/403 (wrong key) and other
4xx (a request the server refuses) raise :class:`ServiceError`: a configuration or code bug, not an
infrastructure failure.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx

from verimath.reasoning.grading import GRADER_VERSION, GraderConfig
from verimath.reasoning.sandbox import ExecResult, ExecStatus, SandboxConfig, SandboxError
from verimath.reasoning.sandbox.result import failed
from verimath.reasoning.sandbox.session import RESTART_NOTE
from verimath.reasoning.service.schemas import result_from_dict
from verimath.records import Verdict, VerdictStatus

log = logging.getLogger(__name__)
ERR = ExecStatus.SANDBOX_ERROR


class ServiceError(RuntimeError):
    """The server refused a request for a reason retrying cannot fix (auth, bad request).

    Deliberately not a ``SandboxError``: a wrong key or a request the server refuses is a
    configuration or code bug, so it must stop the job instead of being counted as "could not
    judge" by the TIR engine, the rewards or datagen.
    """


class TransportFailure(Exception):
    """No endpoint answered usefully within the retries (the message says what happened)."""


class EndpointPool:
    """Round-robin over ``verimath serve`` URLs with passive health checks.

    Args:
        urls: base URLs (``http://host:port``); at least one.
        api_key: bearer token, or None.
        retries: extra tries after the first for one request.
        cooldown_s: how long an endpoint that failed is skipped before a ``/health`` probe.
        connect_timeout_s: TCP connect limit, seconds.
        max_connections: HTTP connections kept in total.

    Raises:
        ValueError: no URLs, or a URL that is not http(s).
    """

    def __init__(self, urls: Iterable[str], *, api_key: str | None = None, retries: int = 2,
                 cooldown_s: float = 5.0, connect_timeout_s: float = 5.0,
                 max_connections: int = 64) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        if not self.urls:
            raise ValueError("endpoints is empty: give at least one http://host:port URL")
        for u in self.urls:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"endpoint {u!r} must start with http:// or https://")
        self.retries, self.cooldown_s = retries, cooldown_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            headers=headers, timeout=httpx.Timeout(60.0, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections))
        self._rr = itertools.count()
        self._down: dict[str, float] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def health(self, url: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
        """``GET /health`` of ``url`` (its JSON), or None when it does not answer 200."""
        try:
            r = self._http.get(url + "/health", timeout=timeout_s)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def mark_down(self, url: str, why: str) -> None:
        """Skip ``url`` for ``cooldown_s``."""
        log.warning("endpoint %s set aside for %.0f s: %s", url, self.cooldown_s, why)
        with self._lock:
            self._down[url] = time.monotonic() + self.cooldown_s

    def pick(self, avoid: Iterable[str] = ()) -> str:
        """The next endpoint in turn that is up, preferring ones not in ``avoid``.

        An endpoint whose cool-down ended is used again once its ``/health`` answers; when no
        endpoint is up, the next one is returned anyway (the request then fails fast).
        """
        avoid = set(avoid)
        n = len(self.urls)
        start = next(self._rr)
        order = [self.urls[(start + i) % n] for i in range(n)]
        order = [u for u in order if u not in avoid] + [u for u in order if u in avoid]
        now = time.monotonic()
        for u in order:
            with self._lock:
                until = self._down.get(u)
            if until is None:
                return u
            if now >= until:
                if self.health(u) is not None:
                    with self._lock:
                        self._down.pop(u, None)
                    return u
                self.mark_down(u, "health check failed")
        return order[0]

    def post(self, path: str, body: dict[str, Any], *, timeout_s: float,
             url: str | None = None, retry: bool = True,
             avoid: Iterable[str] = ()) -> tuple[str, Any]:
        """POST ``body`` to ``path``; returns (endpoint, parsed JSON).

        Args:
            path: e.g. ``"/v1/exec"``.
            body: the JSON body.
            timeout_s: read limit of one try, seconds.
            url: send only to this endpoint (a pinned session); None: pick in turn.
            retry: False sends at most once after the connection is made.
            avoid: endpoints to use only when no other one is up.

        Raises:
            TransportFailure: every try failed at the transport level, with 5xx, or 429.
            ServiceError: 401/403/404/4xx from the server (``status_code`` attribute).
        """
        tried: list[str] = list(avoid)
        last = "no try made"
        for attempt in range(self.retries + 1 if retry else 1):
            target = url or self.pick(tried)
            tried.append(target)
            try:
                r = self._http.post(target + path, json=body, timeout=timeout_s)
            except httpx.TransportError as e:
                last = f"{target}{path}: {type(e).__name__}: {e}"
                self.mark_down(target, last)
                if not retry and not isinstance(e, httpx.ConnectError):
                    break
                continue
            if r.status_code == 429:
                last = f"{target}{path}: HTTP 429 (busy)"
                time.sleep(min(float(r.headers.get("Retry-After") or 1), 5.0) * (attempt + 1))
                continue
            if r.status_code >= 500:
                last = f"{target}{path}: HTTP {r.status_code}: {r.text[:300]}"
                self.mark_down(target, last)
                continue
            if r.status_code >= 400:
                err = ServiceError(f"{target}{path}: HTTP {r.status_code}: {r.text[:500]}")
                err.status_code = r.status_code  # type: ignore[attr-defined]
                raise err
            return target, r.json()
        raise TransportFailure(last)

    def delete(self, url: str, path: str) -> None:
        """Best-effort DELETE (closing a remote session); errors are logged, not raised."""
        try:
            self._http.delete(url + path, timeout=5.0)
        except httpx.HTTPError as e:
            log.info("DELETE %s%s failed: %s", url, path, e)


def _healthy(pool: EndpointPool) -> dict[str, dict[str, Any]]:
    """``/health`` of every endpoint that answers (the others are set aside).

    Raises:
        SandboxError: no endpoint answers ``/health``.
    """
    found = {u: pool.health(u) for u in pool.urls}
    up = {u: h for u, h in found.items() if h is not None}
    if not up:
        raise SandboxError(f"no verimath serve endpoint answers /health: {pool.urls}")
    for u in set(found) - set(up):
        pool.mark_down(u, "health check failed at start")
    return up


def _resolve_isolation(pool: EndpointPool) -> str:
    """The isolation the servers report (``|``-joined when they differ).

    Raises:
        SandboxError: no endpoint answers ``/health``.
    """
    up = _healthy(pool)
    kinds = sorted({str(h.get("isolation", "")) for h in up.values()})
    if len(kinds) > 1:
        log.warning("the endpoints run different isolation: %s", kinds)
    return "|".join(kinds)


class RemoteSandbox:
    """A :class:`~verimath.reasoning.sandbox.Sandbox` stand-in running programs on a server.

    The server is ``verimath serve``.

    Args:
        endpoints: server base URLs.
        config: default limits (``timeout_s``, ``memory_mb``) sent with each program;
            ``workers`` has no meaning here (the servers have their own pools).
        api_key: bearer token, or None.
        retries / cooldown_s: see :class:`EndpointPool`.
        batch_size: programs per ``/v1/exec`` request in :meth:`run_many`.
        concurrency: requests in flight at once.

    Raises:
        SandboxError: no endpoint answers ``/health``.
    """

    def __init__(self, endpoints: Iterable[str], *, config: SandboxConfig | None = None,
                 api_key: str | None = None, retries: int = 2, cooldown_s: float = 5.0,
                 batch_size: int = 8, concurrency: int = 32) -> None:
        self.config = config or SandboxConfig()
        self.batch_size = batch_size
        self._pool = EndpointPool(endpoints, api_key=api_key, retries=retries,
                                  cooldown_s=cooldown_s, max_connections=concurrency)
        self._isolation = _resolve_isolation(self._pool)
        self._exec = ThreadPoolExecutor(concurrency, thread_name_prefix="remote-sandbox")
        self._closed = False

    @property
    def isolation(self) -> str:
        """What the servers report, e.g. ``"bwrap+uid+rlimits+seccomp"``."""
        return self._isolation

    def __enter__(self) -> RemoteSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _items(self, codes: list[str], timeout_s: float | None,
               memory_mb: int | None) -> list[dict[str, Any]]:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        for c in codes:
            if not isinstance(c, str):
                raise TypeError(f"code must be str, got {type(c).__name__}")
        t = self.config.timeout_s if timeout_s is None else float(timeout_s)
        m = self.config.memory_mb if memory_mb is None else memory_mb
        return [{"code": c, "timeout_s": t, "memory_mb": m} for c in codes]

    def _send(self, items: list[dict[str, Any]]) -> list[ExecResult]:
        """Run ``items`` remotely, results in order.

        Programs a server answered with SANDBOX_ERROR (its own sandbox failed) are re-sent to
        another endpoint, up to ``retries`` times.
        """
        results: list[ExecResult | None] = [None] * len(items)
        todo, used = list(range(len(items))), list[str]()
        for _ in range(self._pool.retries + 1):
            batch = [items[i] for i in todo]
            # bounded: each program may take its timeout, one after another on a busy server
            limit = sum(it["timeout_s"] for it in batch) + 30.0
            try:
                url, reply = self._pool.post("/v1/exec", {"requests": batch}, timeout_s=limit,
                                             avoid=used)
            except TransportFailure as e:
                reason = f"sandbox service unreachable after retries: {e}"
                for i in todo:
                    results[i] = failed(ExecStatus.SANDBOX_ERROR, reason, self._isolation)
                break
            got = [result_from_dict(d) for d in reply["results"]]
            if len(got) != len(batch):
                raise RuntimeError(f"{url}/v1/exec answered {len(got)} results for {len(batch)}")
            for i, r in zip(todo, got, strict=True):
                results[i] = r
            todo = [i for i, r in zip(todo, got, strict=True) if r.status is ERR]
            if not todo or len(self._pool.urls) == 1:
                break
            used.append(url)
        return [r for r in results if r is not None]

    def submit(self, code: str, *, timeout_s: float | None = None,
               memory_mb: int | None = None) -> Future[ExecResult]:
        """Queue one program; the future resolves to its ExecResult (SANDBOX_ERROR when lost).

        Raises:
            SandboxError: closed. TypeError: ``code`` is not a str.
        """
        items = self._items([code], timeout_s, memory_mb)
        out: Future[ExecResult] = Future()
        inner = self._exec.submit(self._send, items)

        def done(f: Future[list[ExecResult]]) -> None:
            exc = f.exception()
            if exc is not None:
                out.set_exception(exc)
            else:
                out.set_result(f.result()[0])

        inner.add_done_callback(done)
        return out

    def run(self, code: str, *, timeout_s: float | None = None,
            memory_mb: int | None = None) -> ExecResult:
        """Run one program; blocks."""
        return self.submit(code, timeout_s=timeout_s, memory_mb=memory_mb).result()

    def run_many(self, codes: list[str], *, timeout_s: float | None = None,
                 memory_mb: int | None = None) -> list[ExecResult]:
        """Run programs in batches of ``batch_size`` over the endpoints; input order kept."""
        items = self._items(list(codes), timeout_s, memory_mb)
        chunks = [items[i:i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        futures = [self._exec.submit(self._send, ch) for ch in chunks]
        return [r for f in futures for r in f.result()]

    def session(self, *, timeout_s: float | None = None, memory_mb: int | None = None,
                echo: bool = True) -> RemoteSession:
        """A stateful interpreter on one server (opened at the first cell)."""
        if self._closed:
            raise SandboxError("the sandbox is closed")
        return RemoteSession(self, self.config.timeout_s if timeout_s is None else timeout_s,
                             self.config.memory_mb if memory_mb is None else memory_mb, echo)

    def close(self) -> None:
        """Stop sending; wait for requests in flight; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._exec.shutdown(wait=True)
        self._pool.close()


class RemoteSession:
    """A :class:`~verimath.reasoning.sandbox.SandboxSession` stand-in pinned to one server.

    The remote interpreter is opened at the first :meth:`run`. A cell whose request is lost
    (server gone) is ``SANDBOX_ERROR``; so is a cell when no server can open a session. After
    a lost interpreter (or one the server closed for idling: 404), the next cell runs in a
    fresh one with :data:`~verimath.reasoning.sandbox.session.RESTART_NOTE` in its stderr, like a
    local session whose interpreter ended.
    """

    def __init__(self, sandbox: RemoteSandbox, timeout_s: float, memory_mb: int,
                 echo: bool) -> None:
        self._sb, self.timeout_s, self.memory_mb, self.echo = sandbox, timeout_s, memory_mb, echo
        self._lock = threading.Lock()
        self._url: str | None = None
        self._sid: str | None = None
        self._used = False
        self._note = ""
        self._closed = False

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        """True while a remote interpreter holds this session's state."""
        return self._sid is not None

    @property
    def endpoint(self) -> str | None:
        """The server this session is pinned to (None before the first cell)."""
        return self._url

    def _open(self) -> None:
        body = {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "echo": self.echo}
        url, reply = self._sb._pool.post("/v1/sessions", body, timeout_s=90.0)
        self._url, self._sid = url, reply["session_id"]
        if self._used:
            self._note = self._note or RESTART_NOTE.format(why="the server lost it")

    def _lost(self, why: str) -> ExecResult:
        self._sid = None
        if self._used:
            self._note = RESTART_NOTE.format(why=why)
        return failed(ExecStatus.SANDBOX_ERROR, why, self._sb.isolation)

    def run(self, code: str, *, timeout_s: float | None = None) -> ExecResult:
        """Run one cell on the pinned server; blocks.

        Raises:
            SandboxError: the session is closed. ServiceError: the server refused the cell.
        """
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        with self._lock:
            if self._closed:
                raise SandboxError("the session is closed")
            for _ in range(2):
                if self._sid is None:
                    try:
                        self._open()
                    except TransportFailure as e:
                        return self._lost(f"cannot open a remote session: {e}")
                try:
                    _, reply = self._sb._pool.post(
                        f"/v1/sessions/{self._sid}/run", {"code": code, "timeout_s": timeout},
                        timeout_s=timeout + 30.0, url=self._url, retry=False)
                except TransportFailure as e:
                    return self._lost(f"remote session lost: {e}")
                except ServiceError as e:
                    if getattr(e, "status_code", 0) != 404:
                        raise
                    self._sid = None  # closed on the server (idle, restart): reopen and rerun
                    continue
                break
            else:
                return self._lost("the server closed the session twice in a row")
            self._used = True
            res = result_from_dict(reply)
            note, self._note = self._note, ""
            if note:
                # The server lost this session's interpreter: an infra failure the TIR engine
                # must see as such (``restarted``), not only as a note in stderr.
                res = dataclasses.replace(res, stderr=note + res.stderr, restarted=True)
            return res

    def close(self) -> None:
        """Close the remote interpreter (best effort); idempotent."""
        with self._lock:
            self._closed = True
            if self._sid is not None and self._url is not None:
                self._sb._pool.delete(self._url, f"/v1/sessions/{self._sid}")
            self._sid = None


class RemoteGrader:
    """A :class:`~verimath.reasoning.grading.Grader` stand-in that grades on ``verimath serve``.

    Each request's deadline is sized from the servers' own grader settings (``/health``
    reports them): ``ceil(pairs / workers)`` times the most wall time one comparison may take
    there (:meth:`~verimath.reasoning.grading.GraderConfig.call_budget_s`, re-checks and worker
    starts included), plus 60 s, where ``pairs`` counts every pair this client may have in flight
    at the time (its other requests share the server's workers). A batch of answers that each
    run the server's grader out of its limits therefore still comes back judged
    (``UNVERIFIABLE``: wrong), never as a client-side timeout (``ERROR``: could not judge) that
    a policy could exploit to escape a wrong answer's reward. The deadline is only a safety
    net against a server that hangs: a dead one fails at the transport level at once. Pairs
    *other* clients send to the same server are not counted: give a server shared by many
    reward processes enough grader workers.

    Args:
        endpoints: server base URLs.
        config: used only to size deadlines for a server that does not report its grader
            settings (one worker assumed); the servers grade with their own settings.
        api_key / retries / cooldown_s: see :class:`EndpointPool`.
        batch_size: pairs per ``/v1/grade`` request.
        concurrency: requests in flight at once.

    Raises:
        SandboxError: no endpoint answers ``/health``.
    """

    def __init__(self, endpoints: Iterable[str], *, config: GraderConfig | None = None,
                 api_key: str | None = None, retries: int = 2, cooldown_s: float = 5.0,
                 batch_size: int = 64, concurrency: int = 8) -> None:
        self.config = config or GraderConfig()
        self.batch_size = batch_size
        self._max_inflight = batch_size * concurrency
        self._pending = 0  # pairs handed to grade / grade_many and not answered yet
        self._pending_lock = threading.Lock()
        self._pool = EndpointPool(endpoints, api_key=api_key, retries=retries,
                                  cooldown_s=cooldown_s, max_connections=concurrency)
        budgets = [h.get("grader") for h in _healthy(self._pool).values()]
        own = {"workers": 1, "call_budget_s": self.config.call_budget_s()}
        #: (seconds one comparison may take, comparisons at once) of the slowest server
        self.server_budget = (
            max(float((b or own)["call_budget_s"]) for b in budgets),
            min(max(1, int((b or own)["workers"])) for b in budgets))
        self._exec = ThreadPoolExecutor(concurrency, thread_name_prefix="remote-grader")

    def __enter__(self) -> RemoteGrader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop; wait for requests in flight."""
        self._exec.shutdown(wait=True)
        self._pool.close()

    def _send(self, pairs: list[tuple[str | None, str | None]], extract: bool) -> list[Verdict]:
        body = {"pairs": [{"gold": g, "pred": p} for g, p in pairs], "extract": extract}
        try:
            with self._pending_lock:
                inflight = max(len(pairs), min(self._pending, self._max_inflight))
            _, reply = self._pool.post("/v1/grade", body,
                                       timeout_s=self.request_timeout_s(inflight))
        except TransportFailure as e:
            why = f"grader service unreachable after retries: {e}"
            return [Verdict(VerdictStatus.ERROR, why, {"gold": None, "pred": None,
                                                       "grader": GRADER_VERSION})
                    for _ in pairs]
        verdicts = [Verdict.from_dict(d, "/v1/grade") for d in reply["verdicts"]]
        if len(verdicts) != len(pairs):
            raise RuntimeError(f"/v1/grade answered {len(verdicts)} verdicts for {len(pairs)}")
        return verdicts

    def _track(self, n: int) -> None:
        with self._pending_lock:
            self._pending += n

    @property
    def parallelism(self) -> int:
        """Comparisons the slowest server runs at once (its grader workers)."""
        return self.server_budget[1]

    def call_budget_s(self) -> float:
        """Upper bound (s) of one :meth:`grade` call.

        A request while this client has as many pairs in flight as it can (``batch_size *
        concurrency``), so a caller's own deadline (a reward's safety net) is never shorter
        than the request's.
        """
        return self.request_timeout_s(self._max_inflight)

    def request_timeout_s(self, n_pairs: int) -> float:
        """Read deadline (s) of a ``/v1/grade`` request while ``n_pairs`` pairs are in flight."""
        per_pair, workers = self.server_budget
        return -(-n_pairs // workers) * per_pair + 60.0

    def grade(self, gold: str | None, pred: str | None, *, extract: bool = True) -> Verdict:
        """One verdict (ERROR when the service is unreachable)."""
        self._track(1)
        try:
            return self._send([(gold, pred)], extract)[0]
        finally:
            self._track(-1)

    def grade_many(self, pairs: Iterable[tuple[str | None, str | None]], *,
                   extract: bool = True) -> list[Verdict]:
        """Verdicts in input order, ``batch_size`` pairs per request, requests in parallel."""
        items = list(pairs)
        chunks = [items[i:i + self.batch_size] for i in range(0, len(items), self.batch_size)]

        def send(ch: list[tuple[str | None, str | None]]) -> list[Verdict]:
            try:
                return self._send(ch, extract)
            finally:
                self._track(-len(ch))

        futures = []
        self._track(len(items))  # all pending at once: the first request's deadline counts all
        submitted = 0
        try:
            for ch in chunks:
                futures.append(self._exec.submit(send, ch))
                submitted += len(ch)
        except BaseException:  # e.g. submit after close(): what was not sent is not pending
            self._track(submitted - len(items))
            raise
        return [v for f in futures for v in f.result()]

    def grade_iter(self, pairs: Iterable[tuple[str | None, str | None]], *, extract: bool = True,
                   chunk: int | None = None) -> Iterator[Verdict]:
        """Like :meth:`grade_many`, lazily, ``chunk`` pairs at a time."""
        it = iter(pairs)
        size = chunk or self.batch_size * 4
        while batch := list(itertools.islice(it, size)):
            yield from self.grade_many(batch, extract=extract)

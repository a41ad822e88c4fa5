"""``verimath serve``: the sandbox and the grader behind an ASGI app (FastAPI on uvicorn).

Endpoints (JSON in, JSON out):

* ``POST /run_code``: SandboxFusion's request/response (see
  :mod:`verimath.reasoning.service.schemas`), Python only;
* ``POST /v1/exec``: ``{"requests": [ExecRequest, ...]}`` -> ``{"results": [ExecResult, ...]}``
  in input order;
* ``POST /v1/sessions`` -> ``{"session_id", "isolation"}``; ``POST /v1/sessions/{id}/run``
  ``{"code", "timeout_s"?}`` -> ExecResult; ``DELETE /v1/sessions/{id}``; sessions idle for
  ``session_idle_s`` are closed (a later run on them gets 404);
* ``POST /v1/grade``: ``{"pairs": [{"gold", "pred"}], "extract"}`` -> ``{"verdicts": [...]}``;
* ``POST /run_jupyter`` (SandboxFusion) and ``POST /execute``, ``GET /sessions``,
  ``DELETE /sessions/{id}`` (NeMo-Skills): see :mod:`verimath.reasoning.service.compat`;
* ``GET /health`` (no auth: for load balancers), ``GET /metrics`` (Prometheus text format).

Guards, in one ASGI middleware in front of every route: a bearer token (``Authorization:
Bearer KEY``; 401 otherwise) when a key is set; request bodies over ``max_body_bytes`` are 413
(batches over ``max_batch`` items too); more than ``max_inflight`` requests at once are 429
with ``Retry-After``. Programs run on the sandbox's own pool (``Sandbox.submit`` futures,
awaited without a thread each); session cells, grading and session open/close each run in
their own bounded thread pool, and cells queued on one session wait on an asyncio lock, not
in a thread, so one client flooding one session cannot starve ``/v1/grade``. Request bodies
are strict (no coercion; 422 names the field) and every status is in the OpenAPI schema.
Shutdown (SIGINT/SIGTERM) stops accepting, lets in-flight requests finish (up to
``shutdown_timeout_s``), then closes sessions, the sandbox and the grader.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import secrets
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from verimath.reasoning.grading import GraderConfig
from verimath.reasoning.sandbox import ExecResult, ExecStatus, SandboxConfig, SandboxError
from verimath.reasoning.sandbox.result import failed
from verimath.reasoning.service.metrics import ServiceMetrics

log = logging.getLogger(__name__)

WORK_PATHS = ("/run_code", "/run_jupyter", "/execute", "/sessions", "/v1/", "/api/")
_SESSION_PATH = re.compile(r"^/v1/sessions/[^/]+(/run)?$")
_NEMO_SESSION_PATH = re.compile(r"^/sessions/[^/]+$")
_PATHS = frozenset({"/run_code", "/run_jupyter", "/execute", "/sessions", "/api/check",
                    "/verify", "/v1/exec", "/v1/grade", "/v1/sessions", "/health", "/metrics"})


def path_label(path: str) -> str:
    """The metrics label of a request path: session ids collapsed, unknown paths "other"."""
    if path in _PATHS:
        return path
    m = _SESSION_PATH.match(path)
    if m:
        return "/v1/sessions/{id}" + (m.group(1) or "")
    if _NEMO_SESSION_PATH.match(path):
        return "/sessions/{id}"
    return "other"


@dataclass(frozen=True)
class ServeConfig:
    """Settings of a ``verimath serve`` instance.

    Attributes:
        host / port: where to listen. A host that is not a loopback address needs ``api_key``.
        api_key: bearer token clients must send; None: no auth (loopback only).
        sandbox: the sandbox's limits and pool (``workers`` programs at once); its
            ``timeout_s`` / ``memory_mb`` are the defaults of requests that give none.
        grader: the grader's settings (started at the first ``/v1/grade``).
        max_timeout_s / max_memory_mb: the largest per-request limits accepted (else 400).
        max_body_bytes: larger request bodies get 413.
        max_batch: more items in one ``/v1/exec``, ``/v1/grade``, ``/run_jupyter`` get 422.
        max_inflight: requests served at once (work endpoints); more get 429.
        max_sessions: open sessions; opening more gets 429.
        session_idle_s: sessions unused this long (seconds) are closed.
        retry_after_s: the ``Retry-After`` of a 429, seconds.
        shutdown_timeout_s: how long shutdown waits for in-flight requests.
        threads: threads for blocking calls, per kind of work (session cells; grading;
            session open/close each have their own pool of this size).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    grader: GraderConfig = field(default_factory=GraderConfig)
    max_timeout_s: float = 120.0
    max_memory_mb: int = 8192
    max_body_bytes: int = 16 << 20
    max_batch: int = 1024
    max_inflight: int = 512
    max_sessions: int = 512
    session_idle_s: float = 300.0
    retry_after_s: int = 1
    shutdown_timeout_s: float = 30.0
    threads: int = 64

    def __post_init__(self) -> None:
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key is empty; give a real key or None (no auth)")
        if not is_loopback(self.host) and self.api_key is None:
            raise ValueError(f"refusing to listen on {self.host!r} without an API key: pass "
                             "--api-key/--api-key-file, or listen on 127.0.0.1")
        for name in ("max_body_bytes", "max_batch", "max_inflight", "max_sessions", "threads"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not (self.session_idle_s > 0 and self.shutdown_timeout_s > 0):
            raise ValueError("session_idle_s and shutdown_timeout_s must be > 0 seconds")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPs (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _Session:
    """One open session: ``busy`` counts cells running or waiting for ``lock``."""

    session: Any
    last_used: float
    created: float = field(default_factory=time.time)  # wall clock, for listings
    busy: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ServiceState:
    """What the routes share: the sandbox, the lazily started grader, sessions, metrics."""

    def __init__(self, cfg: ServeConfig, sandbox: Any = None, grader: Any = None) -> None:
        self.cfg = cfg
        self.sandbox = sandbox
        self.grader = grader
        self._owned: list[Any] = []
        self._grader_lock = threading.Lock()
        self.sessions: dict[str, _Session] = {}
        self.metrics = ServiceMetrics()
        self.inflight = 0
        self.opening = 0  # sessions being opened: counted against max_sessions
        # one thread limiter per kind of work, so cells queued on one session cannot starve
        # grading (and neither can starve session open/close); set in the lifespan
        self.limiter: Any = None  # session cells
        self.grade_limiter: Any = None
        self.admin_limiter: Any = None
        self.broken: str | None = None  # the sandbox refused work: /health says 503

    def start(self) -> None:
        """Start the sandbox (blocking: call from a thread). Raises SandboxError."""
        from verimath.reasoning.sandbox import Sandbox

        if self.sandbox is None:
            self.sandbox = Sandbox(self.cfg.sandbox)
            self._owned.append(self.sandbox)
        log.info("sandbox ready: isolation %s, %d workers", self.sandbox.isolation,
                 self.sandbox.config.workers)

    def get_grader(self) -> Any:
        """The grader, started on first use (blocking). Raises GraderUnavailable."""
        with self._grader_lock:
            if self.grader is None:
                from verimath.reasoning.grading import Grader

                self.grader = Grader(self.cfg.grader)
                self._owned.append(self.grader)
            return self.grader

    def close(self) -> None:
        """Close every session, then what this state started (blocking)."""
        for sid in list(self.sessions):
            self.drop_session(sid)
        for obj in reversed(self._owned):
            obj.close()
        self._owned.clear()

    def take_idle(self, now: float) -> list[tuple[str, _Session]]:
        """Remove (without closing) the sessions idle for over ``session_idle_s`` at ``now``.

        Runs on the event loop with no await: a cell that found its session first made it
        busy, so it stays; a later cell gets 404.
        """
        idle = self.cfg.session_idle_s
        stale = [sid for sid, s in self.sessions.items()
                 if not s.busy and now - s.last_used > idle]
        taken = [(sid, self.sessions.pop(sid)) for sid in stale]
        if taken:
            self.metrics.sessions.set(len(self.sessions))
        return taken

    async def open_session(self, key: str, timeout_s: float, memory_mb: int,
                           echo: bool) -> _Session | None:
        """Open a sandbox session and register it under ``key``; None at ``max_sessions``.

        The slot is reserved before the first await, so concurrent opens never exceed the
        limit. Raises SandboxError when the sandbox cannot open one.
        """
        if len(self.sessions) + self.opening >= self.cfg.max_sessions:
            return None
        self.opening += 1
        try:
            sess = await self.blocking(
                lambda: self.sandbox.session(timeout_s=timeout_s, memory_mb=memory_mb,
                                             echo=echo), limiter=self.admin_limiter)
        finally:
            self.opening -= 1
        s = _Session(sess, time.monotonic())
        self.sessions[key] = s
        self.metrics.sessions.set(len(self.sessions))
        return s

    async def run_cell(self, s: _Session, code: str, timeout_s: float) -> ExecResult:
        """One cell on ``s``, serialised per session without holding a thread while waiting.

        A closed or broken session gives a SANDBOX_ERROR result (could not judge).
        """
        s.busy += 1
        try:
            async with s.lock:
                try:
                    res: ExecResult = await self.blocking(
                        lambda: s.session.run(code, timeout_s=timeout_s))
                except SandboxError as e:
                    res = failed(ExecStatus.SANDBOX_ERROR, str(e), self.sandbox.isolation)
        finally:
            s.busy -= 1
            s.last_used = time.monotonic()
        self.metrics.exec_status.labels(status=str(res.status)).inc()
        return res

    def drop_session(self, sid: str) -> bool:
        """Close and forget session ``sid``; False when unknown."""
        s = self.sessions.pop(sid, None)
        if s is None:
            return False
        self.metrics.sessions.set(len(self.sessions))
        s.session.close()
        return True

    def limits(self, timeout_s: float | None, memory_mb: int | None) -> tuple[float, int]:
        """Per-request limits, defaults filled in. Raises ValueError over the maxima."""
        timeout = self.cfg.sandbox.timeout_s if timeout_s is None else float(timeout_s)
        memory = self.cfg.sandbox.memory_mb if memory_mb is None else int(memory_mb)
        if timeout > self.cfg.max_timeout_s:
            raise ValueError(f"timeout {timeout} s is over this server's limit "
                             f"{self.cfg.max_timeout_s} s")
        if memory > self.cfg.max_memory_mb:
            raise ValueError(f"memory {memory} MB is over this server's limit "
                             f"{self.cfg.max_memory_mb} MB")
        return timeout, memory

    async def execute(self, code: str, timeout_s: float, memory_mb: int) -> ExecResult:
        """Run one program on the sandbox pool; an unusable sandbox is SANDBOX_ERROR."""
        m = self.metrics
        m.queue_depth.inc()
        try:
            fut = self.sandbox.submit(code, timeout_s=timeout_s, memory_mb=memory_mb)
            waiter = asyncio.wrap_future(fut)
            # never forever: a dead supervisor resolves nothing, so poll it (as Sandbox.run does)
            while not (await asyncio.wait({waiter}, timeout=1.0))[0]:
                self.sandbox.settle_if_stalled(fut)
            res: ExecResult = waiter.result()
        except SandboxError as e:  # closed or broken: it will not run anything any more
            self.broken = str(e)
            res = failed(ExecStatus.SANDBOX_ERROR, str(e), self.sandbox.isolation)
        finally:
            m.queue_depth.dec()
        m.exec_status.labels(status=str(res.status)).inc()
        return res

    async def blocking(self, fn: Any, *args: Any, limiter: Any = None) -> Any:
        """``fn(*args)`` in a bounded thread pool (``limiter``; default: the cells' one)."""
        import anyio.to_thread

        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter or self.limiter)


def _reply(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers)


class Guard:
    """ASGI middleware: auth (401), body size (413), concurrency bound (429), metrics."""

    def __init__(self, app: Any, state: ServiceState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        label = path_label(path)
        t0 = time.perf_counter()
        code = [500]

        async def send_wrapper(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                code[0] = msg["status"]
            await send(msg)

        st, cfg = self.state, self.state.cfg
        work = path.startswith(WORK_PATHS)
        body: bytes | None = None
        try:
            denied = self._check(scope, path)
            if denied is None and work and st.inflight >= cfg.max_inflight:
                denied = _reply(429, {"detail": f"busy: {st.inflight} requests in flight"},
                                {"Retry-After": str(cfg.retry_after_s)})
            if denied is None:
                body = await self._read_body(scope, receive)
                if body is None:
                    denied = _reply(413, {"detail": f"request body over {cfg.max_body_bytes} "
                                                    "bytes"})
            if denied is not None or body is None:
                await denied(scope, receive, send_wrapper)
                return
            st.inflight += work
            st.metrics.inflight.set(st.inflight)
            try:
                await self.app(scope, _replay(body, receive), send_wrapper)
            finally:
                st.inflight -= work
                st.metrics.inflight.set(st.inflight)
        finally:
            st.metrics.observe(label, scope.get("method", ""), code[0], time.perf_counter() - t0)

    def _check(self, scope: dict[str, Any], path: str) -> Any:
        key = self.state.cfg.api_key
        if key is None or path == "/health":
            return None
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(),
                                                                 key.encode()):
            return None
        return _reply(401, {"detail": "missing or wrong API key (Authorization: Bearer KEY)"},
                      {"WWW-Authenticate": "Bearer"})

    async def _read_body(self, scope: dict[str, Any], receive: Any) -> bytes | None:
        """The whole body, or None when it is over the limit (Content-Length or counted)."""
        limit = self.state.cfg.max_body_bytes
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that gives the already-read body, then defers to the real one."""
    sent = [False]

    async def replay() -> dict[str, Any]:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def create_app(cfg: ServeConfig, *, sandbox: Any = None, grader: Any = None,
               lean: Any = None) -> Any:
    """The ASGI app (FastAPI wrapped in :class:`Guard`).

    Args:
        cfg: server settings.
        sandbox: a prebuilt sandbox (tests, benchmarks); None: built from ``cfg``.
        grader: a prebuilt grader; None: built at the first ``/v1/grade``.
        Prebuilt components (tests, benchmarks); None: built from ``cfg``
            at start-up (the grader at the first ``/v1/grade``) and closed at shutdown.
        lean: optional Lean service with ``add_routes(app, state)`` and ``close()`` (e.g.
            :class:`verimath.prover.kimina_serve.KiminaCheckService`: kimina's
            ``/api/check``); closed at shutdown. None: no Lean endpoints.

    Returns:
        An ASGI application; its :class:`ServiceState` is ``app.state_ref``.
    """
    import anyio
    from fastapi import FastAPI

    from verimath.reasoning.service.routes import add_routes

    state = ServiceState(cfg, sandbox, grader)
    if lean is not None:
        state._owned.append(lean)

    @asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        state.limiter = anyio.CapacityLimiter(cfg.threads)
        state.grade_limiter = anyio.CapacityLimiter(cfg.threads)
        state.admin_limiter = anyio.CapacityLimiter(cfg.threads)
        await state.blocking(state.start, limiter=state.admin_limiter)
        reaper = asyncio.create_task(_reap(state))
        try:
            yield
        finally:
            reaper.cancel()
            await state.blocking(state.close, limiter=state.admin_limiter)

    api = FastAPI(title="verimath serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    add_routes(api, state)
    if lean is not None:
        lean.add_routes(api, state)
    app = Guard(api, state)
    app.state_ref = state  # type: ignore[attr-defined]
    return app


async def _reap(state: ServiceState) -> None:
    """Close sessions idle for ``session_idle_s`` (checked every few seconds).

    The idle sessions leave ``state.sessions`` in one step with no await in between
    (:meth:`ServiceState.take_idle`), so a cell either found its session before (the session is
    then busy and stays) or gets 404 after; only then are they closed in threads.
    """
    idle = state.cfg.session_idle_s
    while True:
        await asyncio.sleep(min(idle / 4, 5.0))
        for sid, s in state.take_idle(time.monotonic()):
            log.info("closing session %s: idle for over %.0f s", sid, idle)
            try:
                await state.blocking(s.session.close, limiter=state.admin_limiter)
                state.metrics.sessions_reaped.inc()
            except Exception:  # noqa: BLE001 - the reaper must outlive one bad close
                log.exception("closing idle session %s failed", sid)


def new_session_id() -> str:
    """An unguessable session id."""
    return uuid.uuid4().hex


def serve(cfg: ServeConfig, *, log_level: str = "info", lean: Any = None) -> None:
    """Run the server until SIGINT/SIGTERM (blocking); see the module docstring.

    Raises:
        ValueError: a non-loopback host without an API key (checked by ServeConfig).
        SandboxError: the sandbox could not start.
    """
    import uvicorn

    app = create_app(cfg, lean=lean)
    ucfg = uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level=log_level,
                          timeout_graceful_shutdown=int(cfg.shutdown_timeout_s),
                          access_log=False, lifespan="on")
    server = uvicorn.Server(ucfg)
    server.run()
    if not server.started:
        raise SandboxError("the server did not start (see the log above)")


__all__ = ["ServeConfig", "create_app", "is_loopback", "serve"]

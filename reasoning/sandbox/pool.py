"""The host side: :class:`Sandbox`, a pool of pre-warmed executors behind one fork server.

One supervisor thread per Sandbox starts the fork server (``server.py``) inside bubblewrap (or
the fallback), reads its results, and restarts it if it dies or stops answering (a watchdog per
request). The thread that starts bubblewrap must outlive it (``--die-with-parent`` follows the
starting thread), which is why the supervisor, not the caller, launches it.

Callers submit programs; at most ``config.workers`` are handed to the server at a time and the
rest wait in a FIFO queue on the host, so a server restart loses only what was in flight (those
get ``SANDBOX_ERROR``).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from verimath.reasoning.sandbox import isolation
from verimath.reasoning.sandbox.child import pack
from verimath.reasoning.sandbox.config import FALLBACK_ENV, SandboxConfig
from verimath.reasoning.sandbox.host import (
    FALLBACK_PREFIX,
    _discard_launch,
    _Server,
    reap_stale_fallbacks,
)
from verimath.reasoning.sandbox.result import (
    ExecResult,
    ExecStatus,
    SandboxError,
    check_code,
    failed,
)

if TYPE_CHECKING:
    from verimath.reasoning.sandbox.session import SandboxSession

log = logging.getLogger(__name__)

WATCHDOG_GRACE_S = 30.0
CRASH_WINDOW_S = 300.0  # three supervisor errors this close together: the sandbox is broken


class _Job:
    __slots__ = ("id", "msg", "future", "deadline", "kind", "grace", "tier")

    def __init__(self, jid: int, msg: dict[str, Any], kind: str, grace: float,
                 tier: str = "heavy") -> None:
        self.id, self.msg, self.kind, self.grace, self.tier = jid, msg, kind, grace, tier
        self.future: Future[Any] = Future()
        self.deadline = 0.0


class Sandbox:
    """Runs untrusted Python programs: isolated, limited, fast.

    Thread-safe; a context manager; ``close()`` kills everything it started. See the package
    docstring for the isolation and the statuses.

    Args:
        config: limits and pool size; defaults to ``SandboxConfig()``.

    Raises:
        SandboxError: the fork server could not be started: bubblewrap is missing or does not
            work here (``isolation="bwrap"``, or ``"auto"`` without ``allow_fallback``), or the
            fallback failed too.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[_Job] = deque()
        self._inflight: dict[int, _Job] = {}
        self._runs = 0
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._mode: str | None = None
        self._isolation = ""
        self._generation = 0
        self._closed = False
        self._broken: str | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._closing: deque[tuple[int, int]] = deque()  # sessions to close (from finalizers)
        self._wake_r, self._wake_w = socket.socketpair()  # wakes the supervisor, lock-free
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._light = bool(self.config.preload)
        self._heavy = frozenset(m.split(".")[0] for m in self.config.preload)
        self._thread = threading.Thread(target=self._supervise, name="sandbox-supervisor",
                                        daemon=True)
        self._finalizer = weakref.finalize(self, Sandbox.close, self)  # at interpreter exit
        isolation.raise_nofile_limit()
        self._thread.start()
        self._ready.wait(self.config.startup_timeout_s * 3 + 30)
        if self._start_error is None and not self._ready.is_set():
            self._start_error = SandboxError("the sandbox supervisor did not report in time")
        if self._start_error is not None:
            self.close()
            raise SandboxError(str(self._start_error)) from self._start_error

    # ---- public API ----
    @property
    def isolation(self) -> str:
        """What is in force: ``"bwrap+uid+rlimits+seccomp"``, ``"rlimits+uid+pgroup+seccomp"``..."""
        return self._isolation

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, code: str, *, timeout_s: float | None = None,
               memory_mb: int | None = None) -> Future[ExecResult]:
        """Queue ``code``; the future resolves to its :class:`ExecResult`.

        Raises:
            SandboxError: the sandbox is closed or cannot run anything any more.
            ValueError / TypeError: bad limits or a non-str ``code``.
        """
        timeout, memory = self._limits(timeout_s, memory_mb)
        reason = check_code(code, self.config.max_code_bytes)
        if reason is not None:
            fut: Future[ExecResult] = Future()
            fut.set_result(failed(ExecStatus.REJECTED, reason, self._isolation))
            return fut
        msg = {"op": "run", "code": code, "timeout_s": timeout, "memory_mb": memory,
               "max_output": self.config.max_output_bytes,
               "kill_output": self.config.kill_output_bytes}
        tier = "light" if self._light and isolation.stdlib_only(code, self._heavy) else "heavy"
        job = _Job(next(self._ids), msg, "run", timeout + WATCHDOG_GRACE_S, tier)
        msg["id"] = job.id
        with self._lock:
            self._check_usable()
            self._queue.append(job)
        self._pump()
        return job.future

    def run(self, code: str, *, timeout_s: float | None = None,
            memory_mb: int | None = None) -> ExecResult:
        """Run one program in a fresh process; blocks; safe to call from many threads."""
        return self._await(self.submit(code, timeout_s=timeout_s, memory_mb=memory_mb))

    def run_many(self, codes: list[str], *, timeout_s: float | None = None,
                 memory_mb: int | None = None) -> list[ExecResult]:
        """Run programs concurrently (``config.workers`` at a time); results in input order."""
        futures = [self.submit(c, timeout_s=timeout_s, memory_mb=memory_mb) for c in codes]
        return [self._await(f) for f in futures]

    def session(self, *, timeout_s: float | None = None, memory_mb: int | None = None,
                echo: bool = True) -> SandboxSession:
        """A stateful interpreter (notebook-like); see :class:`SandboxSession`."""
        from verimath.reasoning.sandbox.session import SandboxSession

        timeout, memory = self._limits(timeout_s, memory_mb)
        return SandboxSession(self, timeout_s=timeout, memory_mb=memory, echo=echo)

    def close(self) -> None:
        """Kill the fork server and every execution and session; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            self._changed.notify_all()
        for job in queued:
            self._resolve(job, {"op": "lost", "reason": "the sandbox was closed"})
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
            if self._thread.is_alive():
                log.error("sandbox: the supervisor did not stop within 30 s")

    def _await(self, fut: Future[Any], deadline: float | None = None, run: bool = True) -> Any:
        """``fut.result()``, but never forever.

        Returns a ``lost`` reply (SANDBOX_ERROR for runs) when the supervisor thread is gone
        or ``deadline`` (monotonic) passes before the future resolves.
        """
        while True:
            try:
                return fut.result(timeout=1.0)
            except FutureTimeout:
                pass
            if self.settle_if_stalled(fut, deadline, run):
                return fut.result()

    def settle_if_stalled(self, fut: Future[Any], deadline: float | None = None,
                          run: bool = True) -> bool:
        """Resolve an unresolved ``fut`` as lost if nothing will ever resolve it.

        For waiters that cannot block in :meth:`run` (an asyncio server polls this about once
        a second while it awaits ``fut``). The future is set to a ``lost`` reply
        (SANDBOX_ERROR for runs, ``run=True``) when the supervisor thread is gone or
        ``deadline`` (monotonic seconds; None: none) has passed.

        Returns:
            True when ``fut`` is resolved (by this call or before), False while it may still be.
        """
        if fut.done():
            return True
        why = None
        if not self._thread.is_alive():
            why = "the sandbox supervisor stopped"
        elif deadline is not None and time.monotonic() > deadline:
            why = "no reply from the sandbox in time"
        if why is None:
            return False
        lost: dict[str, Any] = {"op": "lost", "reason": why}
        try:
            fut.set_result(self._to_result(lost) if run else lost)
            log.error("sandbox: %s; request failed", why)
        except InvalidStateError:  # resolved meanwhile
            pass
        return True

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # full (already woken) or closed
            pass

    # ---- internals used by SandboxSession ----
    def _limits(self, timeout_s: float | None, memory_mb: int | None) -> tuple[float, int]:
        timeout = self.config.timeout_s if timeout_s is None else float(timeout_s)
        memory = self.config.memory_mb if memory_mb is None else memory_mb
        if not timeout > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        if not isinstance(memory, int) or memory < 1:
            raise ValueError(f"memory_mb must be a positive integer, got {memory_mb!r}")
        return timeout, memory

    def _check_usable(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        if self._broken:
            raise SandboxError(self._broken)

    def _request(self, msg: dict[str, Any], kind: str, grace: float) -> tuple[dict[str, Any], int]:
        """Send a session message now (not queued); wait for the reply (a raw dict).

        Returns (reply, generation of the server it went to).
        """
        job = _Job(next(self._ids), msg, kind, grace)
        msg["id"] = job.id
        self._flush_closes()
        with self._lock:
            self._check_usable()
            end = time.monotonic() + self.config.startup_timeout_s
            while self._server is None or not self._server.alive:
                if self._closed or self._broken or time.monotonic() > end:
                    return {"op": "lost", "reason": "the fork server is not running"}, -1
                self._changed.wait(0.5)
            gen = self._generation
            if msg.get("gen", gen) != gen:
                return {"op": "result", "id": job.id, "dead": True}, gen
            self._inflight[job.id] = job
            job.deadline = time.monotonic() + grace
            self._send(self._server, msg, "heavy")
        deadline = time.monotonic() + grace + WATCHDOG_GRACE_S
        return self._await(job.future, deadline, run=False), gen

    def _open_session(self, memory_mb: int, echo: bool) -> tuple[int, int]:
        sid = next(self._ids)
        reply, gen = self._request({"op": "open", "sid": sid, "memory_mb": memory_mb,
                                    "echo": echo}, "open", self.config.startup_timeout_s)
        err = reply.get("reason") if reply.get("op") == "lost" else reply.get("error")
        if err:
            raise SandboxError(f"cannot start a session: {err}")
        return sid, gen

    def _cell(self, sid: int, gen: int, code: str, timeout_s: float) -> dict[str, Any]:
        msg = {"op": "cell", "sid": sid, "gen": gen, "code": code, "timeout_s": timeout_s,
               "max_output": self.config.max_output_bytes,
               "kill_output": self.config.kill_output_bytes}
        return self._request(msg, "cell", timeout_s + WATCHDOG_GRACE_S)[0]

    def _close_session(self, sid: int, gen: int) -> None:
        """Ask for a session's end; safe in a GC finalizer (takes no lock, never blocks).

        The request is queued and sent by the supervisor (or the next request).
        """
        self._closing.append((sid, gen))
        self._wake()

    def _flush_closes(self) -> None:
        """Send the queued session closes (never call from a finalizer)."""
        while self._closing:
            try:
                sid, gen = self._closing.popleft()
            except IndexError:
                return
            with self._lock:
                srv = self._server
                if srv is None or not srv.alive or gen != self._generation or self._closed:
                    continue
                self._send(srv, {"op": "close", "sid": sid}, "heavy")

    def _to_result(self, msg: dict[str, Any]) -> ExecResult:
        if msg.get("op") == "lost":
            return failed(ExecStatus.SANDBOX_ERROR, str(msg.get("reason")), self._isolation)
        return ExecResult(ExecStatus(msg["status"]), msg["stdout"], msg["stderr"],
                          msg["exit_code"], float(msg["wall_time_s"]),
                          float(msg["cpu_time_s"]), self._isolation)

    # ---- dispatch ----
    def _send(self, srv: _Server, msg: dict[str, Any], tier: str = "heavy") -> None:
        try:
            with srv.send_locks[tier]:
                srv.socks[tier].sendall(pack(msg))
        except OSError as e:  # the server is gone; the supervisor fails what was in flight
            log.debug("sandbox: send failed: %s", e)

    def _pump(self) -> None:
        with self._lock:
            srv = self._server
            while (srv is not None and srv.alive and self._queue
                   and self._runs < self.config.workers):
                job = self._queue.popleft()
                self._runs += 1
                self._inflight[job.id] = job
                job.deadline = time.monotonic() + job.grace
                self._send(srv, job.msg, job.tier)

    def _resolve(self, job: _Job, msg: dict[str, Any]) -> None:
        if job.future.done():
            return
        try:
            job.future.set_result(self._to_result(msg) if job.kind == "run" else msg)
        except InvalidStateError:  # resolved by a timed-out waiter meanwhile
            pass

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("op") not in ("result", "opened"):
            return
        with self._lock:
            job = self._inflight.pop(msg.get("id", -1), None)
            if job is not None and job.kind == "run":
                self._runs -= 1
        if job is None:
            return
        try:
            self._resolve(job, msg)
        except (KeyError, ValueError, TypeError) as e:
            self._resolve(job, {"op": "lost", "reason": f"malformed reply from the server: {e}"})
        if job.kind == "run":
            self._pump()

    # ---- supervisor thread ----
    def _supervise(self) -> None:
        """The supervisor thread: never ends with a request left waiting."""
        try:
            self._supervise_loop()
        except BaseException as e:  # noqa: BLE001 - last resort: nothing may hang
            log.exception("sandbox: the supervisor failed")
            self._fail_everything(f"the sandbox supervisor failed: {type(e).__name__}: {e}")
        finally:
            if not self._ready.is_set():
                self._start_error = self._start_error or SandboxError("the supervisor ended")
                self._ready.set()
            self._wake_r.close()  # a closed socket object: later _wake() calls fail harmlessly
            self._wake_w.close()

    def _fail_everything(self, reason: str) -> None:
        """Mark the sandbox broken and fail every queued and in-flight request."""
        with self._lock:
            self._broken = self._broken or reason
            srv, self._server = self._server, None
            jobs = list(self._queue) + list(self._inflight.values())
            self._queue.clear()
            self._inflight.clear()
            self._runs = 0
            self._generation += 1
            self._changed.notify_all()
        if srv is not None:
            try:
                srv.kill()
            except Exception:  # noqa: BLE001
                log.exception("sandbox: could not kill the fork server")
        for job in jobs:
            self._resolve(job, {"op": "lost", "reason": reason})

    def _supervise_loop(self) -> None:
        fails = crashes = 0
        last_crash = 0.0
        while not self._closed:
            try:
                srv = self._start()
            except Exception as e:  # noqa: BLE001 - reported to the caller / log
                if not self._ready.is_set():
                    self._start_error = e
                    self._ready.set()
                    return
                fails += 1
                log.error("sandbox: restarting the fork server failed (%s)", e)
                if fails >= 3:
                    self._fail_everything(f"the fork server cannot be restarted: {e}")
                    return
                time.sleep(0.5 * fails)
                continue
            fails = 0
            with self._lock:
                self._server = srv
                self._changed.notify_all()
            self._ready.set()
            try:
                self._pump()
                reason = self._serve(srv)
            except Exception as e:  # noqa: BLE001 - a bug of ours: fail loudly, restart
                crashes = 1 if time.monotonic() - last_crash > CRASH_WINDOW_S else crashes + 1
                last_crash = time.monotonic()
                log.exception("sandbox: supervisor error; failing what was queued and in flight "
                              "and restarting the fork server")
                reason = f"internal sandbox error: {type(e).__name__}: {e}"
                self._lost(srv, reason, queued_too=True)
                if crashes >= 3:
                    self._fail_everything(f"the sandbox failed {crashes} times within "
                                          f"{CRASH_WINDOW_S:.0f} s: {reason}")
                    return
                continue
            self._lost(srv, reason)

    def _lost(self, srv: _Server, reason: str, queued_too: bool = False) -> None:
        with self._lock:
            self._server = None
            srv.alive = False
            jobs = list(self._inflight.values())
            self._inflight.clear()
            if queued_too:
                jobs += list(self._queue)
                self._queue.clear()
            self._runs = 0
            self._generation += 1
        srv.kill()
        if not self._closed:
            log.error("sandbox: fork server lost (%s); %d request(s) failed; restarting",
                      reason, len(jobs))
        for job in jobs:
            self._resolve(job, {"op": "lost", "reason": f"the fork server died: {reason}"})

    def _serve(self, srv: _Server) -> str:
        sel = selectors.DefaultSelector()
        for tier, sock in srv.socks.items():
            sel.register(sock, selectors.EVENT_READ, tier)
        if srv.proc.stderr is not None:
            sel.register(srv.proc.stderr, selectors.EVENT_READ, "err")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        for msg in srv.pending:
            self._dispatch(msg)
        try:
            while not self._closed:
                for key, _ in sel.select(0.2):
                    if key.data == "wake":
                        try:
                            self._wake_r.recv(4096)
                        except BlockingIOError:
                            pass
                        continue
                    if key.data == "err":
                        chunk = os.read(key.fd, 65536)
                        if not chunk:
                            sel.unregister(key.fileobj)
                        else:
                            srv.stderr += chunk
                            del srv.stderr[:-65536]
                            log.debug("sandbox server: %s", chunk.decode("utf-8", "replace"))
                        continue
                    try:
                        data = srv.socks[key.data].recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        time.sleep(0.05)
                        srv.proc.poll()
                        return (f"the {key.data} server exited (sandbox exit status "
                                f"{srv.proc.returncode}; stderr: {srv.stderr_tail() or '-'})")
                    for msg in srv.readers[key.data].feed(data):
                        self._dispatch(msg)
                self._flush_closes()
                now = time.monotonic()
                with self._lock:
                    late = [j for j in self._inflight.values() if j.deadline and now > j.deadline]
                if late:
                    return f"watchdog: no reply to request {late[0].id} in {late[0].grace:.0f} s"
            return "the sandbox was closed"
        finally:
            sel.close()

    def _start(self) -> _Server:
        cfg = self.config
        if self._mode is not None:
            modes = [self._mode]
        elif cfg.isolation == "auto":
            modes = ["bwrap", "rlimits"] if cfg.fallback_allowed else ["bwrap"]
        else:
            modes = [cfg.isolation]
        errors = []
        for mode in modes:
            if mode == "bwrap" and isolation.bwrap_binary() is None:
                errors.append("bwrap: not installed")
                continue
            try:
                srv = self._launch(mode)
            except SandboxError as e:
                errors.append(f"{mode}: {e}")
                continue
            if self._mode is None and errors:
                log.warning("sandbox: bubblewrap is not usable here (%s); falling back to %s",
                            "; ".join(errors), srv.isolation)
            self._mode, self._isolation = mode, srv.isolation
            return srv
        hint = ""
        if cfg.isolation == "auto" and not cfg.fallback_allowed:
            hint = (" (bubblewrap isolation is required; to accept the weaker rlimits fallback "
                    "instead set allow_fallback: true in the sandbox config, pass "
                    f"--allow-fallback to verimath exec, or set {FALLBACK_ENV}=1)")
        raise SandboxError("could not start the sandbox: " + "; ".join(errors) + hint)

    def _launch(self, mode: str) -> _Server:
        cfg = self.config
        python = isolation.python_binary(cfg)
        pairs = {tier: socket.socketpair() for tier in (["heavy", "light"] if self._light
                                                         else ["heavy"])}
        tmpdir = None
        uid_base = isolation.new_uid_base()
        if mode == "bwrap":
            workroot, scrub = "/tmp", ["/dev/shm"]
        else:
            reap_stale_fallbacks()
            tmpdir = tempfile.mkdtemp(prefix=f"{FALLBACK_PREFIX}{os.getpid()}-{uid_base}-")
            os.chmod(tmpdir, 0o711)
            workroot, scrub = tmpdir, isolation.fallback_scrub_dirs()
        native = isolation.native_forker() if cfg.native_forker else None
        files: dict[str, str] = {}
        try:
            script = isolation.server_script()
            if mode == "bwrap":
                inside = isolation.inside_dir(python)
                files[script] = f"{inside}/server.py"
                if native:
                    files[native] = f"{inside}/forker.so"
        except (OSError, ValueError) as e:
            _discard_launch(pairs, tmpdir)
            raise SandboxError(str(e)) from e
        zcfg = isolation.server_config(
            cfg, fd=pairs["heavy"][1].fileno(),
            light_fd=pairs["light"][1].fileno() if "light" in pairs else None,
            uid_base=uid_base, workroot=workroot, scrub_dirs=scrub, bwrap=mode == "bwrap",
            native=files.get(native, native) if native else None)
        command = [python, "-I", files.get(script, script), json.dumps(zcfg)]
        if mode == "bwrap":
            try:
                argv = isolation.bwrap_argv(cfg, isolation.bwrap_binary() or "bwrap", command,
                                            files)
            except ValueError as e:
                _discard_launch(pairs, tmpdir)
                raise SandboxError(str(e)) from e
            env, cwd = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, "/"
        else:
            argv, env, cwd = command, isolation.sandbox_env(), workroot
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=env, cwd=cwd,
                                    pass_fds=[b.fileno() for _, b in pairs.values()],
                                    start_new_session=True)
        except OSError as e:
            for a, _ in pairs.values():
                a.close()
            raise SandboxError(f"cannot start {argv[0]}: {e}") from e
        finally:
            for _, b in pairs.values():
                b.close()
        srv = _Server(proc, {t: a for t, (a, _) in pairs.items()}, mode, uid_base, tmpdir)
        try:
            self._handshake(srv)
        except BaseException:
            srv.kill()
            raise
        feats = sorted(set.intersection(*(set(h.get("features", []))
                                          for h in srv.hello.values())))
        if isolation.is_root() and "uid" not in feats:
            srv.kill()
            raise SandboxError("the fork server could not drop executions to an unprivileged uid")
        for name, err in srv.hello["heavy"].get("failed", {}).items():
            log.warning("sandbox: preload of %s failed: %s", name, err)
        srv.isolation = isolation.describe(mode, feats)
        if "stdlib" not in feats:
            log.warning("sandbox: the sandbox uid cannot read the Python installation (%s); "
                        "programs can import only preloaded modules", sys.base_prefix)
        if "seccomp" not in feats:
            log.warning("sandbox: seccomp filter unavailable; programs can create namespaces%s",
                        " and open network connections" if mode == "rlimits" else "")
        return srv

    def _handshake(self, srv: _Server) -> None:
        """Wait for every server's hello (collecting the sandbox's stderr meanwhile)."""
        assert srv.proc.stderr is not None
        os.set_blocking(srv.proc.stderr.fileno(), False)
        sel = selectors.DefaultSelector()
        for tier, sock in srv.socks.items():
            sel.register(sock, selectors.EVENT_READ, tier)
        sel.register(srv.proc.stderr, selectors.EVENT_READ, "err")
        end = time.monotonic() + self.config.startup_timeout_s
        try:
            while len(srv.hello) < len(srv.socks):
                if time.monotonic() > end or self._closed:
                    raise SandboxError(f"the fork server did not start within "
                                       f"{self.config.startup_timeout_s} s: {srv.stderr_tail()}")
                for key, _ in sel.select(0.1):
                    if key.data == "err":
                        chunk = os.read(key.fd, 65536)
                        if chunk:
                            srv.stderr += chunk
                        else:
                            sel.unregister(key.fileobj)
                        continue
                    data = srv.socks[key.data].recv(65536)
                    if not data:
                        time.sleep(0.1)
                        try:
                            srv.stderr += os.read(srv.proc.stderr.fileno(), 65536)
                        except OSError:
                            pass
                        raise SandboxError(f"the fork server exited ({srv.proc.poll()}): "
                                           f"{srv.stderr_tail() or 'no message'}")
                    for msg in srv.readers[key.data].feed(data):
                        if key.data in srv.hello:
                            srv.pending.append(msg)
                        else:
                            srv.hello[key.data] = msg
        finally:
            sel.close()

"""The fork server ("zygote") that runs *inside* the isolation boundary.

The host starts it as ``python -I <script> <json-config>`` (the script: ``child.py``,
``forker.py``, ``state.py`` and this file, concatenated, bound read-only) under bubblewrap, or
as a plain child process in the fallback. It imports the standard-library preload, forks a
*light* server (for programs that import only the standard library: forking a small process
is ~5x cheaper), then imports and warms up the heavy preload (numpy, sympy), freezes the heap
(``gc.freeze``), backs it with huge pages, and serves the host: length-prefixed JSON frames on
an inherited socket the executions never see.

Executions are forked by a small *forker* process (forked once from the warm server): the
server itself never forks per run, so its heap stays private and the copy-on-write page faults
of each fork hit only the forker's tiny loop (on this VM a page fault costs ~10 us; this halves
the per-run cost). The forker is the executions' parent and a child sub-reaper, so whatever an
execution leaves behind (daemons, zombies) ends up as its child; it reports every exit status
and rusage (``wait4``) to the server on a private socket.

Per execution the server hands the code to a pre-forked, already locked-down child (see
``child.py``), reads its stdout/stderr through a capped reader, enforces the wall-clock limit,
and computes the verdict. Afterwards it kills everything still running under that execution's
uid (a helper that becomes that uid and calls ``kill(-1, SIGKILL)``), removes its files and
SysV IPC objects, and only then reuses the uid. Neither process runs untrusted code.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import select
import selectors
import shutil
import signal
import socket
import stat
import struct
import sys
import time
from collections import deque
from typing import Any

if "__SANDBOX_INSIDE__" not in globals():  # in the sandbox these modules are concatenated
    from verimath.reasoning.sandbox.child import (
        HDR,
        PR_SET_NO_NEW_PRIVS,
        PR_SET_PDEATHSIG,
        REQ,
        FrameReader,
        collapse_hugepages,
        drop_to,
        install_seccomp,
        libc,
        pack,
        prctl,
        recv_fds,
        std_streams,
    )
    from verimath.reasoning.sandbox.forker import (
        EXIT,
        KINDS,
        PID,
        SPAWN,
        DirScrubber,
        kill_uid,
        leftovers,
        scrub_ipc,
        start_forker,
    )
    from verimath.reasoning.sandbox.state import STDLIB_PRELOAD, WARMUP, Capture, Child, verdict


def wait_readable(fds: list[int], timeout_s: float) -> None:
    """Block until one of ``fds`` is readable or ``timeout_s`` passes.

    ``poll``, not ``select()``, which fails on descriptors above 1023 (many sessions).
    """
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN)
    p.poll(max(0, int(timeout_s * 1000 + 0.999)))


def raise_nofile() -> None:
    """Soft ``RLIMIT_NOFILE`` up to the hard limit (at most 2**20): four fds per session."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (OSError, ValueError):
            pass


class Zygote:
    """The fork server. ``cfg``: see ``verimath.reasoning.sandbox.isolation.server_config``."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.pid = os.getpid()
        self.drop = bool(cfg["drop_uid"])
        self.seccomp = bool(cfg["seccomp"])
        self.deny_sockets = not cfg.get("bwrap", False)  # no network namespace to rely on
        self.workroot: str = cfg["workroot"]
        count = cfg["uid_count"] // (2 if cfg.get("light_fd") is not None else 1)
        self.free: deque[int] = deque(range(cfg["uid_base"], cfg["uid_base"] + count))
        self.scrubber = DirScrubber(cfg["scrub_dirs"], cfg["uid_base"],
                                    cfg["uid_base"] + cfg["uid_count"])
        self.sock = socket.socket(fileno=cfg["fd"])
        self.sock.setblocking(False)
        self.reader = FrameReader()
        self.outbuf = bytearray()
        self.want_write = False
        self.sel = selectors.DefaultSelector()
        self.children: dict[int, Child] = {}  # pid -> every live child we forked
        self.idle: list[Child] = []
        self.running: dict[int, Child] = {}  # job id -> child
        self.sessions: dict[int, Child] = {}
        self.exited: list[Child] = []
        self.spawning: deque[dict[str, Any]] = deque()  # asked of the forker, not yet answered
        self.stopping = False
        self.peer = 0  # pid of the light server (forked by the heavy one)
        self.fast = False
        self.forker = 0
        self.fsock: socket.socket | None = None
        self.fixed = {k: cfg[k] for k in ("file_size_mb", "max_open_files", "max_processes",
                                          "session_cpu_s")}

    # ---- start-up ----
    def boot(self) -> None:
        """Preload, fork the light tier, warm up, self-test, say hello."""
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        raise_nofile()
        failed = self._import(STDLIB_PRELOAD, warm=False)
        if self.cfg.get("light_fd") is not None:
            self._fork_light()
        preload = list(self.cfg["preload"])
        failed.update(self._import(preload, warm=bool(self.cfg.get("warmup", True))))
        gc.collect()
        gc.freeze()  # children's GC never touches (and copies) the preloaded heap
        if self.cfg.get("hugepages"):
            try:
                collapse_hugepages()
            except Exception:  # noqa: BLE001 - an optimisation only
                pass
        features = self._self_test()
        self.seccomp = "seccomp" in features
        import faulthandler

        faulthandler.enable()  # inherited by every child: fd 2 is then its stderr pipe
        std_streams()  # inherited by the children (the server itself never prints)
        import atexit

        atexit._clear()  # start-up registrations (site) are not the programs' business
        self.fast = len(os.listdir("/proc/self/task")) == 1
        base = {"drop": self.drop, "seccomp": self.seccomp, "fixed": self.fixed,
                "deny_sockets": self.deny_sockets,
                "fast_fork": self.fast, "pdeathsig": not self.cfg.get("bwrap", False),
                "native": self.cfg.get("native") if self.fast else None}
        self.forker, self.fsock = start_forker(base, self.fast)
        self.sel.register(self.fsock, selectors.EVENT_READ, ("forker", None))
        self.sel.register(self.sock, selectors.EVENT_READ, ("ctrl", None))
        self.send({"op": "hello", "tier": self.cfg.get("tier", "heavy"), "pid": self.pid,
                   "forker": "native" if base["native"] else "python",
                   "loaded": [m for m in preload if m not in failed], "failed": failed,
                   "features": features, "python": sys.version.split()[0]})

    def _import(self, names: list[str], warm: bool) -> dict[str, str]:
        import importlib
        import io

        failed = {}
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as e:  # noqa: BLE001 - reported to the host
                failed[name] = f"{type(e).__name__}: {e}"
        if warm:
            saved, sys.stdout = sys.stdout, io.StringIO()
            try:
                for name in names:
                    if name in WARMUP and name not in failed:
                        exec(compile(WARMUP[name], "<warmup>", "exec", dont_inherit=True), {})
            except Exception as e:  # noqa: BLE001
                failed["warmup"] = f"{type(e).__name__}: {e}"
            finally:
                sys.stdout = saved
        return failed

    def _fork_light(self) -> None:
        fd = self.cfg["light_fd"]
        half = self.cfg["uid_count"] // 2
        pid = os.fork()
        if pid == 0:
            try:
                self.sock.close()
                self.sel.close()
                cfg = dict(self.cfg, fd=fd, light_fd=None, preload=[], warmup=False,
                           hugepages=True, uid_base=self.cfg["uid_base"] + half,
                           uid_count=half, tier="light")
                light = Zygote(cfg)
                light.boot()
                light.serve()
            finally:
                os._exit(0)
        os.close(fd)
        self.peer = pid

    def _self_test(self) -> list[str]:
        """Fork one child through the lockdown and report what actually took effect."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            feats = []
            try:
                os.close(r)
                if self.drop:
                    drop_to(self.free[-1])
                    feats.append("uid")
                prctl(PR_SET_NO_NEW_PRIVS, 1)
                feats.append("nnp")
                if os.access(os.path.dirname(os.__file__), os.R_OK | os.X_OK):
                    feats.append("stdlib")
                if self.seccomp:
                    install_seccomp(deny_sockets=self.deny_sockets)
                    if libc().unshare(0x10000000) != 0:  # CLONE_NEWUSER must be refused
                        try:
                            socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
                            if not self.deny_sockets:
                                feats.append("seccomp")
                        except PermissionError:
                            feats.append("seccomp")
            finally:
                os.write(w, json.dumps(feats).encode())
                os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 4096):
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        return list(json.loads(data or b"[]"))

    # ---- host channel ----
    def send(self, obj: Any) -> None:
        """Queue a frame for the host; never blocks."""
        self.outbuf += pack(obj)
        self._flush_out()

    def _flush_out(self) -> None:
        while self.outbuf:
            try:
                n = self.sock.send(self.outbuf)
            except BlockingIOError:
                break
            except OSError:
                self.stopping = True
                return
            del self.outbuf[:n]
        want = bool(self.outbuf)
        if want != self.want_write:
            self.want_write = want
            mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
            self.sel.modify(self.sock, mask, ("ctrl", None))

    def _on_ctrl(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush_out()
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.stopping = True
            return
        for msg in self.reader.feed(data):
            op = msg.get("op")
            if op == "run":
                self.start_run(msg)
            elif op == "open":
                self.open_session(msg)
            elif op == "cell":
                self.start_cell(msg)
            elif op == "close":
                c = self.sessions.get(msg["sid"])
                if c is not None:
                    self.kill_tree(c)
            elif op == "shutdown":
                self.stopping = True

    # ---- forking ----
    def _workdir(self, slot: int, uid: int) -> str:
        """The slot's private 0700 working dir, reused when it is still empty."""
        path = os.path.join(self.workroot, str(slot))
        try:
            st = os.lstat(path)
            if (stat.S_ISDIR(st.st_mode) and st.st_uid == uid
                    and stat.S_IMODE(st.st_mode) == 0o700 and not os.listdir(path)):
                return path
            shutil.rmtree(path, ignore_errors=True)
            if os.path.lexists(path):
                os.unlink(path)
        except FileNotFoundError:
            pass
        os.mkdir(path, 0o700)
        if self.drop:
            os.chown(path, uid, uid)
        return path

    def request_spawn(self, kind: str, limits: tuple[float, int], echo: bool = True,
                      idle: bool = False) -> dict[str, Any]:
        """Ask the forker for a locked-down child (it waits for its request on fd 4).

        Returns the pending record; its "child" is set when the forker's answer arrives (see
        :meth:`_forker_msg`), and an ``idle`` child then joins the pre-forked pool.
        """
        if not self.free:
            raise RuntimeError("no free sandbox uid (too many concurrent executions/sessions)")
        slot = self.free.popleft()
        uid = slot if self.drop else os.getuid()
        workdir = self._workdir(slot, uid)
        assert self.fsock is not None
        self.fsock.send(SPAWN.pack(uid, KINDS.index(kind), int(echo), limits[1], limits[0],
                                   workdir.encode()))
        rec = {"kind": kind, "slot": slot, "uid": uid, "workdir": workdir, "limits": limits,
               "idle": idle, "child": None}
        self.spawning.append(rec)
        return rec

    def await_spawn(self, rec: dict[str, Any]) -> Child:
        """Block until the forker has answered ``rec``."""
        assert self.fsock is not None
        while rec["child"] is None:
            msg, got = recv_fds(self.fsock, 4)
            if not msg:
                self.stopping = True
                raise RuntimeError("the forker died")
            self._forker_msg(msg, got)
        return rec["child"]  # type: ignore[no-any-return]

    def _spawned(self, msg: bytes, got: list[int]) -> None:
        rec = self.spawning.popleft()  # the forker answers in order
        pid = PID.unpack_from(msg, 1)[0]
        fds = {"req": got[0], "out": got[1], "err": got[2], "st": got[3]}
        for k in ("out", "err", "st"):
            os.set_blocking(fds[k], False)
        c = Child(pid, rec["slot"], rec["uid"], fds, rec["workdir"], rec["limits"], rec["kind"])
        self.children[pid] = c
        self.sel.register(fds["st"], selectors.EVENT_READ, ("st", c))
        rec["child"] = c
        if rec["idle"]:
            self.idle.append(c)

    def _wait_ready(self, c: Child, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while not c.ready and not c.setup_error and "st" in c.fds:
            left = end - time.monotonic()
            if left <= 0:
                break
            wait_readable([c.fds["st"]], left)
            self._on_status(c)

    def _take(self, lim: tuple[float, int], kind: str, echo: bool = True) -> Child:
        """A ready child for ``lim``: a pre-forked one if its limits allow, else a new one."""
        def fits(limits: tuple[float, int]) -> bool:
            return kind == "run" and limits[0] >= lim[0] and limits[1] >= lim[1]

        c = next((x for x in self.idle if fits(x.limits)), None)
        if c is None:  # a pre-fork on its way?
            rec = next((r for r in self.spawning if r["idle"] and fits(r["limits"])), None)
            if rec is not None:
                c = self.await_spawn(rec)
        if c is not None:
            self.idle.remove(c)
        else:
            c = self.await_spawn(self.request_spawn(kind, lim, echo))
        self._wait_ready(c)
        if not c.ready:
            err = c.setup_error or "it did not get ready"
            self._discard(c)
            raise RuntimeError(f"an execution process failed to start: {err}")
        return c

    # ---- runs ----
    def start_run(self, msg: dict[str, Any]) -> None:
        """Hand a program to a ready child and start its clock."""
        lim = (float(msg["timeout_s"]), int(msg["memory_mb"]))
        try:
            c = self._take(lim, "run")
        except Exception as e:  # noqa: BLE001
            self.send(self._error(msg["id"], str(e)))
            return
        c.job, c.capture, c.kill_output = msg["id"], Capture(msg["max_output"]), msg["kill_output"]
        self.running[msg["id"]] = c
        for k, stream in (("out", 1), ("err", 2)):
            self.sel.register(c.fds[k], selectors.EVENT_READ, ("pipe", (c, k, stream)))
        c.started = time.monotonic()
        c.deadline = c.started + lim[0]
        data = msg["code"].encode("utf-8")
        try:
            os.write(c.fds["req"], REQ.pack(lim[0], lim[1], len(data)) + data)
        except OSError:
            pass  # it died; the reaper reports how
        os.close(c.fds.pop("req"))
        self._top_up()

    def _top_up(self) -> None:
        """Ask for the replacement pre-fork now: the forker forks it while this run runs."""
        coming = sum(1 for r in self.spawning if r["idle"])
        if len(self.idle) + coming < int(self.cfg["prefork"]) and self.free:
            self.request_spawn("run", (float(self.cfg["timeout_s"]), int(self.cfg["memory_mb"])),
                               idle=True)

    def _error(self, job: int, text: str) -> dict[str, Any]:
        return {"op": "result", "id": job, "status": "sandbox_error", "stdout": "",
                "stderr": f"[sandbox] {text}\n", "exit_code": None, "wall_time_s": 0.0,
                "cpu_time_s": 0.0}

    # ---- pipes ----
    def _on_pipe(self, c: Child, key: str, stream: int) -> bool:
        """Read once from a child's stdout/stderr; False when nothing was there."""
        fd = c.fds.get(key)
        if fd is None:
            return False
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._close_fd(c, key)
            return False
        if c.capture is None:
            c.capture = Capture(int(self.cfg["max_output_bytes"]))
        c.capture.feed(stream, data)
        if c.kill_output and c.capture.total > c.kill_output and not c.output_killed:
            c.output_killed = True
            self.kill_tree(c)
        return True

    def _on_status(self, c: Child) -> None:
        fd = c.fds.get("st")
        while fd is not None:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self._close_fd(c, "st")
                break
            c.st_buf += data
        self._parse_status(c)

    def _parse_status(self, c: Child) -> None:
        buf = c.st_buf
        if not c.ready and buf:
            if buf[:1] == b"S":  # before "R" only our own code has run in the child
                c.setup_error = buf[1:].decode("utf-8", "replace") or "setup failed"
                buf.clear()
                return
            if buf[:1] == b"R":
                if len(buf) < 9:
                    return
                c.ready = True
                c.cpu_base = struct.unpack_from("<d", buf, 1)[0]
                del buf[:9]
        while c.ready and buf:
            if buf[:1] == b"C" and c.kind == "session":
                if len(buf) < 5 or len(buf) < 5 + HDR.unpack_from(buf, 1)[0]:
                    return
                n = HDR.unpack_from(buf, 1)[0]
                try:
                    msg = json.loads(bytes(buf[5 : 5 + n]))
                except ValueError:
                    msg = None
                del buf[: 5 + n]
                if c.job is not None:
                    c.cell_msg = msg if isinstance(msg, dict) else {"r": "err", "exit": 1}
                    self._finish_cell(c)
            else:
                c.memory = c.memory or buf[:1] == b"M"
                del buf[:1]

    def _close_fd(self, c: Child, key: str) -> None:
        fd = c.fds.pop(key, None)
        if fd is None:
            return
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass
        os.close(fd)

    def _drain(self, c: Child, wait_s: float = 0.0) -> None:
        """Read what the child's pipes hold; with ``wait_s``, wait up to that long for EOF."""
        end = time.monotonic() + wait_s
        while True:
            for key, stream in (("out", 1), ("err", 2)):
                while self._on_pipe(c, key, stream):
                    pass
            self._on_status(c)
            open_fds = [c.fds[k] for k in ("out", "err") if k in c.fds]
            left = end - time.monotonic()
            if not open_fds or left <= 0:
                return
            wait_readable(open_fds, left)

    # ---- reaping and cleanup ----
    def _on_forker(self) -> None:
        """Handle the forker's exit reports without blocking."""
        assert self.fsock is not None
        while True:
            try:
                msg, fds = recv_fds(self.fsock, 4, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                msg, fds = b"", []
            if not msg:
                self.stopping = True  # the forker died: let the host restart everything
                return
            self._forker_msg(msg, fds)

    def _forker_msg(self, msg: bytes, fds: list[int]) -> None:
        if msg[:1] == b"P" and len(fds) == 4 and self.spawning:
            self._spawned(msg, fds)
            return
        for fd in fds:
            os.close(fd)
        if msg[:1] == b"X":
            pid, status, cpu = EXIT.unpack_from(msg, 1)
            c = self.children.pop(pid, None)
            if c is not None:
                c.exit = (status, cpu)
                self.exited.append(c)

    def _leftovers(self, uid: int | None) -> list[int]:
        return leftovers(self.forker, self.children, uid)

    def kill_tree(self, c: Child) -> None:
        """SIGKILL the child and everything running with its uid."""
        if self.drop:
            kill_uid(c.uid)
            return
        for p in (-c.pid, c.pid):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass

    def cleanup(self, c: Child) -> bool:
        """After ``c`` exited: kill its leftovers, drain its pipes, remove its files.

        Returns False when something of its uid would not die (the uid is then retired).
        """
        uid = c.uid if self.drop else None
        ok = True
        self._drain(c)
        if "out" in c.fds or "err" in c.fds or self._leftovers(uid):
            self.kill_tree(c)
            end = time.monotonic() + 3.0
            while True:
                self._on_forker()
                left = self._leftovers(uid)
                if not left:
                    break
                for p in left:  # the forker's children: pids not recycled before it reaps
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                if time.monotonic() > end:
                    ok = False
                    break
                time.sleep(0.002)
            self._drain(c, wait_s=0.5)
        for key in list(c.fds):
            self._close_fd(c, key)
        self._scrub(c)
        return ok

    def _scrub(self, c: Child) -> None:
        """Remove the child's files: its working dir, its uid's entries in shared dirs, IPC."""
        try:
            if os.listdir(c.workdir):
                shutil.rmtree(c.workdir, ignore_errors=True)
        except OSError:
            shutil.rmtree(c.workdir, ignore_errors=True)
        if self.drop:
            self.scrubber.scrub(c.uid)
            scrub_ipc(c.uid)

    def _release(self, c: Child, ok: bool) -> None:
        if ok:
            self.free.append(c.slot)  # FIFO: a uid rests a long while before its reuse

    def _discard(self, c: Child) -> None:
        """Kill and forget a child that is not in use (idle, or failed to start)."""
        self.kill_tree(c)
        end = time.monotonic() + 5.0
        while c.pid in self.children and time.monotonic() < end and not self.stopping:
            self._on_forker()
            time.sleep(0.001)
        self.children.pop(c.pid, None)
        if c in self.exited:
            self.exited.remove(c)
        self._release(c, self.cleanup(c))

    def process_exits(self) -> None:
        """Finish runs and sessions whose process exited."""
        while self.exited:
            c = self.exited.pop(0)
            if c.kind == "session":
                self._session_died(c)
            elif c.job is not None:
                self.running.pop(c.job, None)
                ok = self.cleanup(c)
                self.send(verdict(c, float(self.cfg["session_cpu_s"])))
                self._release(c, ok)
            else:  # an idle child died before use
                if c in self.idle:
                    self.idle.remove(c)
                self._release(c, self.cleanup(c))

    # ---- sessions ----
    def open_session(self, msg: dict[str, Any]) -> None:
        """Start a session interpreter (a child running the REPL loop)."""
        try:
            c = self._take((0.0, int(msg["memory_mb"])), "session", bool(msg["echo"]))
        except Exception as e:  # noqa: BLE001
            self.send({"op": "opened", "id": msg["id"], "error": str(e)})
            return
        c.sid = msg["sid"]
        self.sessions[msg["sid"]] = c
        for k, stream in (("out", 1), ("err", 2)):
            self.sel.register(c.fds[k], selectors.EVENT_READ, ("pipe", (c, k, stream)))
        self.send({"op": "opened", "id": msg["id"], "error": None})

    def start_cell(self, msg: dict[str, Any]) -> None:
        """Send a cell to a session's interpreter."""
        c = self.sessions.get(msg["sid"])
        if c is None or c.exit is not None or "req" not in c.fds:
            self.send({"op": "result", "id": msg["id"], "dead": True})
            return
        pending, c.capture = c.capture, Capture(msg["max_output"])
        if pending is not None:  # printed between cells (background threads)
            c.capture.feed(1, bytes(pending.out))
            c.capture.feed(2, bytes(pending.err))
        c.job, c.kill_output, c.cell_msg = msg["id"], msg["kill_output"], None
        c.started = time.monotonic()
        c.deadline = c.started + float(msg["timeout_s"])
        try:
            os.write(c.fds["req"], pack({"code": msg["code"]}))
        except OSError:
            pass

    def _finish_cell(self, c: Child) -> None:
        self._drain(c)
        cap, msg = c.capture or Capture(0), c.cell_msg or {}
        res: dict[str, Any] = {
               "op": "result", "id": c.job, "exit_code": int(msg.get("exit", 1)),
               "status": {"ok": "ok", "mem": "memory"}.get(str(msg.get("r")), "runtime_error"),
               "stdout": cap.out.decode("utf-8", "replace"),
               "stderr": cap.err.decode("utf-8", "replace"),
               "wall_time_s": round(time.monotonic() - c.started, 6),
               "cpu_time_s": round(float(msg.get("cpu", 0.0)), 6)}
        if cap.total > cap.kept:
            res["stderr"] += f"[sandbox] output truncated: kept {cap.kept} of {cap.total} bytes\n"
            if res["status"] in ("ok", "runtime_error"):
                res["status"] = "output_limit"
        c.job, c.capture, c.deadline = None, None, 0.0
        self.send(res)

    def _session_died(self, c: Child) -> None:
        self.sessions.pop(c.sid, None)  # type: ignore[arg-type]
        ok = self.cleanup(c)
        if c.job is not None:
            res = verdict(c, float(self.cfg["session_cpu_s"]))
            res["stderr"] += "[sandbox] the session's interpreter ended; its state is lost\n"
            res["ended"] = True
            self.send(res)
        self._release(c, ok)

    # ---- main loop ----
    def check_deadlines(self) -> float | None:
        """Kill executions past their wall-clock deadline; return the next deadline."""
        now = time.monotonic()
        nxt: float | None = None
        for c in list(self.running.values()) + list(self.sessions.values()):
            if c.job is None or c.timed_out or c.exit is not None or not c.deadline:
                continue
            if now >= c.deadline:
                c.timed_out = True
                self.kill_tree(c)
            else:
                nxt = c.deadline if nxt is None else min(nxt, c.deadline)
        return nxt

    def serve(self) -> None:
        """Event loop until the host asks to stop or goes away."""
        prefork = int(self.cfg["prefork"])
        while not self.stopping:
            nxt = self.check_deadlines()
            events = self.sel.select(0)
            coming = sum(1 for r in self.spawning if r["idle"])
            if (not events and not self.exited and len(self.idle) + coming < prefork
                    and self.free):  # pre-fork only when nothing else is waiting
                self.request_spawn("run", (float(self.cfg["timeout_s"]),
                                           int(self.cfg["memory_mb"])), idle=True)
                continue
            if not events:
                timeout = None if nxt is None else max(0.0, nxt - time.monotonic())
                events = self.sel.select(timeout)
            for key, mask in events:
                kind, obj = key.data
                if kind == "ctrl":
                    self._on_ctrl(mask)
                elif kind == "pipe":
                    self._on_pipe(*obj)
                elif kind == "st":
                    self._on_status(obj)
                elif kind == "forker":
                    self._on_forker()
            self.process_exits()


def main() -> None:
    """Entry point inside the sandbox: ``python -I <script> <json-config>``."""
    cfg = json.loads(sys.argv[1])
    os.environ.update(cfg.get("env", {}))
    os.environ.pop("PWD", None)
    zygote = Zygote(cfg)
    zygote.boot()
    zygote.serve()


if __name__ == "__main__":
    main()

"""The forker (the one process that forks executions) and the server's cleanup helpers.

Standard library only; concatenated with ``child.py`` and ``server.py`` inside the sandbox.

Why a separate forker: after every ``fork`` all of the parent's pages are shared copy-on-write,
so each page the parent writes afterwards costs a fault (~10 us on this VM). The server's
Python event loop writes a few hundred pages per run; the forker's loop writes only a few
dozen, and the server, which no longer forks, keeps its heap private.

Protocol on a SOCK_SEQPACKET pair: the server sends a JSON spec (kind, uid, workdir, limits,
echo); the forker forks a child (``child.child_main``) and answers ``P`` + pid with the parent
ends of the child's request/stdout/stderr/status pipes attached (SCM_RIGHTS). Whenever it reaps
a process (its children and the orphans it inherits as sub-reaper) it sends ``X`` + (pid, wait
status, CPU seconds).
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import socket
import struct
import time
from typing import Any

if "__SANDBOX_INSIDE__" not in globals():  # in the sandbox these modules are concatenated
    from verimath.reasoning.sandbox.child import (
        PR_SET_CHILD_SUBREAPER,
        PR_SET_NO_NEW_PRIVS,
        PR_SET_PDEATHSIG,
        child_main,
        child_run,
        clear_capabilities,
        drop_to,
        fast_fork,
        inherited_limits,
        install_seccomp,
        libc,
        prctl,
        prepare_main,
        proc_status,
        recv_fds,
    )

EXIT = struct.Struct("<iid")  # pid, wait status, user + system CPU seconds
PID = struct.Struct("<i")
# uid, kind (0 run, 1 session), echo, memory_mb, timeout_s, workdir
SPAWN = struct.Struct("<IIIId512s")
KINDS = ("run", "session")


class _NativeConfig(ctypes.Structure):
    _fields_ = [("sock", ctypes.c_int), ("null_fd", ctypes.c_int), ("drop", ctypes.c_int),
                ("pdeathsig", ctypes.c_int), ("nofile", ctypes.c_int),
                ("session_cpu_s", ctypes.c_int), ("vsz", ctypes.c_uint64)]


class _NativeChild(ctypes.Structure):
    _fields_ = [("uid", ctypes.c_uint32), ("kind", ctypes.c_uint32), ("echo", ctypes.c_uint32),
                ("memory_mb", ctypes.c_uint32), ("timeout_s", ctypes.c_double)]


def spawn_spec(msg: bytes) -> dict[str, Any]:
    """Decode a SPAWN request."""
    uid, kind, echo, memory_mb, timeout_s, workdir = SPAWN.unpack(msg)
    return {"uid": uid, "kind": KINDS[kind], "echo": bool(echo),
            "limits": (timeout_s, memory_mb), "workdir": workdir.rstrip(b"\0").decode()}


class Forker:
    """The forking loop; see the module docstring."""

    def __init__(self, sock: socket.socket, base: dict[str, Any], fast: bool) -> None:
        self.sock, self.base, self.fast = sock, base, fast
        self.pid = os.getpid()
        self.ep = select.epoll()
        self.pidfds: dict[int, int] = {}  # pid -> pidfd
        self.by_fd: dict[int, int] = {}

    def lock_down(self) -> None:
        """Set what every execution inherits.

        That is no_new_privs, the seccomp filter, no inheritable capabilities, the
        shared rlimits and /dev/null for stdin.
        """
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL.value)
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        if self.base["seccomp"]:
            install_seccomp(deny_sockets=self.base["deny_sockets"])
        if self.base["drop"]:
            clear_capabilities(keep_permitted=True)
        inherited_limits(self.base["fixed"])
        self.base["null_fd"] = os.open("/dev/null", os.O_RDONLY)
        with open("/proc/self/statm") as f:
            self.base["vsz"] = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")

    def serve(self) -> None:
        """Fork on request and report exits until the server goes away."""
        self.lock_down()
        prepare_main()
        if self.base.get("native"):
            self._serve_native(self.base["native"])
            return
        sfd = self.sock.fileno()
        self.ep.register(sfd, select.EPOLLIN)
        while True:
            for fd, _ in self.ep.poll():
                if fd == sfd:
                    if not self._command():
                        return
                else:
                    self.ep.unregister(fd)
            self._reap()

    def _serve_native(self, path: str) -> None:
        """The same loop in C (forker.c); returns in the parent only when the server is gone."""
        fixed = self.base["fixed"]
        cfg = _NativeConfig(self.sock.fileno(), self.base["null_fd"], int(self.base["drop"]),
                            int(self.base["pdeathsig"]), int(fixed["max_open_files"]),
                            int(fixed["session_cpu_s"]), self.base["vsz"])
        out = _NativeChild()
        if ctypes.CDLL(path).vm_forker_loop(ctypes.byref(cfg), ctypes.byref(out)) != 1:
            return
        spec = dict(self.base, uid=out.uid, kind=KINDS[out.kind], echo=bool(out.echo),
                    limits=(out.timeout_s, out.memory_mb), zygote_pid=self.pid)
        child_run(spec, self.base["vsz"])  # in the new execution process; never returns

    def _command(self) -> bool:
        msg, fds = recv_fds(self.sock, 1)
        for fd in fds:
            os.close(fd)
        if not msg:
            return False
        spec = dict(self.base)
        spec.update(spawn_spec(msg))
        spec["zygote_pid"] = self.pid
        pipes = [os.pipe() for _ in range(4)]  # request, stdout, stderr, status
        pid = fast_fork() if self.fast else os.fork()
        if pid == 0:
            try:
                child_main(spec, pipes)
            finally:
                os._exit(111)
        keep = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
        for i, (r, w) in enumerate(pipes):
            os.close(r if i == 0 else w)
        try:
            pfd = os.pidfd_open(pid)
            self.ep.register(pfd, select.EPOLLIN)
            self.pidfds[pid] = pfd
        except OSError:
            pass  # exits are still found by the next reap
        socket.send_fds(self.sock, [b"P" + PID.pack(pid)], keep)
        for fd in keep:
            os.close(fd)
        return True

    def _reap(self) -> None:
        while True:
            try:
                pid, status, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            pfd = self.pidfds.pop(pid, None)
            if pfd is not None:
                try:
                    self.ep.unregister(pfd)
                except (OSError, ValueError):
                    pass
                os.close(pfd)
            self.sock.send(b"X" + EXIT.pack(pid, status, ru.ru_utime + ru.ru_stime))


def start_forker(base: dict[str, Any], fast: bool) -> tuple[int, socket.socket]:
    """Fork the forker; returns (its pid, the server's end of its socket)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            a.close()
            Forker(b, base, fast).serve()
        finally:
            os._exit(0)
    b.close()
    return pid, a


# --- cleanup helpers (used by the server) --------------------------------------------------------


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` in one atomic sweep.

    A helper becomes ``uid`` and calls ``kill(-1)``, which reaches all processes it may signal
    except itself. The sweep is atomic with respect to fork, so nothing escapes it.
    """
    pid = os.fork()
    if pid == 0:
        try:
            drop_to(uid)
            os.kill(-1, signal.SIGKILL)
        except BaseException:  # noqa: BLE001
            pass
        os._exit(0)
    os.waitpid(pid, 0)


def leftovers(parent: int, known: set[int] | dict[int, Any], uid: int | None) -> list[int]:
    """Live children of ``parent`` not in ``known`` (orphans it inherited).

    Only those whose real uid is ``uid`` (any uid when None).
    """
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return []
    out = []
    for p in pids:
        if p in known:
            continue
        st = proc_status(p)
        if st is not None and st[1] not in "ZX" and (uid is None or st[0] == uid):
            out.append(p)
    return out


class DirScrubber:
    """Removes what an execution's uid left at the top of shared writable dirs (/tmp, ...).

    A directory is listed (every entry lstat-ed) only when its mtime changed since the last
    listing: creating or removing an entry changes it, so the owners seen then are still right.
    A listing is trusted only if the mtime it saw is older than the listing's own coarse-clock
    tick (two changes within one tick can share an mtime).
    """

    def __init__(self, dirs: list[str], uid_lo: int, uid_hi: int) -> None:
        self.dirs, self.lo, self.hi = dirs, uid_lo, uid_hi
        self.seen: dict[str, tuple[int, dict[str, int]]] = {}

    def scrub(self, uid: int) -> None:
        """Remove the entries owned by ``uid``."""
        for d in self.dirs:
            try:
                mtime = os.stat(d).st_mtime_ns
            except OSError:
                continue
            cached = self.seen.pop(d, None)
            if cached is None or cached[0] != mtime:
                now = time.clock_gettime_ns(5)  # CLOCK_REALTIME_COARSE (Linux)
                owners = {}
                try:
                    with os.scandir(d) as it:
                        for entry in it:
                            try:
                                u = entry.stat(follow_symlinks=False).st_uid
                            except OSError:
                                continue
                            if self.lo <= u < self.hi:
                                owners[entry.name] = u
                except OSError:
                    continue
                cached = (mtime, owners) if mtime < now else None
            mine = [name for name, u in (cached[1] if cached else owners).items() if u == uid]
            for name in mine:
                path = os.path.join(d, name)
                try:
                    if os.lstat(path).st_uid != uid:
                        continue
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.unlink(path)
                except OSError:
                    pass
            if cached is not None and not mine:
                self.seen[d] = cached  # still valid; after a removal, list again next time


def _ipc_in_use() -> bool:
    """Whether any SysV IPC object exists in this IPC namespace (three syscalls).

    ``shmctl(SHM_INFO)`` ``used_ids``, ``msgctl(MSG_INFO)`` ``msgpool`` and
    ``semctl(SEM_INFO)`` ``semusz`` count the segments, queues and semaphore sets in use
    (see ``shmctl(2)``, ``msgctl(2)``, ``semctl(2)``). True when unsure.
    """
    lib = libc()
    buf = ctypes.create_string_buffer(256)
    for call, field in ((lambda: lib.shmctl(0, 14, buf), 0), (lambda: lib.msgctl(0, 12, buf), 0),
                        (lambda: lib.semctl(0, 0, 19, buf), 7)):
        ctypes.memset(buf, 0, 256)
        if call() < 0 or struct.unpack_from("10i", buf.raw)[field] != 0:
            return True
    return False


def scrub_ipc(uid: int) -> None:
    """Remove SysV shared memory, semaphores and message queues owned by ``uid``.

    Skips reading ``/proc/sysvipc`` when the namespace holds no IPC object at all (the usual
    case under bubblewrap, whose IPC namespace is the sandbox's own). The removal runs in a
    helper that becomes ``uid``: ``IPC_RMID`` of another user's object needs CAP_SYS_ADMIN,
    which the server does not keep under bubblewrap.
    """
    if not _ipc_in_use():
        return
    found: list[tuple[str, int]] = []
    for kind, uid_col in (("shm", 7), ("sem", 4), ("msg", 9)):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > uid_col and int(cols[uid_col]) == uid:
                found.append((kind, int(cols[1])))
    if not found:
        return
    pid = os.fork()
    if pid == 0:
        try:
            if os.getuid() != uid:
                drop_to(uid)
            for kind, ident in found:
                if kind == "sem":
                    libc().semctl(ident, 0, 0)  # IPC_RMID
                else:
                    getattr(libc(), kind + "ctl")(ident, 0, None)
        except BaseException:  # noqa: BLE001
            pass
        os._exit(0)
    os.waitpid(pid, 0)

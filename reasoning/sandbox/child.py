"""What runs in a forked execution process, plus the low-level helpers the fork server needs.

Standard library only. Inside the sandbox this file and ``server.py`` are concatenated into one
script, bound read-only and run by path with ``python -I`` (the project is not mounted there);
on the host ``server.py`` imports it.

An execution process: starts its own session, dups stdin=/dev/null, stdout/stderr pipes, a
private status pipe (fd 3) and a request pipe (fd 4), closes every other descriptor, sets
rlimits, drops to its own uid (when root) with no capabilities, sets ``no_new_privs`` (and in
the fallback installs a seccomp filter denying ``socket()``), writes ``R`` on fd 3, and waits for
its code. The verdict is computed by the fork server from ``wait4``; fd 3 only carries hints
(``M``: the program died of MemoryError; ``C``+frame: a session cell finished), which a program
can at most use to misreport itself.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import fcntl
import json
import linecache
import os
import resource
import signal
import struct
import sys
import threading
import types
from typing import Any

HDR = struct.Struct(">I")
REQ = struct.Struct(">dII")  # run request to a pre-forked child: timeout_s, memory_mb, len
MAX_FRAME = 256 << 20
SELF_FILE = (lambda: None).__code__.co_filename  # the server script's frames (not shown)
PROGRAM_FILE = "<program>"

# --- framing (host <-> server <-> child) -------------------------------------------------------


def pack(obj: Any) -> bytes:
    """One frame: 4-byte big-endian length + UTF-8 JSON."""
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return HDR.pack(len(data)) + data


class FrameReader:
    """Incremental decoder of :func:`pack` frames."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Append ``data``; return the complete frames decoded so far."""
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = HDR.unpack_from(self.buf)
            if n > MAX_FRAME:
                raise ValueError(f"frame of {n} bytes is too large")
            if len(self.buf) < 4 + n:
                break
            out.append(json.loads(bytes(self.buf[4 : 4 + n]).decode("utf-8")))
            del self.buf[: 4 + n]
        return out


def _read_exact(fd: int, n: int) -> bytes | None:
    parts, got = [], 0
    while got < n:
        b = os.read(fd, n - got)
        if not b:
            return None
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def read_frame(fd: int) -> Any:
    """Blocking read of one frame from ``fd``; None at EOF."""
    hdr = _read_exact(fd, 4)
    if hdr is None:
        return None
    data = _read_exact(fd, HDR.unpack(hdr)[0])
    return None if data is None else json.loads(data.decode("utf-8"))


def recv_fds(sock: Any, maxfds: int, flags: int = 0) -> tuple[bytes, list[int]]:
    """One message and up to ``maxfds`` SCM_RIGHTS descriptors.

    (``socket.recv_fds`` of Python 3.11 ignores ``flags``.) Raises BlockingIOError with
    MSG_DONTWAIT when no message is waiting.
    """
    import array
    import socket

    fds = array.array("i")
    msg, anc, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(maxfds * fds.itemsize), flags)
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


# --- libc helpers --------------------------------------------------------------------------------

_libc: list[Any] = []
PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 22, 36, 38


def libc() -> Any:
    """``ctypes`` handle on the C library (loaded once)."""
    if not _libc:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        lib.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _libc.append(lib)
    return _libc[0]


def prctl(option: int, arg: int = 0) -> None:
    """``prctl(option, arg, 0, 0, 0)``; raises OSError on failure."""
    if libc().prctl(option, arg, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl({option}): {os.strerror(e)}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


def clear_capabilities(keep_permitted: bool = False) -> None:
    """``capset`` all sets to zero, or (``keep_permitted``) only the inheritable set.

    The forker clears its inheritable set once, so executions start with none; after
    ``setuid`` to a non-root uid the kernel has already cleared their other sets.
    """
    hdr = _CapHeader(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    if keep_permitted and libc().capget(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[2] = data[5] = 0  # inheritable (low and high words)
    if not keep_permitted:
        data[0] = data[1] = data[3] = data[4] = 0
    if libc().capset(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


# syscall numbers: (audit arch, socket, clone, {name: nr} of the always-denied calls)
_ARCH = {
    "x86_64": (0xC000003E, 41, 56, {"unshare": 272, "setns": 308, "clone3": 435, "bpf": 321,
                                    "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250,
                                    "add_key": 248, "request_key": 249, "io_uring_setup": 425,
                                    "io_uring_enter": 426, "io_uring_register": 427}),
    "aarch64": (0xC00000B7, 198, 220, {"unshare": 97, "setns": 268, "clone3": 435, "bpf": 280,
                                       "perf_event_open": 241, "userfaultfd": 282,
                                       "keyctl": 219, "add_key": 217, "request_key": 218,
                                       "io_uring_setup": 425, "io_uring_enter": 426,
                                       "io_uring_register": 427}),
}
CLONE_NS_FLAGS = 0x7E020080  # NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET NEWTIME
_SECCOMP: dict[bool, Any] = {}


def _seccomp_prog(deny_sockets: bool) -> Any:
    if deny_sockets not in _SECCOMP:
        machine = os.uname().machine
        if machine not in _ARCH:
            raise OSError(errno.ENOSYS, f"no seccomp filter for {machine}")
        audit_arch, nr_socket, nr_clone, denied = _ARCH[machine]
        ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
        allow, err = 0x7FFF0000, 0x00050000
        prog = [(ld, 0, 0, 4), (jeq, 1, 0, audit_arch), (ret, 0, 0, err | errno.EPERM),
                (ld, 0, 0, 0), (jge, 0, 1, 0x40000000), (ret, 0, 0, err | errno.EPERM)]
        rules = [(nr, err | (errno.ENOSYS if name == "clone3" else errno.EPERM))
                 for name, nr in denied.items()]  # ENOSYS: glibc then falls back to clone
        if deny_sockets:
            rules.append((nr_socket, err | errno.EACCES))
        for nr, action in rules:
            prog += [(jeq, 0, 1, nr), (ret, 0, 0, action)]
        prog += [(jeq, 0, 3, nr_clone), (ld, 0, 0, 16), (jset, 0, 1, CLONE_NS_FLAGS),
                 (ret, 0, 0, err | errno.EPERM), (ret, 0, 0, allow)]
        arr = (_SockFilter * len(prog))(*[_SockFilter(*p) for p in prog])
        _SECCOMP[deny_sockets] = (arr, _SockFprog(len(prog), arr))
    return _SECCOMP[deny_sockets][1]


def install_seccomp(deny_sockets: bool) -> None:
    """Install the executions' seccomp filter (inherited by everything they start).

    Denied (EPERM): new namespaces (``unshare``, ``setns``, ``clone`` with namespace flags, so
    no user namespace with capabilities inside), ``bpf``, ``perf_event_open``, ``userfaultfd``,
    the key-ring calls, io_uring, foreign-ABI syscalls; ``clone3`` gets ENOSYS (glibc falls
    back to ``clone``). With ``deny_sockets`` (the fallback, which has no network namespace)
    ``socket()`` fails with EACCES; ``socketpair()`` stays allowed. Needs ``no_new_privs``.
    Raises OSError when it cannot be installed.
    """
    if libc().prctl(PR_SET_SECCOMP, 2, ctypes.addressof(_seccomp_prog(deny_sockets)), 0, 0):
        raise OSError(ctypes.get_errno(), "seccomp")


def collapse_hugepages() -> None:
    """Back the big anonymous heap regions with transparent huge pages (MADV_COLLAPSE).

    Fewer page-table entries make each fork and, above all, each child's exit cheaper
    (measured: fork + exit of the numpy/sympy server 4.9 ms -> 1.8 ms). Best effort.
    """
    huge = 2 << 20
    with open("/proc/self/maps") as f:
        lines = f.readlines()
    for line in lines:
        parts = line.split()
        if "w" not in parts[1] or (len(parts) > 5 and parts[5] != "[heap]"):
            continue
        a, b = (int(x, 16) for x in parts[0].split("-"))
        a2, b2 = (a + huge - 1) & ~(huge - 1), b & ~(huge - 1)
        if b2 - a2 >= huge:
            libc().madvise(a2, b2 - a2, 14)  # MADV_HUGEPAGE
            libc().madvise(a2, b2 - a2, 25)  # MADV_COLLAPSE (Linux >= 6.1)


_PY: list[Any] = []


def fast_fork() -> int:
    """``fork(2)`` without CPython's at-fork machinery.

    Skips lock re-initialisation and the ``os.register_at_fork`` hooks (threading's alone
    costs ~100 page faults per fork). Only valid in a single-threaded process (the server
    checks ``/proc/self/task``). The child must reseed ``random`` itself
    (:func:`after_fast_fork`).
    """
    if not _PY:
        _PY.append(ctypes.PyDLL(None, use_errno=True))  # PyDLL: the GIL stays held
    pid = int(_PY[0].fork())
    if pid < 0:
        raise OSError(ctypes.get_errno(), "fork failed")
    return pid


def after_fast_fork() -> None:
    """What the skipped at-fork hooks did that matters in a single-threaded child.

    That is reseeding ``random`` (through the C method, which touches fewer pages).
    """
    rnd = sys.modules.get("random")
    if rnd is not None:
        import _random

        _random.Random.seed(rnd._inst)
        rnd._inst.gauss_next = None


def drop_to(uid: int, capset: bool = True) -> None:
    """Become ``uid``/``uid`` with no supplementary groups and no capabilities.

    ``capset=False`` skips the explicit ``capset`` (the kernel clears the effective and
    permitted sets on setuid; the forker has already cleared the inheritable set).
    """
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != uid:
        raise OSError(errno.EPERM, "uid drop did not take effect")
    if capset:
        clear_capabilities()


def proc_status(pid: int) -> tuple[int, str] | None:
    """(real uid, state letter) of ``pid`` from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    uid, state = -1, "?"
    for line in text.splitlines():
        if line.startswith("State:"):
            state = line.split()[1]
        elif line.startswith("Uid:"):
            uid = int(line.split()[1])
            break
    return uid, state


# --- the execution process -----------------------------------------------------------------------


def set_limits(limits: tuple[float, int], vsz: int) -> None:
    """Per-execution rlimits: CPU seconds and address space.

    ``limits`` is (timeout_s, memory_mb); timeout 0 means a session, whose CPU budget is set
    by the caller. RLIMIT_AS = ``vsz`` (the warm interpreter) + memory_mb MiB.
    """
    import math

    timeout_s, memory_mb = limits
    if timeout_s > 0:
        cpu = math.ceil(timeout_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = vsz + (memory_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))


def inherited_limits(fixed: dict[str, Any]) -> None:
    """The rlimits every execution shares, set once on the forker and inherited.

    (The forker is root, so RLIMIT_NPROC does not bind it, and it writes no files.)
    """
    fsize = int(fixed["file_size_mb"]) << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NPROC, (fixed["max_processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def lock_down(spec: dict[str, Any], pipes: list[tuple[int, int]], status_fd: list[int]) -> int:
    """Isolate the freshly forked process; returns the address-space size at fork (bytes).

    ``pipes``: (request, stdout, stderr, status) pipe pairs; ``status_fd[0]`` is updated to 3
    once the status pipe is in place. Raises on any failure (the caller reports it on the
    status pipe and exits: nothing runs half-isolated).
    """
    os.setsid()
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        os.write(fd, b"1000")  # the OOM killer takes executions before the servers
        os.close(fd)
    except OSError:
        pass
    srcs = [spec["null_fd"], pipes[1][1], pipes[2][1], pipes[3][1], pipes[0][0]]
    if min(srcs) < 5:  # a source could be clobbered by the dup2 sequence: move them up
        srcs = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in srcs]
    for target, fd in enumerate(srcs):
        os.dup2(fd, target, inheritable=target < 3)
    status_fd[0] = 3
    os.closerange(5, 1 << 20)
    if spec["pdeathsig"]:  # fallback: die with the forker (bwrap: the PID namespace does it)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL.value)
        if os.getppid() != spec["zygote_pid"]:
            os._exit(0)
    vsz = spec["vsz"]
    set_limits(spec["limits"], vsz)
    if spec["limits"][0] <= 0:
        cpu = int(spec["fixed"]["session_cpu_s"])
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NOFILE, (spec["fixed"]["max_open_files"],) * 2)
    if spec["drop"]:
        drop_to(spec["uid"], capset=False)
    os.chdir(spec["workdir"])  # HOME and TMPDIR are /proc/self/cwd: this directory
    return vsz


def child_main(spec: dict[str, Any], pipes: list[tuple[int, int]]) -> None:
    """Entry point of a forked execution process. Never returns."""
    status_fd = [pipes[3][1]]
    try:
        vsz = lock_down(spec, pipes, status_fd)
    except BaseException as e:  # noqa: BLE001 - reported as SANDBOX_ERROR
        try:
            os.write(status_fd[0], b"S" + f"{type(e).__name__}: {e}".encode()[:2000])
        finally:
            os._exit(111)
    child_run(spec, vsz)


def child_run(spec: dict[str, Any], vsz: int) -> None:
    """The locked-down execution process: report ready, then run one program or a session."""
    if spec.get("fast_fork"):
        after_fast_fork()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    os.write(3, b"R" + struct.pack("<d", ru.ru_utime + ru.ru_stime))
    if spec["kind"] == "session":
        repl(bool(spec["echo"]))
    hdr = _read_exact(4, REQ.size)
    if hdr is None:
        os._exit(0)
    timeout_s, memory_mb, n = REQ.unpack(hdr)
    data = _read_exact(4, n)
    if data is None:
        os._exit(0)
    os.close(4)
    if (timeout_s, memory_mb) != tuple(spec["limits"]):
        set_limits((timeout_s, memory_mb), vsz)
    run_program(data.decode("utf-8"))


def std_streams(install: bool = True) -> tuple[Any, Any, Any]:
    """sys.stdin/stdout/stderr on fds 0-2, configured as Python configures pipes.

    The server installs them on itself before starting the forker, so executions inherit them
    (their fds 0-2 are /dev/null and their pipes) without touching ``sys``.
    """
    import io

    streams = (io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8"
    ), io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8", newline="\n"
    ), io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding="utf-8",
        errors="backslashreplace",
        newline="\n",
        line_buffering=True,
    ))
    if install:
        sys.stdin, sys.stdout, sys.stderr = streams
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams  # type: ignore[misc]
    return streams


def _exit_code(e: SystemExit) -> int:
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except Exception:  # noqa: BLE001
        pass
    return 1


def _print_exception(e: BaseException) -> None:
    import traceback

    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == SELF_FILE:
        tb = tb.tb_next
    try:
        traceback.print_exception(type(e), e, tb, file=sys.stderr)
    except BaseException:  # noqa: BLE001
        os.write(2, f"{type(e).__name__}\n".encode())


def _flush_std() -> int:
    rc = 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            rc = 120
    return rc


def run_program(code: str) -> None:
    """Run ``code`` as ``python file.py`` would (threads joined, atexit run), then exit."""
    mod = _NEXT_MAIN[0] if _NEXT_MAIN else types.ModuleType("__main__")
    sys.modules["__main__"] = mod
    sys.argv = [PROGRAM_FILE]
    linecache.cache[PROGRAM_FILE] = (len(code), None, code.splitlines(True), PROGRAM_FILE)
    rc = 0
    try:
        exec(compile(code, PROGRAM_FILE, "exec", dont_inherit=True), mod.__dict__)
    except SystemExit as e:
        rc = _exit_code(e)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, MemoryError):
            try:
                os.write(3, b"M")
            except OSError:
                pass
        _print_exception(e)
        rc = 1
    steps = []  # what interpreter shutdown does; skipped when there is nothing to do
    if threading.active_count() > 1 or threading._threading_atexits:  # type: ignore[attr-defined]
        steps.append(threading._shutdown)  # type: ignore[attr-defined]
    if atexit._ncallbacks():
        steps.append(atexit._run_exitfuncs)
    for step in steps:
        try:
            step()
        except SystemExit as e:
            rc = _exit_code(e)
        except BaseException as e:  # noqa: BLE001
            _print_exception(e)
    os._exit(_flush_std() or rc)


_NEXT_MAIN: list[types.ModuleType] = []


def prepare_main() -> None:
    """Create the next execution's ``__main__`` module before forking (saves page faults)."""
    _NEXT_MAIN[:] = [types.ModuleType("__main__")]


def run_cell(code: str, ns: dict[str, Any], n: int, echo: bool) -> tuple[str, int]:
    """One notebook cell in ``ns``; returns (kind, exit_code), kind in ok / err / mem."""
    import ast

    name = f"<cell {n}>"
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    try:
        tree = ast.parse(code, name, "exec")
        last = None
        if echo and tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)  # type: ignore[attr-defined]
        exec(compile(tree, name, "exec", dont_inherit=True), ns)
        if last is not None:
            sys.displayhook(eval(compile(last, name, "eval", dont_inherit=True), ns))
        return "ok", 0
    except SystemExit as e:
        code_ = _exit_code(e)
        return ("ok" if code_ == 0 else "err"), code_
    except BaseException as e:  # noqa: BLE001
        _print_exception(e)
        return ("mem" if isinstance(e, MemoryError) else "err"), 1


def repl(echo: bool) -> None:
    """The session loop: read cells from fd 4, report each on fd 3. Never returns."""
    mod = types.ModuleType("__main__")
    sys.modules["__main__"] = mod
    sys.argv = [PROGRAM_FILE]
    sys.displayhook = sys.__displayhook__

    def cpu() -> float:
        a = resource.getrusage(resource.RUSAGE_SELF)
        b = resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    n = 0
    while True:
        req = read_frame(4)
        if req is None:
            os._exit(0)
        n += 1
        t0 = cpu()
        kind, code = run_cell(req["code"], mod.__dict__, n, echo)
        _flush_std()
        try:
            os.write(3, b"C" + pack({"r": kind, "exit": code, "cpu": cpu() - t0}))
        except OSError:
            os._exit(1)

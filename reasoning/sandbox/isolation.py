"""How the fork server is started: bubblewrap command line, or the rlimits fallback.

bubblewrap mode (``bwrap``): new PID, network, IPC, UTS and cgroup namespaces (as root the user
namespace is *not* unshared, so that the server can give every execution its own unprivileged
uid; as non-root ``--unshare-all`` is used), ``--die-with-parent``, ``--new-session``,
``--clearenv``, a read-only root made of read-only binds of ``/usr``, a few ``/etc`` files and
the interpreter's prefix and venv, ``--proc``, ``--dev``, size-capped tmpfs on ``/tmp``
(root-owned; each execution gets a private 0700 directory inside it) and ``/dev/shm``, and
capabilities reduced to what the server needs to set uids, kill and clean up.

Fallback (``rlimits``): the server is an ordinary child process; executions still get rlimits,
their own session/process group and uid (when root), ``no_new_privs`` and the seccomp filter
(no new namespaces, bpf, perf, userfaultfd, key rings, io_uring), which here also denies
``socket()``; there is no filesystem or PID isolation.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from verimath.reasoning.sandbox.config import SandboxConfig

log = logging.getLogger(__name__)
UID_SLOTS = 4096  # per Sandbox: half for each fork server; sessions each hold one
SERVER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_FOWNER",
               "CAP_DAC_OVERRIDE")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "fonts",
             "passwd", "group", "nsswitch.conf", "hosts", "mime.types")
TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def sandbox_env() -> dict[str, str]:
    """The whole environment of the server and the programs (nothing from the host).

    HOME, TMPDIR and MPLCONFIGDIR are ``/proc/self/cwd``: each execution's private working
    directory, without a per-execution environment.
    """
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/proc/self/cwd",
        "TMPDIR": "/proc/self/cwd",
        "MPLCONFIGDIR": "/proc/self/cwd",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def new_uid_base() -> int:
    """A random block of UID_SLOTS uids in [100000, 2**31), private to one Sandbox.

    Every execution runs under its own uid from the block, so ``RLIMIT_NPROC`` and
    ``kill(-1)`` reach only that execution's processes, even across Sandboxes on one host.
    """
    return 100_000 + secrets.randbelow((2**31 - 200_000) // UID_SLOTS) * UID_SLOTS


def is_root() -> bool:
    """True when running as uid 0 (then executions drop to unprivileged uids)."""
    return os.geteuid() == 0


NOFILE_CAP = 1 << 20


def raise_nofile_limit() -> int:
    """Raise this process's ``RLIMIT_NOFILE`` soft limit to its hard limit (at most 2**20).

    A fork server holds four descriptors per session, so hundreds of TIR sessions need more
    than the usual soft limit of 1024; the sandbox (and bubblewrap) inherit the raised limit.
    Returns the soft limit now in force; best effort (unchanged when not allowed).
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE_CAP if hard == resource.RLIM_INFINITY else min(hard, NOFILE_CAP)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (OSError, ValueError) as e:
            log.info("sandbox: cannot raise RLIMIT_NOFILE to %d (%s)", want, e)
    return int(soft)


def bwrap_binary() -> str | None:
    """Path of ``bwrap`` or None."""
    return shutil.which("bwrap")


@functools.cache
def bwrap_usable() -> tuple[bool, str]:
    """Whether bubblewrap itself works here: ``bwrap --ro-bind / / true`` succeeds.

    Returns (usable, why not or the binary's path). When this is True and the sandbox still
    cannot start under bubblewrap, that is our bug, not the machine's (tests then fail).
    """
    import subprocess

    exe = bwrap_binary()
    if exe is None:
        return False, "bwrap not on PATH"
    try:
        p = subprocess.run([exe, "--ro-bind", "/", "/", "true"], capture_output=True,
                           timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"{exe}: {e}"
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip()
        return False, f"`{exe} --ro-bind / / true` failed ({p.returncode}): {err[-300:]}"
    return True, exe


def python_binary(cfg: SandboxConfig) -> str:
    """The interpreter the server runs on."""
    return cfg.python or sys.executable


def python_roots(python: str) -> list[str]:
    """Directories the interpreter needs (its prefix and its venv), outermost first."""
    exe = Path(python).absolute()
    roots = {str(exe.resolve().parent.parent)}
    if (exe.parent.parent / "pyvenv.cfg").exists():
        roots.add(str(exe.parent.parent))
    if exe.resolve() == Path(sys.executable).resolve():
        roots |= {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}
    out: list[str] = []
    for r in sorted(roots, key=len):
        if r != "/" and not any(r == o or r.startswith(o + "/") for o in out + ["/usr"]):
            out.append(r)
    return out


def server_config(cfg: SandboxConfig, *, fd: int, light_fd: int | None, uid_base: int,
                  workroot: str, scrub_dirs: list[str], bwrap: bool,
                  native: str | None) -> dict[str, Any]:
    """The JSON config handed to ``server.py``.

    ``native`` is the forker library's path as the server sees it (None: the Python forker).
    """
    return {
        "fd": fd,
        "native": native,
        "bwrap": bwrap,
        "light_fd": light_fd,
        "preload": list(cfg.preload),
        "warmup": cfg.warmup,
        "drop_uid": is_root(),
        "seccomp": True,
        "uid_base": uid_base,
        "uid_count": UID_SLOTS,
        "workroot": workroot,
        "scrub_dirs": scrub_dirs,
        "prefork": cfg.workers,
        "timeout_s": cfg.timeout_s,
        "memory_mb": cfg.memory_mb,
        "max_output_bytes": cfg.max_output_bytes,
        "file_size_mb": cfg.file_size_mb,
        "max_open_files": cfg.max_open_files,
        "max_processes": cfg.max_processes,
        "session_cpu_s": cfg.session_cpu_s,
        "hugepages": True,
        "env": sandbox_env(),
    }


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


SCRATCH_MOUNTS = ("/proc", "/dev", "/dev/shm", "/tmp", "/etc")  # what the sandbox itself mounts
INSIDE_DIRS = ("/opt/verimath-sandbox", "/run/verimath-sandbox", "/.verimath-sandbox")


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def inside_dir(python: str) -> str:
    """Where the sandbox's own files (server script, native forker) are mounted inside.

    The first of :data:`INSIDE_DIRS` that no interpreter root overlaps.
    """
    roots = python_roots(python)
    for d in INSIDE_DIRS:
        if not any(_overlaps(d, r) for r in roots):
            return d
    raise ValueError(f"no free directory for the sandbox's files among {INSIDE_DIRS}")


def bwrap_argv(cfg: SandboxConfig, bwrap: str, command: list[str],
               files: dict[str, str] | None = None) -> list[str]:
    """The bubblewrap command line that runs ``command`` (the server) in the sandbox.

    The sandbox's own mounts (``/proc``, ``/dev``, the size-capped tmpfs on ``/dev/shm`` and
    ``/tmp``, the bare ``/etc``) come first and the read-only binds of ``/usr``, the
    interpreter's prefix and venv come after them, so that no scratch mount can hide an
    interpreter installed under ``/tmp`` or ``/dev/shm`` (issue 11: a checkout under ``/tmp``
    silently fell back). ``files`` maps host paths to paths inside (bound read-only).

    Raises:
        ValueError: an interpreter root *is* one of the scratch mount points or contains one
            (e.g. a venv at ``/tmp`` itself): it cannot be mounted without hiding it.
    """
    argv = [bwrap]
    if is_root():
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                 "--unshare-cgroup-try", "--cap-drop", "ALL"]
        for cap in SERVER_CAPS:
            argv += ["--cap-add", cap]
    else:
        argv += ["--unshare-all"]
    argv += ["--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox"]
    for key, value in sandbox_env().items():
        argv += ["--setenv", key, value]
    roots = python_roots(command[0])
    for r in roots:
        bad = [m for m in SCRATCH_MOUNTS if m == r or m.startswith(r + "/")]
        if bad:
            raise ValueError(f"the interpreter root {r} would hide the sandbox's own {bad[0]} "
                             f"mount; install Python or the venv elsewhere")
    binds = ["/usr"] + roots
    for top in TOP_LEVEL:
        p = "/" + top
        if os.path.islink(p):
            argv += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            binds.append(p)
    # scratch mounts first: the binds below are mounted on top of them, never under them
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(cfg.shm_mb << 20), "--tmpfs", "/dev/shm",
             "--perms", "0755", "--size", str(cfg.tmpfs_mb << 20), "--tmpfs", "/tmp",
             "--perms", "0755", "--dir", "/etc"]
    made: set[str] = set(SCRATCH_MOUNTS)
    for name in ETC_FILES:
        if os.path.exists("/etc/" + name):
            argv += ["--ro-bind", "/etc/" + name, "/etc/" + name]
    targets = [(b, b) for b in binds] + sorted((files or {}).items())
    for src, dst in targets:
        for d in _ancestors(dst):
            if d not in made:
                argv += ["--perms", "0755", "--dir", d]
                made.add(d)
        argv += ["--ro-bind", src, dst]
    argv += ["--remount-ro", "/", "--chdir", "/tmp", "--"]
    return argv + command


def fallback_scrub_dirs() -> list[str]:
    """World-writable host directories searched for files a program left behind."""
    return [d for d in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(d)]


def describe(mode: str, features: list[str]) -> str:
    """The isolation string recorded in every result."""
    if mode == "bwrap":
        parts = ["bwrap"] + (["uid"] if "uid" in features else []) + ["rlimits"]
    else:
        parts = ["rlimits"] + (["uid"] if "uid" in features else []) + ["pgroup"]
    if "seccomp" in features:
        parts.append("seccomp")
    return "+".join(parts)


IN_SANDBOX_MODULES = ("child.py", "forker.py", "state.py", "server.py")


def server_source() -> str:
    """The in-sandbox modules (child, forker, state, server) concatenated into one script."""
    here = Path(__file__).resolve().parent
    parts = [(here / name).read_text().replace("from __future__ import annotations\n", "")
             for name in IN_SANDBOX_MODULES]
    return "from __future__ import annotations\n__SANDBOX_INSIDE__ = True\n" + "\n".join(parts)


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "verimath"


def _trusted(path: Path) -> bool:
    """Ours, a regular file, writable by nobody else."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022 and path.is_file()


@functools.cache
def server_script() -> str:
    """Path of the server script (:func:`server_source`), written once per content hash.

    The sandbox binds it read-only and runs it by path (no 66 KB ``-c`` argument; Linux caps
    one argument at 128 KiB). Cached under ``~/.cache/verimath``, or a private temporary
    directory when that is not writable.

    Raises:
        OSError: no writable place for it.
    """
    src = server_source()
    key = hashlib.sha256(src.encode()).hexdigest()[:16]
    name = f"sandbox-server-{key}.py"
    import tempfile

    for base in (_cache_dir(), None):
        try:
            if base is None:
                base = Path(tempfile.mkdtemp(prefix="verimath-sandbox-src-"))
            target = base / name
            if _trusted(target) and target.read_text() == src:
                return str(target)
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=base, suffix=".py")
            with os.fdopen(fd, "w") as f:
                f.write(src)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            return str(target)
        except OSError as e:
            log.info("sandbox: cannot write the server script under %s (%s)", base, e)
    raise OSError("no writable directory for the sandbox's server script")


_IMPORT = re.compile(r"(?:^|[;:])[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import|import[ \t]+([^#;\n]+))",
                     re.M)
_DYNAMIC = ("__import__", "importlib", "exec", "eval", "builtins", "compile", "runpy",
            "pkgutil", "modules", "open_code", "loader")


def stdlib_only(code: str, heavy: frozenset[str]) -> bool:
    """True when ``code`` visibly imports only standard-library modules not in ``heavy``.

    Such programs run in the light fork server (no numpy/sympy loaded; cheaper to fork). A
    wrong guess costs only speed: a program that imports numpy there imports it itself.
    """
    if any(word in code for word in _DYNAMIC):
        return False
    for m in _IMPORT.finditer(code):
        names = [m.group(1)] if m.group(1) else [
            part.split(" as ")[0].strip() for part in m.group(2).replace("(", "").split(",")]
        for name in names:
            top = name.split(".")[0].strip()
            if not top or top in heavy or top not in sys.stdlib_module_names:
                return False
    return True


@functools.cache
def native_forker() -> str | None:
    """Build ``forker.c`` once (cached by content hash under ~/.cache/verimath).

    Returns the library's path, or None when no C compiler is available (the Python forker is
    then used: the same isolation, slower).
    """
    src = Path(__file__).resolve().with_name("forker.c")
    try:
        key = hashlib.sha256(src.read_bytes() + os.uname().machine.encode()).hexdigest()[:16]
        cache = _cache_dir()
    except (OSError, RuntimeError) as e:
        log.info("sandbox: no native forker (%s); using the Python one", e)
        return None
    target = cache / f"sandbox-forker-{key}.so"
    if _trusted(target):
        return str(target)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        log.info("sandbox: no C compiler; using the Python forker")
        return None
    import subprocess
    import tempfile

    try:
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            out = Path(tmp) / "forker.so"
            subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(src)],
                           check=True, capture_output=True, timeout=120)
            os.chmod(out, 0o755)
            os.replace(out, target)
    except (OSError, subprocess.SubprocessError) as e:
        err = getattr(e, "stderr", b"") or b""
        log.warning("sandbox: could not build the native forker (%s %s); using the Python one",
                    e, err.decode(errors="replace")[-500:])
        return None
    return str(target)

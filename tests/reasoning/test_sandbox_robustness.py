"""Issue 11: no silent degradation, a supervisor that cannot hang, honest session restarts,
many sessions at once."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import require_bwrap
from tests.reasoning.test_sandbox import _server_pids
from tests.reasoning.test_sandbox_adversarial import uid_procs
from verimath.reasoning.sandbox import ExecStatus, Sandbox, SandboxConfig, SandboxError, isolation
from verimath.reasoning.sandbox.config import FALLBACK_ENV

S = ExecStatus


def _venv_under(parent: str, tmp_name: str) -> Path:
    """A bare venv (no pip) of this interpreter under ``parent``, with a probe module."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=tmp_name, dir=parent))
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   capture_output=True, timeout=120)
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "vmx_probe.py").write_text("WHERE = __file__\n")
    return venv


@pytest.mark.parametrize("parent", ["/tmp", "/dev/shm"])
def test_venv_under_a_scratch_mount_gets_bubblewrap(parent: str) -> None:
    """A checkout/venv under /tmp (or /dev/shm) used to be hidden by the sandbox's own tmpfs:
    bwrap failed with ``execvp ...: No such file`` and auto silently fell back."""
    require_bwrap()
    if not os.access(parent, os.W_OK):
        pytest.skip(f"{parent} is not writable here")
    import shutil

    venv = _venv_under(parent, "vmx-")
    try:
        cfg = SandboxConfig(python=str(venv / "bin" / "python"), preload=(), workers=1,
                            isolation="auto", allow_fallback=False, timeout_s=5)
        with Sandbox(cfg) as sb:
            assert sb.isolation.startswith("bwrap+"), sb.isolation
            r = sb.run("import sys, vmx_probe\nprint(sys.prefix)\nprint(vmx_probe.WHERE)")
            assert r.ok, r
            assert r.stdout.splitlines()[0] == str(venv)
            assert r.stdout.splitlines()[1].startswith(str(venv))  # the venv's own packages
            w = sb.run(f"open({str(venv / 'x')!r}, 'w')")  # bound read-only
            assert w.status is S.RUNTIME_ERROR and "Read-only file system" in w.stderr, w
            assert sb.run("open('/tmp/scratch', 'w').write('ok')").status is S.RUNTIME_ERROR
            assert sb.run("open('scratch', 'w').write('ok')").ok  # private dir still writable
    finally:
        shutil.rmtree(venv.parent, ignore_errors=True)


@pytest.mark.parametrize("python,error", [
    ("/tmp/bin/python", "would hide the sandbox's own /tmp"),
    ("/dev/bin/python", "would hide the sandbox's own /dev"),
])
def test_interpreter_root_that_is_a_scratch_mount_is_refused(python: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        isolation.bwrap_argv(SandboxConfig(), "bwrap", [python, "-I", "x.py"])


def test_scratch_mounts_come_before_the_interpreter_binds() -> None:
    argv = isolation.bwrap_argv(SandboxConfig(), "bwrap", [sys.executable, "-I", "x.py"],
                                {"/host/server.py": "/opt/verimath-sandbox/server.py"})
    tmpfs = argv.index("/tmp", argv.index("--tmpfs"))
    binds = [i for i, a in enumerate(argv) if a == "--ro-bind"]
    assert all(i > tmpfs for i in binds[1:])  # (the first ro-binds are /etc files, also after)
    assert ["--ro-bind", "/host/server.py", "/opt/verimath-sandbox/server.py"] == argv[
        argv.index("/host/server.py") - 1: argv.index("/host/server.py") + 2]
    assert "-c" not in argv  # the server runs by path, not as a 66 KB argument


def test_auto_does_not_fall_back_silently(monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(isolation, "bwrap_binary", lambda: None)  # as if bwrap could not run
    monkeypatch.delenv(FALLBACK_ENV, raising=False)
    cfg = SandboxConfig(preload=(), workers=1, allow_fallback=None)
    with pytest.raises(SandboxError, match="allow_fallback"):
        Sandbox(cfg)
    with pytest.raises(SandboxError, match="allow_fallback"):
        Sandbox(SandboxConfig(preload=(), workers=1, allow_fallback=False))
    for allowed in (SandboxConfig(preload=(), workers=1, allow_fallback=True), "env"):
        if allowed == "env":
            monkeypatch.setenv(FALLBACK_ENV, "1")
            allowed = cfg
        with caplog.at_level(logging.WARNING), Sandbox(allowed) as sb:
            assert sb.isolation.startswith("rlimits"), sb.isolation
            assert sb.run("print(1)").isolation == sb.isolation
        assert "falling back" in caplog.text
    with pytest.raises(ValueError):
        SandboxConfig(allow_fallback="yes")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def box() -> Sandbox:
    with Sandbox(SandboxConfig(timeout_s=3.0, preload=(), workers=1)) as sb:
        yield sb


def _kill_interpreter(sb: Sandbox, uid: int) -> None:
    for pid in uid_procs(uid):
        os.kill(pid, signal.SIGKILL)


def _kill_sandbox(sb: Sandbox, uid: int) -> None:
    for pid in _server_pids(sb):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("kill", [_kill_interpreter, _kill_sandbox])
def test_lost_session_interpreter_is_flagged_restarted(box: Sandbox, kill: object) -> None:
    with box.session() as s:
        first = s.run("x = 41\nimport os\nprint(os.getuid())")
        assert first.ok and not first.restarted
        kill(box, int(first.stdout))  # type: ignore[operator]
        time.sleep(0.3)
        r = s.run("print(x + 1)")
        # honest status: the cell ran, in a fresh interpreter, and x is gone
        assert r.restarted and r.infra_failure, r
        assert r.status is S.RUNTIME_ERROR and "NameError" in r.stderr, r
        assert "fresh interpreter" in r.stderr
        again = s.run("x = 1\nprint(x + 1)")
        assert again.ok and again.stdout == "2\n" and not again.restarted


def test_cell_after_the_programs_own_timeout_is_not_an_infra_restart(box: Sandbox) -> None:
    """The program ended its interpreter itself: the next cell is fresh (and says so in
    stderr) but is not an infrastructure failure; a loss outside the program is (above)."""
    with box.session() as s:
        assert not s.run("y = 2").restarted
        t = s.run("import time\ntime.sleep(10)", timeout_s=0.5)
        assert t.status is S.TIMEOUT and not t.restarted  # it ran in the original interpreter
        r = s.run("print(7)")
        assert r.ok and r.stdout == "7\n" and not r.restarted and not r.infra_failure
        assert "fresh interpreter" in r.stderr


def test_output_limit_cell_keeps_its_interpreter_and_a_later_loss_is_infra(box: Sandbox) -> None:
    with box.session() as s:
        first = s.run("x = 5\nimport os\nprint(os.getuid())")
        big = s.run("print('a' * 200_000)")  # truncated, not killed
        assert big.status is S.OUTPUT_LIMIT
        assert s.run("print(x)").stdout == "5\n"  # still the same interpreter
        _kill_interpreter(box, int(first.stdout))
        time.sleep(0.3)
        r = s.run("print(x)")
        assert r.restarted and r.infra_failure, r


def test_session_close_from_gc_never_takes_the_send_lock(box: Sandbox) -> None:
    """A finalizer that ran while its own thread held the (non-reentrant) send lock used to
    deadlock; now it only queues the close."""
    s = box.session()
    uid = int(s.run("import os\nprint(os.getuid())").stdout)
    srv = box._server
    assert srv is not None
    done = threading.Event()

    def collect_holding_the_lock() -> None:
        nonlocal s
        with srv.send_locks["heavy"]:
            del s
            gc.collect()
        done.set()

    t = threading.Thread(target=collect_holding_the_lock, daemon=True)
    t.start()
    assert done.wait(10), "session finalizer deadlocked on the send lock"
    end = time.monotonic() + 10
    while uid_procs(uid) and time.monotonic() < end:
        time.sleep(0.05)
    assert not uid_procs(uid), "the collected session's interpreter is still running"


def test_supervisor_exception_fails_jobs_and_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    with Sandbox(SandboxConfig(timeout_s=5.0, preload=(), workers=1)) as sb:
        assert sb.run("print(1)").ok
        real = Sandbox._dispatch
        boom = {"left": 1}

        def dispatch(self: Sandbox, msg: dict) -> None:
            if boom["left"] and msg.get("op") == "result":
                boom["left"] -= 1
                raise RuntimeError("injected supervisor bug")
            real(self, msg)

        monkeypatch.setattr(Sandbox, "_dispatch", dispatch)
        futs = [sb.submit("import time\ntime.sleep(0.3)\nprint(2)") for _ in range(3)]
        res = [f.result(timeout=60) for f in futs]  # would block forever before
        assert res[0].status is S.SANDBOX_ERROR and "injected supervisor bug" in res[0].stderr
        assert all(r.status is S.SANDBOX_ERROR for r in res[1:]), res  # queued: failed too
        assert sb._thread.is_alive()
        r = sb.run("print(3)")  # a new server took over
        assert r.ok and r.stdout == "3\n"


def test_supervisor_that_keeps_failing_breaks_the_sandbox(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with Sandbox(SandboxConfig(timeout_s=5.0, preload=(), workers=1)) as sb:
        def dispatch(self: Sandbox, msg: dict) -> None:
            raise RuntimeError("always broken")

        monkeypatch.setattr(Sandbox, "_dispatch", dispatch)
        for _ in range(3):
            r = sb.submit("print(1)").result(timeout=60)
            assert r.status is S.SANDBOX_ERROR
        sb._thread.join(30)
        assert not sb._thread.is_alive()
        with pytest.raises(SandboxError, match="always broken"):
            sb.run("print(1)")


def test_wait_is_bounded_when_the_supervisor_is_gone() -> None:
    from concurrent.futures import Future

    with Sandbox(SandboxConfig(timeout_s=5.0, preload=(), workers=1)) as sb:
        sb.close()
        sb._thread.join(30)
        r = sb._await(Future())  # nobody will ever resolve it
        assert r.status is S.SANDBOX_ERROR and "supervisor stopped" in r.stderr


def _fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def test_hundreds_of_sessions_beyond_fd_setsize() -> None:
    """More than 1024 descriptors in the fork server (select() failed there: issue 11)."""
    n = 300  # 4 descriptors each in the fork server: > 1024
    with Sandbox(SandboxConfig(timeout_s=20.0, preload=(), workers=1)) as sb:
        sessions = [sb.session() for _ in range(n)]
        try:
            assert max(_fd_count(p) for p in _server_pids(sb)) > 1024
            for i, s in enumerate(sessions):
                s.run(f"v = {i}")
            outs = [s.run("print(v * 2)") for s in sessions]
            assert [o.stdout for o in outs] == [f"{2 * i}\n" for i in range(n)]
            assert not any(o.restarted for o in outs)
        finally:
            for s in sessions:
                s.close()
        assert sb.run("print('after')").stdout == "after\n"


def test_nofile_soft_limit_is_raised() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    got = isolation.raise_nofile_limit()
    assert got == min(hard, isolation.NOFILE_CAP) or hard == resource.RLIM_INFINITY
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= soft


def test_server_runs_by_path_not_as_a_big_argument(box: Sandbox) -> None:
    """The in-sandbox modules used to be one ~66 KB ``-c`` argument (Linux: 128 KiB a piece)."""
    cmdlines = []
    for pid in [box._server.proc.pid, *_server_pids(box)]:  # type: ignore[union-attr]
        try:
            cmdlines.append(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"))
        except OSError:
            pass
    servers = [c for c in cmdlines if b"-I" in c]
    assert servers, cmdlines
    for argv in servers:
        i = argv.index(b"-I")
        assert argv[i + 1].endswith(b"/server.py") and b"-c" not in argv
        assert max(len(a) for a in argv) < 8192
    script = Path(isolation.server_script())
    assert script.read_text() == isolation.server_source()
    assert not script.stat().st_mode & 0o022  # nobody else may rewrite what the server runs


def test_default_sandbox_uses_bubblewrap_when_bwrap_works() -> None:
    """The rule behind every other sandbox test: bwrap usable -> no fallback, ever."""
    require_bwrap()
    with Sandbox(SandboxConfig(preload=(), workers=1)) as sb:
        assert sb.isolation.startswith("bwrap+"), sb.isolation


def test_interpreter_dead_on_arrival_twice_is_a_sandbox_error_not_a_crash(
        box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    with box.session() as s:
        assert s.run("x = 1").ok
        monkeypatch.setattr(box, "_cell", lambda *a, **k: {"op": "result", "id": 1, "dead": True})
        r = s.run("print(x)")
        assert r.status is S.SANDBOX_ERROR and r.restarted and r.infra_failure
        monkeypatch.undo()
        assert s.run("print(2)").stdout == "2\n"

"""The sandbox's API, statuses and sessions (one shared Sandbox; adversarial cases elsewhere)."""

from __future__ import annotations

import threading

import pytest

from tests.reasoning.test_sandbox_adversarial import uid_procs
from verimath.reasoning.sandbox import (
    ExecResult,
    ExecStatus,
    Sandbox,
    SandboxConfig,
    SandboxError,
    SandboxSession,
)
from verimath.reasoning.sandbox.isolation import stdlib_only
from verimath.reasoning.sandbox.result import check_code

S = ExecStatus


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    box = Sandbox(SandboxConfig(timeout_s=3.0, memory_mb=512, workers=2))
    yield box
    box.close()


@pytest.mark.parametrize(
    "code,status,exit_code,stdout",
    [
        ("print(1 + 1)", S.OK, 0, "2\n"),
        ("import sympy as sp\nx = sp.Symbol('x')\nprint(sp.factor(x**2 - 1))", S.OK, 0,
         "(x - 1)*(x + 1)\n"),
        ("import numpy as np\nprint(int(np.arange(5).sum()))", S.OK, 0, "10\n"),
        ("import math, fractions\nprint(fractions.Fraction(1, 3) + math.factorial(3))", S.OK, 0,
         "19/3\n"),
        ("import sys\nsys.exit(0)", S.OK, 0, ""),
        ("import sys\nsys.exit()", S.OK, 0, ""),
        ("import os\nprint('x', flush=True)\nos._exit(0)", S.OK, 0, "x\n"),
        ("import sys\nsys.exit(3)", S.RUNTIME_ERROR, 3, ""),
        ("raise ValueError('boom')", S.RUNTIME_ERROR, 1, ""),
        ("raise KeyboardInterrupt", S.RUNTIME_ERROR, 1, ""),
        ("def f(:\n  pass", S.RUNTIME_ERROR, 1, ""),
        ("input()", S.RUNTIME_ERROR, 1, ""),
        ("x = bytearray(10**11)", S.MEMORY, 1, ""),
        ("import ctypes\nctypes.string_at(0)", S.SIGNALED, -11, ""),
    ],
)
def test_statuses(sb: Sandbox, code: str, status: ExecStatus, exit_code: int, stdout: str) -> None:
    r = sb.run(code)
    assert (r.status, r.exit_code, r.stdout) == (status, exit_code, stdout), r
    assert r.isolation == sb.isolation != ""
    assert r.wall_time_s >= 0 and r.cpu_time_s >= 0


def test_traceback_and_exit_message_in_stderr(sb: Sandbox) -> None:
    r = sb.run("def f():\n    raise ValueError('boom')\nf()")
    assert "ValueError: boom" in r.stderr and 'File "<program>", line 2, in f' in r.stderr
    assert "raise ValueError('boom')" in r.stderr  # source lines are shown
    assert "<string>" not in r.stderr  # no frames of the sandbox itself
    r = sb.run("import sys\nsys.exit('bad input')")
    assert (r.status, r.exit_code, r.stderr) == (S.RUNTIME_ERROR, 1, "bad input\n")


def test_result_is_frozen_and_serialises(sb: Sandbox) -> None:
    r = sb.run("print('hi')")
    d = r.to_dict()
    assert list(d) == ["status", "stdout", "stderr", "exit_code", "wall_time_s", "cpu_time_s",
                       "isolation", "restarted"]
    assert d["restarted"] is False and not r.infra_failure
    assert d["status"] == "ok" and isinstance(d["status"], str)
    with pytest.raises(AttributeError):
        r.status = S.TIMEOUT  # type: ignore[misc]
    assert isinstance(r, ExecResult) and r.ok


def test_isolation_is_recorded(sb: Sandbox) -> None:
    import os

    iso = sb.isolation
    assert iso.startswith(("bwrap", "rlimits")) and "rlimits" in iso
    if os.geteuid() == 0:
        assert "uid" in iso  # RLIMIT_NPROC only binds non-root
    r = sb.run("import os; print(os.getuid())")
    if os.geteuid() == 0:
        assert int(r.stdout) != 0


@pytest.mark.parametrize(
    "code,reason",
    [
        ("print('a\x00b')", "NUL"),
        ("print('\ud800')", "surrogate"),
        ("x = 1\n" * 20_000, "limit"),
    ],
)
def test_rejected(sb: Sandbox, code: str, reason: str) -> None:
    r = sb.run(code)
    assert r.status is S.REJECTED and reason in r.stderr and r.exit_code is None


def test_check_code_type_error() -> None:
    with pytest.raises(TypeError):
        check_code(b"print(1)", 100)


def test_limits_per_call(sb: Sandbox) -> None:
    r = sb.run("import time\ntime.sleep(5)", timeout_s=0.5)
    assert r.status is S.TIMEOUT and r.wall_time_s < 2.0
    assert sb.run("x = bytearray(300 * 2**20)", memory_mb=100).status is S.MEMORY
    assert sb.run("x = bytearray(300 * 2**20); print(len(x) > 0)", memory_mb=1000).ok
    with pytest.raises(ValueError):
        sb.run("print(1)", timeout_s=0)
    with pytest.raises(ValueError):
        sb.run("print(1)", memory_mb=0)


def test_output_limit_and_decoding(sb: Sandbox) -> None:
    r = sb.run("import sys\nsys.stdout.write('y' * 100)")  # no newline
    assert r.ok and r.stdout == "y" * 100
    r = sb.run("import sys\nsys.stdout.buffer.write(b'ok\\xff\\xfe\\n')")
    assert r.ok and r.stdout == "ok\ufffd\ufffd\n"
    r = sb.run("print('z' * 100_000)")
    assert r.status is S.OUTPUT_LIMIT and len(r.stdout) == sb.config.max_output_bytes
    assert "kept 65536 of 100001 bytes" in r.stderr


def test_run_many_keeps_order_and_runs_concurrently(sb: Sandbox) -> None:
    codes = [f"import time\ntime.sleep(0.3)\nprint({i})" for i in range(6)]
    import time

    t0 = time.monotonic()
    res = sb.run_many(codes)
    assert [r.stdout for r in res] == [f"{i}\n" for i in range(6)]
    assert time.monotonic() - t0 < 6 * 0.3  # 2 workers overlap


def test_thread_safe_runs(sb: Sandbox) -> None:
    out: dict[int, str] = {}

    def work(i: int) -> None:
        out[i] = sb.run(f"print({i} * {i})").stdout

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {i: f"{i * i}\n" for i in range(8)}


def test_each_run_is_fresh(sb: Sandbox) -> None:
    assert sb.run("import math\nmath.pi = 3\nopen('f.txt', 'w').write('x')\nglobal_x = 1").ok
    r = sb.run("import math, os\nprint(math.pi > 3, os.path.exists('f.txt'), 'global_x' in dir())")
    assert r.stdout == "True False False\n"
    a, b = sb.run_many(["import random; print(random.random())"] * 2)
    assert a.stdout != b.stdout  # reseeded per run, like fresh processes


@pytest.mark.parametrize(
    "code,light",
    [
        ("print(1)", True),
        ("import math, itertools\nfrom fractions import Fraction", True),
        ("import sympy", False),
        ("x = 1; import numpy as np", False),
        ("from sympy import Symbol", False),
        ("if True: import scipy", False),
        ("__import__('sympy')", False),
        ("exec('import sympy')", False),
        ("import os, numpy.linalg", False),
        ("from . import x", False),
    ],
)
def test_tier_routing(code: str, light: bool) -> None:
    assert stdlib_only(code, frozenset({"numpy", "sympy"})) is light


def test_config_validation() -> None:
    for bad in ({"timeout_s": 0}, {"memory_mb": 0}, {"workers": 0}, {"isolation": "docker"},
                {"preload": "numpy"}, {"max_processes": 1}):
        with pytest.raises(ValueError):
            SandboxConfig(**bad)  # type: ignore[arg-type]


def test_closed_sandbox_raises() -> None:
    box = Sandbox(SandboxConfig(workers=1, preload=()))
    assert box.run("print(1)").ok
    box.close()
    box.close()  # idempotent
    with pytest.raises(SandboxError):
        box.run("print(1)")


# --- sessions -------------------------------------------------------------------------------------


def test_session_keeps_state_and_echoes(sb: Sandbox) -> None:
    with sb.session() as s:
        assert isinstance(s, SandboxSession)
        r = s.run("import sympy as sp\nx = sp.Symbol('x')\nn = 41")
        assert r.ok and r.stdout == ""
        r = s.run("print('cell 2')\nn + 1")
        assert r.ok and r.stdout == "cell 2\n42\n"
        assert s.run("sp.expand((x + 1)**2)").stdout == "x**2 + 2*x + 1\n"
        assert s.run("None").stdout == ""  # like the REPL
        assert s.run("_").stdout == "x**2 + 2*x + 1\n"


def test_session_errors_do_not_end_it(sb: Sandbox) -> None:
    with sb.session() as s:
        s.run("a = 5")
        r = s.run("1 / 0")
        assert r.status is S.RUNTIME_ERROR and "ZeroDivisionError" in r.stderr
        assert 'File "<cell 2>", line 1' in r.stderr
        r = s.run("import sys\nsys.exit(0)")
        assert r.ok
        assert s.run("import sys\nsys.exit(4)").exit_code == 4
        assert s.run("def f(:").status is S.RUNTIME_ERROR
        assert s.run("b = bytearray(10**11)").status is S.MEMORY
        assert s.run("a").stdout == "5\n" and s.alive


def test_session_timeout_restarts_fresh(sb: Sandbox) -> None:
    with sb.session(timeout_s=5) as s:
        s.run("a = 1")
        r = s.run("import time\ntime.sleep(10)", timeout_s=0.5)
        assert r.status is S.TIMEOUT and "state is lost" in r.stderr and r.wall_time_s < 2
        assert not s.alive
        r = s.run("print('a' in dir())")
        assert r.ok and r.stdout == "False\n" and "fresh interpreter" in r.stderr
        r = s.run("print(2)")
        assert r.stderr == ""  # the note only once


def test_session_exit_of_interpreter(sb: Sandbox) -> None:
    with sb.session() as s:
        s.run("a = 1")
        r = s.run("import os\nos._exit(0)")
        assert r.exit_code == 0 and "ended" in r.stderr
        assert s.run("print('a' in dir())").stdout == "False\n"


def test_sessions_are_independent(sb: Sandbox) -> None:
    with sb.session() as s1, sb.session() as s2:
        s1.run("secret = 'one'")
        r = s2.run("secret")
        assert r.status is S.RUNTIME_ERROR and "NameError" in r.stderr
        u1, u2 = s1.run("import os; os.getuid()").stdout, s2.run("import os; os.getuid()").stdout
        assert u1 != u2


def test_session_close_kills_its_processes(sb: Sandbox) -> None:
    import os
    import time

    s = sb.session()
    r = s.run("import subprocess, os\np = subprocess.Popen(['sleep', '60'])\nos.getuid()")
    uid = int(r.stdout)
    s.close()
    with pytest.raises(SandboxError):
        s.run("1")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and uid_procs(uid):
        time.sleep(0.05)
    assert not uid_procs(uid)
    assert os.path.exists("/proc")


def test_session_gc_closes_it(sb: Sandbox) -> None:
    import gc
    import time

    s = sb.session()
    uid = int(s.run("import os; os.getuid()").stdout)
    del s
    gc.collect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and uid_procs(uid):
        time.sleep(0.05)
    assert not uid_procs(uid)


def _server_pids(box: Sandbox) -> list[int]:
    """Host pids of the processes inside the sandbox (fork servers, forkers, executions)."""

    srv = box._server
    assert srv is not None
    todo, out = [srv.proc.pid], []
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return [p for p in out if p != srv.proc.pid]


def test_crashed_server_is_replaced() -> None:
    import os
    import signal

    with Sandbox(SandboxConfig(workers=1, preload=(), timeout_s=5)) as box:
        assert box.run("print(1)").ok
        slow = box.submit("import time\ntime.sleep(3)\nprint('never')")
        import time

        time.sleep(0.3)
        for pid in _server_pids(box):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        r = slow.result(timeout=30)
        assert r.status is S.SANDBOX_ERROR and "died" in r.stderr
        assert box.run("print(2)").stdout == "2\n"  # a new server took over


def test_hung_server_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    from verimath.reasoning.sandbox import pool

    monkeypatch.setattr(pool, "WATCHDOG_GRACE_S", 1.0)
    with Sandbox(SandboxConfig(workers=1, preload=(), timeout_s=5)) as box:
        assert box.run("print(1)").ok
        pids = _server_pids(box)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            r = box.run("print('stuck')", timeout_s=0.5)
        finally:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        assert r.status is S.SANDBOX_ERROR and "watchdog" in r.stderr
        assert box.run("print(3)").stdout == "3\n"


def test_dir_scrubber_removes_only_that_uid(tmp_path: object) -> None:
    import os
    from pathlib import Path

    from verimath.reasoning.sandbox.forker import DirScrubber

    if os.geteuid() != 0:
        pytest.skip("needs root to create files of other uids")
    d = Path(str(tmp_path))
    base = 3_000_000
    for name, uid in (("a", base), ("b", base + 1), ("c", base), ("own", os.geteuid())):
        (d / name).write_text("x")
        os.chown(d / name, uid, uid)
    (d / "dir").mkdir()
    (d / "dir" / "f").write_text("x")
    os.chown(d / "dir", base, base)
    sc = DirScrubber([str(d)], base, base + 10)
    sc.scrub(base)
    assert sorted(p.name for p in d.iterdir()) == ["b", "own"]
    sc.scrub(base + 5)  # nothing of that uid; the listing may now be cached
    (d / "late").write_text("x")  # created after the listing: must be noticed
    os.chown(d / "late", base + 5, base + 5)
    sc.scrub(base + 5)
    assert sorted(p.name for p in d.iterdir()) == ["b", "own"]
    sc.scrub(base + 1)
    assert sorted(p.name for p in d.iterdir()) == ["own"]

"""``verimath exec``: the JSON contract, batches with bad records, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

KEYS = ["status", "stdout", "stderr", "exit_code", "wall_time_s", "cpu_time_s", "isolation",
        "restarted"]


def verimath(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "verimath", "exec", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_single_file(tmp_path: Path) -> None:
    prog = tmp_path / "p.py"
    prog.write_text("import sympy as sp\nprint(sp.factor(sp.Symbol('x')**2 - 1))\n")
    p = verimath("--timeout-s", "5", "--memory-mb", "512", str(prog))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert list(out) == KEYS
    assert out["status"] == "ok" and out["stdout"] == "(x - 1)*(x + 1)\n"
    assert out["isolation"].startswith(("bwrap", "rlimits"))


@pytest.mark.parametrize("code,status,exit_code", [
    ("raise SystemExit(3)", "runtime_error", 3),
    ("while True:\n    pass", "timeout", -9),
    ("print('\\u00e9')", "ok", 0),
])
def test_stdin_and_exit_code_zero_whatever_the_program_did(code: str, status: str,
                                                           exit_code: int) -> None:
    p = verimath("--timeout-s", "1", "--preload", "", "-", stdin=code)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert (out["status"], out["exit_code"]) == (status, exit_code)


def test_invalid_utf8_file_is_rejected(tmp_path: Path) -> None:
    prog = tmp_path / "bad.py"
    prog.write_bytes(b"print('\xff')\n")
    p = verimath("--preload", "", str(prog))
    assert p.returncode == 0
    out = json.loads(p.stdout)
    assert out["status"] == "rejected" and "surrogate" in out["stderr"]


def test_batch(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "code": "print(1)"}),
        "",
        json.dumps({"id": "b", "code": "while True:\n    pass", "timeout_s": 0.5}),
        "{not json",
        json.dumps({"id": 7, "code": "print(2)"}),
        json.dumps({"id": "c"}),
        json.dumps(["id", "code"]),
        json.dumps({"id": "d", "code": "print(4)", "memory_mb": "lots"}),
        json.dumps({"id": "e", "code": "import time\ntime.sleep(0.2)\nprint('e')"}),
        json.dumps({"id": "f", "code": "print('f')"}),
    ]
    batch = tmp_path / "b.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    p = verimath("--batch", str(batch), "--workers", "3", "--preload", "")
    assert p.returncode == 0, p.stderr
    out = [json.loads(line) for line in p.stdout.splitlines()]
    assert [(o["id"], o["status"]) for o in out] == [
        ("a", "ok"), ("b", "timeout"), (None, "rejected"), (None, "rejected"),
        ("c", "rejected"), (None, "rejected"), ("d", "rejected"), ("e", "ok"), ("f", "ok")]
    assert all(set(KEYS) <= set(o) for o in out)
    rejected = [o for o in out if o["status"] == "rejected"]
    assert [o["line"] for o in rejected] == [4, 5, 6, 7, 8]
    assert "line 5: field 'id'" in rejected[1]["stderr"]
    assert "line 6: field 'code'" in rejected[2]["stderr"]
    assert "line 8: field 'memory_mb'" in rejected[4]["stderr"]
    assert "line 4: not valid JSON" in p.stderr and "9 records" in p.stderr
    assert out[-1]["stdout"] == "f\n"


def test_usage_errors(tmp_path: Path) -> None:
    assert verimath().returncode == 2
    assert verimath(str(tmp_path / "missing.py")).returncode == 2
    assert verimath("--batch", str(tmp_path / "x.jsonl"), "-").returncode == 2
    assert verimath("--timeout-s", "0", "-", stdin="print(1)").returncode == 2


def test_doctor_reports_the_isolation_in_force(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """doctor starts a real sandbox and runs a program; a fallback is reported loudly."""
    from verimath.commands import doctor_cmd
    from verimath.reasoning.sandbox import isolation

    usable = isolation.bwrap_usable()[0]
    checks = {c.name: c for c in doctor_cmd._sandbox_checks()}
    assert checks["bwrap"].ok is usable
    if usable:  # bubblewrap works here, so the sandbox must use it
        assert checks["sandbox"].ok and "isolation in force: bwrap+" in checks["sandbox"].found
    monkeypatch.setattr(isolation, "bwrap_binary", lambda: None)
    monkeypatch.setattr(isolation, "bwrap_usable", lambda: (False, "bwrap not on PATH"))
    checks = {c.name: c for c in doctor_cmd._sandbox_checks()}
    assert not checks["bwrap"].ok and not checks["sandbox"].ok
    assert checks["sandbox"].found.startswith("FALLBACK IN FORCE: rlimits")
    doctor_cmd._print(list(checks.values()))
    assert "WEAK" in capsys.readouterr().out


def test_exec_without_bubblewrap_fails_unless_the_fallback_is_allowed() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "VERIMATH_SANDBOX_ALLOW_FALLBACK"}
    env["PATH"] = "/nonexistent"  # no bwrap to be found
    base = [sys.executable, "-m", "verimath", "exec", "--preload", ""]
    p = subprocess.run([*base, "-"], input="print(1)\n", capture_output=True, text=True,
                       timeout=120, env=env)
    out = json.loads(p.stdout)
    assert p.returncode == 1 and out["status"] == "sandbox_error"
    assert "--allow-fallback" in out["stderr"] and "bwrap: not installed" in out["stderr"]
    p = subprocess.run([*base, "--allow-fallback", "-"], input="print(1)\n", capture_output=True,
                       text=True, timeout=120, env=env)
    out = json.loads(p.stdout)
    assert p.returncode == 0 and out["stdout"] == "1\n"
    assert out["isolation"].startswith("rlimits") and "falling back" in p.stderr

"""What the fork server keeps per execution, and how it turns an exit into a verdict.

Standard library only; concatenated with the other in-sandbox modules (see ``server.py``).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

# Python's own start-up imports only a few modules; these cover what PoT/TIR programs use and
# keep them importable in the fallback, where the sandbox uid may not be able to read the stdlib.
STDLIB_PRELOAD = (
    "abc array ast atexit base64 bisect cmath codecs collections contextlib copy dataclasses "
    "datetime decimal enum faulthandler fnmatch fractions functools glob hashlib heapq inspect "
    "io itertools json linecache locale math numbers operator pathlib pprint random re "
    "resource statistics string struct subprocess tempfile textwrap threading time traceback "
    "types typing unicodedata warnings weakref encodings.idna encodings.latin_1 encodings.ascii "
    "encodings.unicode_escape encodings.utf_16 encodings.utf_32"
).split()

WARMUP = {
    "sympy": """
import sympy as sp
x, y = sp.symbols("x y")
sp.expand((x + y) ** 3); sp.factor(x**2 - 1); sp.solve(x**2 - 2, x)
sp.solve([x + y - 2, x - y], [x, y])
sp.simplify(sp.sin(x) ** 2 + sp.cos(x) ** 2); sp.integrate(sp.sin(x) * x, x); sp.diff(x**3, x)
sp.Rational(1, 3) + sp.Rational(1, 6); sp.sqrt(8); sp.nsimplify(0.5); sp.limit(sp.sin(x) / x, x, 0)
sp.series(sp.exp(x), x, 0, 4); sp.Matrix([[1, 2], [3, 4]]).det(); sp.latex(x**2 / 3)
str(sp.pi.evalf(30)); sp.isprime(97); sp.factorint(360); sp.binomial(10, 3); sp.gcd(12, 18)
sp.summation(x, (x, 1, 10)); sp.N(sp.sqrt(2)); sp.Eq(x, 1); sp.sympify("x**2 + 1"); print(x**2)
""",
    "numpy": "import numpy as np\nnp.linalg.solve(np.eye(2), np.ones(2)); np.arange(10).sum()\n",
}


class Capture:
    """stdout+stderr of one execution: the first ``cap`` bytes kept, the rest counted."""

    __slots__ = ("cap", "kept", "total", "out", "err")

    def __init__(self, cap: int) -> None:
        self.cap, self.kept, self.total = cap, 0, 0
        self.out, self.err = bytearray(), bytearray()

    def feed(self, stream: int, data: bytes) -> None:
        """Count ``data``; keep what fits under the cap."""
        self.total += len(data)
        room = self.cap - self.kept
        if room > 0:
            part = data[:room]
            (self.out if stream == 1 else self.err).extend(part)
            self.kept += len(part)


class Child:
    """One forked execution process: pre-forked idle, running a program, or a session."""

    def __init__(self, pid: int, slot: int, uid: int, fds: dict[str, int], workdir: str,
                 limits: tuple[float, int], kind: str) -> None:
        self.pid, self.slot, self.uid, self.fds, self.workdir = pid, slot, uid, fds, workdir
        self.limits, self.kind = limits, kind
        self.sid: int | None = None
        self.job: int | None = None  # host request id of the current run / cell
        self.capture: Capture | None = None
        self.started = self.deadline = self.cpu_base = 0.0
        self.timed_out = self.output_killed = self.memory = self.ready = False
        self.setup_error = ""
        self.st_buf = bytearray()
        self.exit: tuple[int, float] | None = None  # (wait status, CPU seconds)
        self.cell_msg: dict[str, Any] | None = None
        self.kill_output = 0


def verdict(c: Child, session_cpu_s: float) -> dict[str, Any]:
    """The result message of an execution whose process exited (or was killed)."""
    status, cpu_total = c.exit if c.exit is not None else (0, 0.0)
    cap = c.capture or Capture(0)
    cpu = max(0.0, cpu_total - c.cpu_base)
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = -sig if sig else os.WEXITSTATUS(status)
    cpu_limit = c.limits[0] if c.kind == "run" else session_cpu_s
    notes = []
    if c.timed_out or sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= cpu_limit):
        verdict = "timeout"
        notes.append(f"killed: time limit exceeded ({c.deadline - c.started:g} s wall-clock,"
                     f" {cpu_limit:g} s CPU)")
    elif c.memory:
        verdict = "memory"
    elif c.output_killed:
        verdict = "output_limit"
        notes.append(f"killed: more than {c.kill_output} bytes of output")
    elif sig:
        verdict = "signaled"
        try:
            notes.append(f"killed by signal {sig} ({signal.Signals(sig).name})")
        except ValueError:
            notes.append(f"killed by signal {sig}")
    elif cap.total > cap.kept:
        verdict = "output_limit"
    else:
        verdict = "ok" if code == 0 else "runtime_error"
    if cap.total > cap.kept:
        notes.append(f"output truncated: kept {cap.kept} of {cap.total} bytes")
    err = cap.err.decode("utf-8", "replace")
    if notes:
        err += "" if not err or err.endswith("\n") else "\n"
        err += "".join(f"[sandbox] {n}\n" for n in notes)
    return {"op": "result", "id": c.job, "status": verdict,
            "stdout": cap.out.decode("utf-8", "replace"), "stderr": err, "exit_code": code,
            "wall_time_s": round(time.monotonic() - c.started, 6),
            "cpu_time_s": round(cpu, 6)}

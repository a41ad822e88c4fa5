"""Real Lean REPL transcripts (``$VERIMATH_DATA/lean_repl``) behind the real lean_interact client.

:class:`TranscriptLeanServer` *is* a ``lean_interact.LeanServer``: requests go through its own
``run`` -> ``run_dict`` -> stdin/stdout protocol -> ``json.loads`` -> pydantic
``CommandResponse`` / ``ProofStepResponse`` / ``LeanError`` code. Only the process it starts
is different: ``transcript_repl.py`` answers from the recorded ``.expected.out`` instead of
``lake env repl``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

from lean_interact import LeanServer

from verimath.datasets import data_root

SCRIPT = Path(__file__).with_name("transcript_repl.py")


def lean_repl_dir() -> Path:
    """``<data root>/lean_repl`` (``$VERIMATH_DATA``, default ``../shared/data``)."""
    return data_root() / "lean_repl"


def transcripts() -> list[Path]:
    """Every ``.in`` that has a recorded ``.expected.out`` (sorted; [] when data is absent)."""
    root = lean_repl_dir()
    return sorted(p for p in root.glob("*/*.in")
                  if p.with_name(p.name.removesuffix(".in") + ".expected.out").is_file())


class ScriptLeanServer(LeanServer):
    """``lean_interact.LeanServer`` whose process is ``argv`` instead of ``lake env repl``.

    Everything else (protocol, timeouts, kills, response models) is lean_interact's own.
    """

    def __init__(self, argv: list[str]) -> None:  # noqa: D107 - documented on the class
        self.config = SimpleNamespace(  # what LeanServer.run reads from its config
            enable_incremental_optimization=False, enable_parallel_elaboration=False,
            memory_hard_limit_mb=None, lean_version="v4.33.0-rc2")
        self._argv = argv
        self._proc = None
        self._lock = threading.Lock()
        self.start()

    def start(self) -> None:
        """Start ``argv`` (instead of ``lake env repl``)."""
        self._proc = subprocess.Popen(
            self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            encoding="utf-8", text=True, bufsize=1, start_new_session=True)


class TranscriptLeanServer(ScriptLeanServer):
    """``lean_interact.LeanServer`` whose process replays transcripts (see module docstring).

    Args:
        *names: transcripts relative to ``lean_repl/`` without ``.in`` (``"core/proof_step"``).
    """

    def __init__(self, *names: str) -> None:  # noqa: D107 - documented on the class
        paths = [str(lean_repl_dir() / f"{n}.in") for n in names]
        super().__init__([sys.executable, "-S", str(SCRIPT), *paths])

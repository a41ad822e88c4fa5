"""Shared fixtures of the prover tests: recorded Lean responses and helpers to replay them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).with_name("fixtures")
MINIF2F_HEADER = ("import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\n"
                  "open BigOperators Real Nat Topology Rat\n\n")
_EXC = {"TimeoutError": TimeoutError, "ConnectionAbortedError": ConnectionAbortedError}


def load_fixture(name: str) -> dict[str, Any]:
    """A JSON file from tests/prover/fixtures."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


AUDIT_CASES = load_fixture("repl_audit.json")["cases"]


def setup_answer(setup: str) -> dict[str, Any]:
    """What the REPL answers to the reference statement (``... := sorry``): a sorry warning."""
    return {"sorries": [{"proofState": 0, "pos": {"line": 1, "column": setup.index(":= sorry") + 3},
                         "goal": "⊢ (the statement)"}],
            "messages": [{"severity": "warning", "pos": {"line": 1, "column": 8},
                          "data": "declaration uses `sorry`"}], "env": 1}


def case_responder(case: dict[str, Any]) -> Any:
    """A RecordedServer responder for ``case`` of fixtures/repl_audit.json.

    The header command (no env) gets ``{"env": 0}``, the reference statement ``setup`` (in env
    0) a sorry warning and env 1; the proof command must be exactly the recorded ``command``
    in env 1 (else the test fails: the recording would not apply).
    """
    from lean_interact import Command

    def respond(request: Any) -> Any:
        assert isinstance(request, Command)
        if request.env is None:
            return {"env": 0}
        if request.env == 0:
            assert request.cmd == case["setup"], "the audit no longer sends the recorded setup"
            return setup_answer(request.cmd)
        assert request.cmd == case["command"], "the audit no longer sends the recorded command"
        assert request.env == 1
        if "raises" in case:
            return _EXC[case["raises"]]("recorded failure")
        return case["response"]

    return respond


@pytest.fixture
def minif2f_rows(shared_data: Path) -> list[dict[str, Any]]:
    """All 488 miniF2F records."""
    path = shared_data / "minif2f" / "minif2f.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

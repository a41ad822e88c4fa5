"""``verimath check`` on published proof sets: full Lean files, per-rule summary, --text-only,
--statements, --lean-server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.prover.conftest import AUDIT_CASES, MINIF2F_HEADER
from tests.prover.kimina_server import KiminaStandIn, audit_answer
from verimath.cli import main as cli
from verimath.datasets import data_root

KIMINA = data_root() / "lean_proofs" / "kimina_preview_minif2f_test.jsonl"
MINIF2F = data_root() / "minif2f" / "minif2f.jsonl"


@pytest.mark.skipif(not KIMINA.is_file(), reason="published proofs not in the data root")
def test_text_only_on_kimina_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "s.json"
    rc = cli(["check", str(KIMINA), "--statements", str(MINIF2F), "--text-only",
              "--summary-json", str(summary)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    lines = [json.loads(x) for x in cap.out.splitlines()]
    assert len(lines) == 197 and all("text_audit" in x for x in lines)
    s = json.loads(summary.read_text())
    assert s["status"] == {"needs_lean": 186, "rejected": 11}
    assert s["rejected_by_rule"] == {"forbidden_construct": 11}
    assert s["reasons"] == [{"check": "forbidden_construct", "why": "uses 'native_decide'",
                             "count": 11}]
    assert "forbidden_construct" in cap.err and "needs_lean 186" in cap.err


def test_full_files_bad_records_and_imports(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    case = AUDIT_CASES[0]
    stmts = tmp_path / "stmts.jsonl"
    stmts.write_text(json.dumps({"name": "p10", "formal_statement": case["formal_statement"],
                                 "header": MINIF2F_HEADER}) + "\n")
    body = case["proof"]
    full = f"{MINIF2F_HEADER}\ntheorem amc12a_2015_p10 (x y : ℤ) (h₀ : 0 < y) (h₁ : y < x) " \
           f"(h₂ : x + y + x * y = 80) : x = 26 := by\n{body}"
    rows = [{"name": "p10", "proof": full},  # Kimina / DeepSeek-Prover-V2 style full file
            {"name": "p10", "proof": "import Mathlib.Tactic\n" + full},  # covered import
            {"name": "p10", "proof": "import Foo.Bar\n" + full},  # not in the header
            {"name": "p10", "proof": full.replace("nlinarith", "native_decide")},
            {"name": "nope", "proof": full}]
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    rc = cli(["check", str(f), "--statements", str(stmts), "--text-only"])
    cap = capsys.readouterr()
    got = [json.loads(x)["text_audit"]["status"] for x in cap.out.splitlines()]
    # an import the header lacks is a judged rejection (a made-up import must not drop a wrong
    # sample out of pass@k as "could not judge")
    assert got == ["needs_lean", "needs_lean", "rejected", "rejected"]
    assert "Foo.Bar" in json.loads(cap.out.splitlines()[2])["text_audit"]["reason"]
    assert rc == 1 and ":5: field 'formal_statement'" in cap.err
    assert "not in --statements" in cap.err


def test_lean_server_flag_checks_on_kimina(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    case = next(c for c in AUDIT_CASES if c["id"] == "valid_continuation")
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"name": "p10", "formal_statement": case["formal_statement"],
                             "header": case["header"], "proof": case["proof"]},
                            ensure_ascii=False) + "\n")
    with KiminaStandIn(audit_answer(case), api_key="k") as srv:
        rc = cli(["check", str(f), "--lean-server", srv.url, "--api-key", "k"])
    cap = capsys.readouterr()
    [line] = [json.loads(x) for x in cap.out.splitlines()]
    assert rc == 0 and line["verdict"]["status"] == "correct", cap.err
    assert "kimina-lean-server" in cap.err and len(srv.requests) == 1

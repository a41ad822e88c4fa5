import json
import subprocess
import sys

import pytest

from verimath.cli import main


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_single_pair_prints_one_json_verdict(capsys):
    assert main(["grade", "--gold", r"\frac12", "--pred", "so the answer is $0.5$."]) == 0
    out = capsys.readouterr().out
    (v,) = _lines(out)
    assert v["status"] == "correct"
    assert v["detail"]["gold"] == r"\frac12" and v["detail"]["pred"] == "0.5"
    assert v["detail"]["grader"]


def test_single_pair_bad_gold_is_reported_not_fatal(capsys):
    assert main(["grade", "--gold", "}{", "--pred", "5"]) == 0
    (v,) = _lines(capsys.readouterr().out)
    assert v["status"] == "bad_gold"


@pytest.mark.parametrize(
    "argv",
    [
        ["grade"],
        ["grade", "--gold", "1"],
        ["grade", "--gold", "1", "--pred", "1", "--file", "x.jsonl"],
        ["grade", "--file", "/nonexistent/file.jsonl"],
        ["grade", "--gold", "1", "--pred", "1", "--timeout-s", "0"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "verimath grade" in capsys.readouterr().err


RECORDS = [
    '{"id": "a", "answer": "Sells 9.\\n#### 18", "completion": "So $18. The answer is 18."}',
    '{"id": "b", "answer": "\\\\frac{1}{2}", "completion": "0.5"}',
    "not json at all",
    '{"answer": "5"}',
    '{"answer": 5, "completion": 5}',
    '{"answer": "5", "completion": null}',
    '["a", "list"]',
    "",
    '{"answer": "\\\\boxed{7}", "completion": "the result is 6"}',
    '{"answer": "7", "completion": "\\\\boxed{}"}',
    '{"answer": "9^{9^{9^9}}", "completion": "5"}',
    '{"answer": "2", "completion": {"text": "x"}}',
]


def test_file_mode(tmp_path, capsys):
    f = tmp_path / "gens.jsonl"
    f.write_text("\n".join(RECORDS) + "\n", encoding="utf-8")
    rc = main([
        "grade", "--file", str(f), "--gold-field", "answer", "--pred-field", "completion",
        "--workers", "2", "--timeout-s", "2", "--no-progress",
    ])
    cap = capsys.readouterr()
    assert rc == 0
    rows = _lines(cap.out)
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12]  # order, blank skipped
    status = {r["line"]: r["verdict"]["status"] for r in rows}
    assert status == {
        1: "correct", 2: "correct", 3: "error", 4: "error", 5: "correct", 6: "error",
        7: "error", 9: "wrong", 10: "no_answer", 11: "bad_gold", 12: "error",
    }
    by_line = {r["line"]: r for r in rows}
    assert by_line[1]["id"] == "a" and by_line[1]["gold"] == "18" and by_line[1]["pred"] == "18"
    assert by_line[9]["gold"] == "7" and by_line[9]["pred"] == "6"
    assert "reason" in by_line[1]["verdict"]
    # bad records name their line and field, on stdout and on stderr
    assert by_line[3]["verdict"]["reason"].startswith("line 3: bad JSON")
    assert by_line[4]["verdict"]["reason"] == "line 4: field 'completion': missing"
    assert "line 6: field 'completion'" in by_line[6]["verdict"]["reason"]
    assert "null" in by_line[6]["verdict"]["reason"]
    assert "line 12: field 'completion'" in by_line[12]["verdict"]["reason"]
    for n in (3, 4, 6, 7, 12):
        assert f"line {n}" in cap.err
    # summary on stderr: accuracy over judged records (1, 2, 5, 9, 10) = 3/5
    assert "accuracy" in cap.err and "0.6000" in cap.err


def test_file_mode_dotted_fields_and_no_extract(tmp_path, capsys):
    f = tmp_path / "g.jsonl"
    recs = [
        {"problem": {"gold": "7"}, "attempts": [{"answer": "so the total is 7"}]},
        {"problem": {"gold": "7"}, "attempts": [{"answer": "7"}]},
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    argv = ["grade", "--file", str(f), "--gold-field", "problem.gold",
            "--pred-field", "attempts.0.answer", "--no-progress"]
    assert main(argv) == 0
    assert [r["verdict"]["status"] for r in _lines(capsys.readouterr().out)] == [
        "correct", "correct",  # extracted: the last number is 7
    ]
    assert main([*argv, "--no-extract"]) == 0
    assert [r["verdict"]["status"] for r in _lines(capsys.readouterr().out)] == [
        "wrong", "correct",  # taken whole, the sentence is not 7
    ]


def test_console_script_end_to_end(tmp_path):
    f = tmp_path / "g.jsonl"
    f.write_text('{"answer": "#### 1,000", "pred": "1000"}\nbroken\n', encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "verimath", "grade", "--file", str(f)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = _lines(out.stdout)
    assert [r["verdict"]["status"] for r in rows] == ["correct", "error"]
    assert "line 2: bad JSON" in out.stderr

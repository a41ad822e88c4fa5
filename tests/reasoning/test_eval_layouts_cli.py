"""`verimath eval --benchmark FILE.jsonl` on the layouts users bring: all judged, no flags.

The CLI runs in-process with the scripted backend of :mod:`verimath.testing` in place of a
model (``load_backend`` is patched); loading, the real grader and scoring are the real ones.
"""

import json

import pytest

from verimath.cli import main as cli
from verimath.testing import ScriptedBackend, question_of

# (layout, records written as the set circulates, question text the model sees -> gold it says)
SETS = {
    "svamp": [
        {"ID": "chal-1", "Body": "Each pack has 5 pencils.", "Question": "How many in 3 packs?",
         "Equation": "( 5.0 * 3.0 )", "Answer": 15.0, "Type": "Multiplication"},
        {"ID": "chal-2", "Body": "Tom had 9 cards and gave away 4.",
         "Question": "How many are left?", "Equation": "( 9.0 - 4.0 )", "Answer": 5.0,
         "Type": "Subtraction"},
    ],
    "amc": [
        {"id": 0, "problem": "What is $2^3$?", "answer": 8.0, "url": "https://aops/1"},
        {"id": 1, "problem": "What is $1/2+1/4$?", "answer": 0.75, "url": "https://aops/2"},
    ],
    "aime": [
        {"ID": "2024-I-1", "Problem": "Find $m+n$ where $m=100$ and $n=104$.", "Answer": 204},
        {"ID": "2024-I-2", "Problem": "Find $10^2$.", "Answer": "100"},
    ],
    "asdiv": [
        {"id": "nluds-1", "body": "Seven red apples and two green apples are in a basket.",
         "question": "How many apples are in the basket?", "answer": "9 (apples)",
         "formula": "7+2=9"},
        {"id": "nluds-2", "body": "A box holds 12 eggs.", "question": "How many in 2 boxes?",
         "answer": "24 (eggs)", "formula": "12*2=24"},
    ],
    "minerva": [
        {"problem": "A rod is 16 mm long. How long is it in cm?",
         "solution": "Dividing by 10, the length is $\\boxed{1.6} \\mathrm{~cm}$."},
        {"problem": "Compute the ratio $6/4$.",
         "solution": "The ratio is $\\boxed{\\frac{3}{2}}$."},
    ],
    "college_math": [
        {"data_source": "college_math.algebra", "question": "Solve $3x+1=0$ for $x$.",
         "answer": "$-\\frac{1}{3}$", "question_number": "1.1"},
        {"data_source": "college_math.calculus", "question": "What is $\\int_0^1 2x\\,dx$?",
         "answer": "$1$", "question_number": "2.4"},
    ],
}
SAYS = {  # what the scripted model answers, by a piece of the question (equivalent forms)
    "5 pencils": "15", "9 cards": "5", "2^3": "8", "1/2+1/4": "\\frac{3}{4}", "m+n": "204",
    "10^2": "100", "Seven red": "9", "12 eggs": "24", "16 mm": "1.6", "6/4": "1.5",
    "3x+1": "-1/3", "2x": "1",
}


def _policy(prompt, j, params):
    q = question_of(prompt)
    for piece, ans in SAYS.items():
        if piece in q:
            return f"Let me think.\nThe answer is ${ans}$."
    return "I do not know."


def _run(tmp_path, monkeypatch, rows, name):
    import verimath.backends

    monkeypatch.setattr(verimath.backends, "load_backend",
                        lambda cfg: ScriptedBackend(_policy))
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / f"out_{name}"
    rc = cli(["eval", "--benchmark", str(path), "--strategy", "cot", "--out", str(out),
              "--no-progress"])
    return rc, out


@pytest.mark.parametrize("name", list(SETS))
def test_every_problem_judged_without_flags(tmp_path, monkeypatch, name):
    rc, out = _run(tmp_path, monkeypatch, SETS[name], name)
    assert rc == 0
    assert (out / "errors.jsonl").read_text() == ""
    s = json.loads((out / "summary.json").read_text())
    n = len(SETS[name])
    assert s["n_problems"] == n and s["n_judged"] == n
    assert s["n_bad_gold"] == 0 and s["n_infra_failures"] == 0 and not s["nothing_judged"]
    assert s["accuracy"] == 1.0


def test_duplicate_question_text_is_three_problems(tmp_path, monkeypatch):
    """Issue 10's file: two records share the question, golds differ -> 3 problems scored."""
    rows = [{"question": "What is 2^3?", "answer": "8"},
            {"question": "What is 10^2?", "answer": "100"},
            {"question": "What is 2^3?", "answer": "9"}]
    rc, out = _run(tmp_path, monkeypatch, rows, "dups")
    assert rc == 0
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert len(recs) == 3 and len({r["id"] for r in recs}) == 3
    assert sorted(r["gold"] for r in recs) == ["100", "8", "9"]
    s = json.loads((out / "summary.json").read_text())
    assert s["n_problems"] == 3 and s["n_judged"] == 3
    assert s["accuracy"] == pytest.approx(2 / 3)  # the model says 8 to both 2^3 records


def test_bad_gold_is_a_load_error_and_nothing_judged_is_loud(tmp_path, monkeypatch, capsys):
    rows = [{"problem": "Find $x$.", "solution": "We find x.\nIt is positive."}]
    rc, out = _run(tmp_path, monkeypatch, rows, "badgold")
    err = capsys.readouterr().err
    (e,) = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert e["field"] == "solution" and "no gold answer" in e["error"] and e["where"].endswith(":1")
    s = json.loads((out / "summary.json").read_text())
    assert s["n_problems"] == 0 and s["n_infra_failures"] == 0 and s["nothing_judged"]
    assert "NOTHING WAS JUDGED" in err and "1 bad input record" in err
    assert rc == 0


def test_allow_missing_gold_keeps_problems_as_bad_gold_not_infra(tmp_path, monkeypatch, capsys):
    rows = [{"problem": "Find $x$.", "solution": "We find x.\nIt is positive."},
            {"problem": "What is $2^3$?", "solution": "It is $\\boxed{8}$."}]
    import verimath.backends

    monkeypatch.setattr(verimath.backends, "load_backend", lambda cfg: ScriptedBackend(_policy))
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc = cli(["eval", "--benchmark", str(path), "--strategy", "cot", "--out",
              str(tmp_path / "o"), "--no-progress", "--allow-missing-gold"])
    assert rc == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["n_problems"] == 2 and s["n_problems_without_gold"] == 1
    assert s["n_bad_gold"] == 1 and s["n_infra_failures"] == 0
    assert s["n_judged"] == 1 and s["accuracy"] == 1.0
    # bad gold is data: the problem's record is final, not queued for a retry on resume
    final = [json.loads(x) for x in (tmp_path / "o" / "records.jsonl").read_text().splitlines()]
    assert len(final) == 2
    retries = tmp_path / "o" / "retries.jsonl"
    assert not retries.exists() or not retries.read_text().strip()


def test_mapping_flags_for_an_unknown_layout(tmp_path, monkeypatch):
    rows = [{"key": "a", "data": {"head": "Each pack has 5 pencils.", "ask": "How many in 3?"},
             "target": 15}]
    import verimath.backends

    monkeypatch.setattr(verimath.backends, "load_backend", lambda cfg: ScriptedBackend(_policy))
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "o"
    rc = cli(["eval", "--benchmark", str(path), "--strategy", "cot", "--out", str(out),
              "--no-progress", "--question-field", "{data.head} {data.ask}",
              "--answer-field", "target", "--id-field", "key"])
    assert rc == 0
    (rec,) = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert rec["id"] == "a" and rec["gold"] == "15"
    assert rec["question"] == "Each pack has 5 pencils. How many in 3?"
    assert json.loads((out / "summary.json").read_text())["accuracy"] == 1.0


def test_mapping_keys_in_yaml_configs(tmp_path):
    from verimath.config import load_config
    from verimath.datagen.config import DatagenConfig
    from verimath.reasoning.evaluation import EvalConfig

    y = tmp_path / "c.yaml"
    y.write_text('question_field: "{Body} {Question}"\nanswer_field: Answer\nid_field: ID\n')
    for cls in (EvalConfig, DatagenConfig):
        cfg = load_config(cls, y)
        assert (cfg.question_field, cfg.answer_field, cfg.id_field) == (
            "{Body} {Question}", "Answer", "ID")

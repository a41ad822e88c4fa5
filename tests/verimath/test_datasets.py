import json

import pytest

from verimath.datasets import _HUB, BENCHMARKS, load_problems
from verimath.layouts import FieldMap


def _write(tmp_path, rows, name="in.jsonl"):
    p = tmp_path / name
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(p)


def test_gsm8k_local(shared_data, monkeypatch):
    monkeypatch.setenv("VERIMATH_DATA", str(shared_data))
    r = load_problems("gsm8k")
    assert len(r.problems) == 1319 and not r.errors
    assert r.problems[0].answer == "18"
    assert all(p.answer is not None for p in r.problems)
    assert len({p.id for p in r.problems}) == 1319  # ids unique (content hashes)


def test_math500_and_minif2f_split(shared_data, monkeypatch):
    monkeypatch.setenv("VERIMATH_DATA", str(shared_data))
    m = load_problems("math500")
    assert len(m.problems) == 500 and not m.errors and m.problems[3].answer == "9"
    f = load_problems("minif2f", split="test")
    assert len(f.problems) == 244
    assert all(p.formal_statement and p.header for p in f.problems)
    assert not f.problems[0].informal.startswith("/--")


# one row per layout: records written the way the set circulates -> (layout, question, gold, id)
LAYOUT_CASES = [
    ("gsm8k", {"question": "Janet has 3 eggs. How many?", "answer": "3 eggs.\n#### 1,234"},
     "qa", "Janet has 3 eggs. How many?", "1234", None),
    ("math500_hub", {"problem": "Compute $1+1$.", "solution": "It is $\\boxed{2}$.",
                     "answer": "2", "subject": "Algebra", "level": 1,
                     "unique_id": "test/algebra/1.json"},
     "math", "Compute $1+1$.", "2", "test/algebra/1.json"),
    ("math500_copy", {"question": "Compute $2+1$.",
                      "answer": "So $\\boxed{3}$.\nThe answer is: 3"},
     "qa", "Compute $2+1$.", "3", None),
    ("minerva", {"problem": "How long is it?",
                 "solution": "The length is $\\boxed{1.6} \\mathrm{~cm}$."},
     "math", "How long is it?", "1.6", None),
    ("math_original", {"problem": "Find $x$.", "solution": "We get \\boxed{\\frac{1}{2}}.",
                       "level": "Level 2", "type": "Algebra"},
     "math", "Find $x$.", "\\frac{1}{2}", None),
    ("svamp", {"ID": "chal-1", "Body": "Each pack has 5 pencils.",
               "Question": "How many pencils are in 3 packs?", "Equation": "( 5.0 * 3.0 )",
               "Answer": 15.0, "Type": "Multiplication"},
     "svamp", "Each pack has 5 pencils. How many pencils are in 3 packs?", "15", "chal-1"),
    ("asdiv", {"id": "nluds-0001", "body": "Seven red apples and two green apples.",
               "question": "How many apples?", "answer": "9 (apples)", "formula": "7+2=9"},
     "asdiv", "Seven red apples and two green apples. How many apples?", "9", "nluds-0001"),
    ("aime_hub", {"id": 60, "problem": "Find $m+n$.", "solution": "... so $\\boxed{204}$.",
                  "answer": "204", "url": "https://aops", "year": "2024"},
     "math", "Find $m+n$.", "204", "60"),
    ("aime_numeric", {"ID": "2024-I-1", "Problem": "Every morning Aya walks.", "Answer": 204},
     "qa", "Every morning Aya walks.", "204", "2024-I-1"),
    ("amc", {"id": 0, "problem": "What is $2^3$?", "answer": 8.0, "url": "https://aops"},
     "qa", "What is $2^3$?", "8", "0"),
    ("college_math", {"data_source": "college_math.algebra", "question": "Solve $3x+1=0$.",
                      "answer": "$-\\frac{1}{3}$", "question_number": "1.1"},
     "qa", "Solve $3x+1=0$.", "-\\frac{1}{3}", None),
    ("olympiadbench", {"id": 1606, "question": "Find $r$.", "solution": ["So $r=1/2$."],
                       "final_answer": ["$\\frac{1}{2}$"], "is_multiple_answer": False},
     "olympiadbench", "Find $r$.", "\\frac{1}{2}", "1606"),
    ("olympiadbench_set", {"id": 7, "question": "Find all $n$.", "final_answer": ["$1$", "$2$"],
                           "is_multiple_answer": True},
     "olympiadbench", "Find all $n$.", "1, 2", "7"),
    ("aqua_mc", {"question": "What is 7*3?", "options": ["A)21", "B)22", "C)24"],
                 "rationale": "7*3=21", "correct": "A"},
     "multiple_choice", "What is 7*3?\n(A) 21\n(B) 22\n(C) 24", "A", None),
    ("mmlu_mc", {"question": "2+2=?", "choices": ["1", "2", "4", "5"], "answer": 2},
     "multiple_choice", "2+2=?\n(A) 1\n(B) 2\n(C) 4\n(D) 5", "C", None),
    ("mc_dict", {"problem": "Pick one.", "options": {"A": "x", "B": "y"}, "answer": "(B)"},
     "multiple_choice", "Pick one.\n(A) x\n(B) y", "B", None),
]


@pytest.mark.parametrize("name,rec,layout,question,gold,pid", LAYOUT_CASES,
                         ids=[c[0] for c in LAYOUT_CASES])
def test_layout_detected(tmp_path, name, rec, layout, question, gold, pid):
    other = dict(rec)  # a second record in the same layout: every record of a file loads
    for k in ("question", "problem", "Problem", "Question", "body"):
        if k in other:
            other[k] = other[k] + " (again)"
            break
    for k in ("id", "ID", "unique_id"):
        if k in other:
            other[k] = f"{other[k]}-b"
    r = load_problems(_write(tmp_path, [rec, other]))
    assert not r.errors, r.errors
    assert len(r.problems) == 2
    p = r.problems[0]
    assert (p.meta["layout"], p.informal, p.answer) == (layout, question, gold)
    if pid is not None:
        assert p.id == pid
    assert r.problems[1].answer == gold and r.problems[1].id != p.id


def test_explicit_mapping_dotted_paths_and_template(tmp_path):
    rows = [{"key": "k1", "data": {"head": "A train goes 60 km/h.", "ask": "How far in 2h?"},
             "target": {"value": 120}}]
    fields = FieldMap(question="{data.head} {data.ask}", answer="target.value", id="key")
    r = load_problems(_write(tmp_path, rows), fields=fields)
    assert not r.errors
    p = r.problems[0]
    assert (p.id, p.informal, p.answer) == ("k1", "A train goes 60 km/h. How far in 2h?", "120")
    assert p.meta["layout"] == "mapped"


def test_mapping_errors_name_line_and_field(tmp_path):
    rows = [{"q": "one?", "a": "1"}, {"q": "two?"}, {"a": "3"}]
    r = load_problems(_write(tmp_path, rows), fields=FieldMap(question="q", answer="a"))
    assert [p.answer for p in r.problems] == ["1"]
    got = sorted((e.where.rsplit(":", 1)[1], e.field_name) for e in r.errors)
    assert got == [("2", "a"), ("3", "q")]
    with pytest.raises(ValueError, match="dotted path"):
        FieldMap(answer="{a}")


def test_unextractable_gold_is_a_load_error_unless_allowed(tmp_path):
    rows = [{"problem": "p1", "solution": "We compute.\nIt is two."},  # no box, no marker
            {"question": "q2", "answer": "\\boxed{}"},
            {"question": "q3"},                                          # no answer field
            {"question": "q4", "answer": "4"}]
    path = _write(tmp_path, rows)
    r = load_problems(path)
    assert [p.informal for p in r.problems] == ["q4"]
    errs = {e.where.rsplit(":", 1)[1]: e for e in r.errors}
    assert errs["1"].field_name == "solution" and "no gold answer" in errs["1"].problem
    assert errs["2"].field_name == "answer" and "empty \\boxed{}" in errs["2"].problem
    assert errs["3"].field_name == "answer" and "no answer field" in errs["3"].problem
    kept = load_problems(path, allow_missing_gold=True)
    assert not kept.errors and len(kept.problems) == 4 and kept.missing_gold == 3
    first = kept.problems[0]
    assert first.answer is None and "no \\boxed{}" in first.meta["gold_missing"]


def test_bad_records_named_not_fatal(tmp_path):
    rows = ['{"question": "1+1?", "answer": "2"}', "not json", '{"answer": "3"}',
            '{"question": 5, "answer": "3"}', '{"question": "2+2?", "answer": 4}',
            '{"question": "3+3?", "answer": true}', '{"options": ["1"], "question": "x", '
            '"answer": "Z"}']
    r = load_problems(_write(tmp_path, rows))
    assert [x.answer for x in r.problems] == ["2", "4"]  # a numeric answer is a gold now
    where = sorted((e.where.rsplit(":", 1)[1], e.field_name) for e in r.errors)
    assert where == [("2", "<line>"), ("3", "question"), ("4", "question"), ("6", "answer"),
                     ("7", "answer")]


def test_duplicate_question_text_gets_suffixed_ids(tmp_path):
    """Issue 10: same question, different gold -> 3 distinct problems, both lines reported."""
    rows = [{"question": "What is the number?", "answer": "1"},
            {"question": "What is 2+2?", "answer": "4"},
            {"question": "What is the number?", "answer": "7"}]
    path = _write(tmp_path, rows)
    r = load_problems(path)
    ids = [p.id for p in r.problems]
    assert len(ids) == 3 == len(set(ids))
    assert [p.answer for p in r.problems] == ["1", "4", "7"]
    (dup,) = r.duplicates
    assert (dup.first, dup.where) == (f"{path}:1", f"{path}:3")
    assert ids[2] == dup.new_id == f"{ids[0]}~2"
    assert load_problems(path).problems[2].id == ids[2]  # deterministic (resume-safe)


def test_repeated_source_ids_and_suffix_collisions(tmp_path):
    rows = [{"id": "a", "question": "q1", "answer": "1"}, {"id": "a", "question": "q2",
            "answer": "2"}, {"id": "a~2", "question": "q3", "answer": "3"}]
    r = load_problems(_write(tmp_path, rows))
    assert [p.id for p in r.problems] == ["a", "a~2", "a~2~2"]
    assert len(r.duplicates) == 2


def test_unknown_spec_says_how_to_fix():
    with pytest.raises(FileNotFoundError, match="VERIMATH_DATA"):
        load_problems("no_such_benchmark")


@pytest.mark.parametrize("spec", ["missing.jsonl", "/no/such/dir/set.parquet"])
def test_missing_file_is_named_not_looked_up_on_the_hub(spec):
    with pytest.raises(FileNotFoundError, match="benchmark file not found") as e:
        load_problems(spec)
    assert "hub" not in str(e.value)


@pytest.mark.parametrize("spec", ["svamp", "asdiv", "aime24", "amc23", "minerva_math",
                                  "olympiadbench", "math"])
def test_builtin_ids_offline_name_the_hub_dataset(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("VERIMATH_DATA", str(tmp_path))  # no local copy
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert spec in BENCHMARKS
    with pytest.raises(FileNotFoundError) as e:
        load_problems(spec)
    assert repr(_HUB[spec][0]) in str(e.value) and "VERIMATH_DATA" in str(e.value)


def test_builtin_id_uses_a_local_copy(tmp_path, monkeypatch):
    (tmp_path / "svamp").mkdir()
    _write(tmp_path / "svamp", [{"ID": "c1", "Body": "b.", "Question": "q?", "Answer": 3.0}],
           "test.jsonl")
    monkeypatch.setenv("VERIMATH_DATA", str(tmp_path))
    (p,) = load_problems("svamp").problems
    assert (p.id, p.informal, p.answer) == ("c1", "b. q?", "3")


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "q?", "answer": "#### 7"}]), p)
    r = load_problems(str(p))
    assert r.problems[0].answer == "7"
    assert json.dumps(r.problems[0].to_dict())


def test_formal_duplicate_names_are_suffixed_too(tmp_path):
    """The prover's input path: two miniF2F-style records with one name stay two problems."""
    stmt = "theorem t : 1 + 1 = 2 :="
    rows = [{"name": "t", "formal_statement": stmt, "header": "import Mathlib"},
            {"name": "t", "formal_statement": stmt + " -- v2", "header": "import Mathlib"}]
    r = load_problems(_write(tmp_path, rows))
    assert [p.id for p in r.problems] == ["t", "t~2"] and len(r.duplicates) == 1
    assert all(p.answer is None for p in r.problems) and not r.errors  # no gold needed


def test_a_record_with_id_and_source_is_not_mistaken_for_a_problem(tmp_path):
    """NuminaMath-style rows have ``source`` and ``id`` but are not verimath Problems."""
    rows = [{"id": "n1", "source": "amc_aime", "problem": "What is $2+2$?", "answer": 4},
            {"id": "p1", "source": "mine", "informal": "What is 1+1?", "answer": "2"}]
    r = load_problems(_write(tmp_path, rows))
    assert [(p.id, p.informal, p.answer) for p in r.problems] == [
        ("n1", "What is $2+2$?", "4"), ("p1", "What is 1+1?", "2")]
    assert r.problems[1].source == "mine"  # a Problem keeps its own source

import json

import pytest

from verimath.datasets import gsm8k_gold, load_problems, math_gold


def test_gsm8k_local(shared_data, monkeypatch):
    monkeypatch.setenv("VERIMATH_DATA", str(shared_data))
    r = load_problems("gsm8k")
    assert len(r.problems) == 1319 and not r.errors
    assert r.problems[0].answer == "18"
    assert all(p.answer is not None for p in r.problems)
    assert len({p.id for p in r.problems}) == 1319  # ids unique (content hashes)


def test_math500_and_minif2f_split(shared_data, monkeypatch):
    monkeypatch.setenv("VERIMATH_DATA", str(shared_data))
    m = load_problems("math500", limit=5)
    assert len(m.problems) == 5 and m.problems[3].answer == "9"
    f = load_problems("minif2f", split="test")
    assert len(f.problems) == 244
    assert all(p.formal_statement and p.header for p in f.problems)
    assert not f.problems[0].informal.startswith("/--")


@pytest.mark.parametrize("sol,gold", [("x\n#### 1,234", "1234"), ("no marker", None),
                                      ("a\n#### -5 ", "-5")])
def test_gsm8k_gold(sol, gold):
    assert gsm8k_gold(sol) == gold


def test_math_gold():
    assert math_gold("so \\boxed{3}.\nThe answer is: 3") == "3"
    assert math_gold("nothing") is None


def test_bad_records_named_not_fatal(tmp_path):
    p = tmp_path / "in.jsonl"
    rows = ['{"question": "1+1?", "answer": "2"}', "not json", '{"answer": "3"}',
            '{"question": 5, "answer": "3"}', '{"question": "2+2?", "answer": 4}']
    p.write_text("\n".join(rows) + "\n")
    r = load_problems(str(p))
    assert [x.answer for x in r.problems] == ["2"]
    where = sorted((e.where.rsplit(":", 1)[1], e.field_name) for e in r.errors)
    assert where == [("2", "<line>"), ("3", "question"), ("4", "question"), ("5", "answer")]


def test_unknown_spec_says_how_to_fix():
    with pytest.raises(FileNotFoundError, match="VERIMATH_DATA"):
        load_problems("no_such_benchmark")


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "q?", "answer": "#### 7"}]), p)
    r = load_problems(str(p))
    assert r.problems[0].answer == "7"
    assert json.dumps(r.problems[0].to_dict())

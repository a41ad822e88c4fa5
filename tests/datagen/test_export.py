"""Funnel table / PNG / JSON and the JSONL + Parquet + HF export."""

from __future__ import annotations

import json

from verimath.datagen.export import export_all, export_row, scrub_timing
from verimath.datagen.funnel import Funnel, StageCounts
from verimath.records import Problem, Span, SpanKind, Trajectory, Verdict, VerdictStatus


def _funnel() -> Funnel:
    f = Funnel()
    f.add(StageCounts("load", "records", 10, 9, {"bad_record": 1}, "problems", 9))
    f.add(StageCounts("dedup", "problems", 9, 8, {"duplicate": 1}, "problems", 8))
    f.add(StageCounts("solve", "problems", 8, 5, {"no verified attempt": 3}, "trajectories", 7,
                      {"wrong": 20, "no_answer": 5}, "attempts"))
    return f


def test_funnel_table_png_and_json(tmp_path) -> None:
    f = _funnel()
    text = f.render_text()
    assert "solve" in text and "8 problems" in text and "5 problems -> 7 trajectories" in text
    assert "3 no verified attempt" in text and "attempts: 20 wrong, 5 no_answer" in text
    f.write_png(tmp_path / "funnel.png")
    assert (tmp_path / "funnel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    f.write_json(tmp_path / "funnel.json", timing={"total": 1.0})
    d = json.loads((tmp_path / "funnel.json").read_text())
    assert [s["stage"] for s in d["stages"]] == ["load", "dedup", "solve"]
    assert d["stages"][2]["rejected_out"] == {"wrong": 20, "no_answer": 5}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def _row(i: int) -> dict:
    p = Problem(id=f"p{i}", source="test", informal=f"What is {i}+1?", answer=str(i + 1))
    text = f"```python\nprint({i}+1)\n```"
    traj = Trajectory(
        problem=p,
        messages=({"role": "user", "content": p.informal}, {"role": "assistant", "content": text}),
        spans=(Span(SpanKind.MODEL, text[:10]), Span(SpanKind.TOOL, text[10:])),
        verdicts={"grader": Verdict(VerdictStatus.CORRECT, "ok", {"elapsed_s": 0.1, "gold": "1"})},
        provenance={"model": "m", "tool_calls": [{"code": "x", "wall_time_s": 0.2}]},
    )
    return export_row(traj, kind="pot", verified_by="gold", key=f"k{i}", answer=str(i + 1))


def test_export_row_drops_timings() -> None:
    r = _row(1)
    assert r["verdicts"]["grader"]["detail"] == {"gold": "1"}
    assert r["provenance"]["tool_calls"] == [{"code": "x"}]
    assert scrub_timing({"a": [{"elapsed_s": 1, "b": 2}]}) == {"a": [{"b": 2}]}


def test_export_writes_jsonl_parquet_hf_and_rejected(tmp_path) -> None:
    import datasets
    import pyarrow.parquet as pq

    rows = [_row(i) for i in range(3)]
    rejected = [{"stage": "solve", "reason": "wrong", "unit": "attempts", "record": {"x": 1}}]
    res = export_all(tmp_path, rows, rejected, {"review": [{"a": 1}], "open": []})
    assert res.counts == {"verified": 3, "rejected": 1, "review": 1, "open": 0}
    lines = [json.loads(x) for x in (tmp_path / "data.jsonl").read_text().splitlines()]
    assert lines == rows
    table = pq.read_table(tmp_path / "data.parquet")
    assert table.num_rows == 3
    assert table.column("messages").to_pylist()[0][1]["role"] == "assistant"
    assert json.loads(table.column("verdicts").to_pylist()[0])["grader"]["status"] == "correct"
    ds = datasets.load_from_disk(str(tmp_path / "hf_dataset"))
    assert len(ds) == 3 and ds[2]["id"] == "k2"
    assert "".join(s["text"] for s in ds[0]["spans"]) == ds[0]["messages"][-1]["content"]
    assert json.loads((tmp_path / "rejected.jsonl").read_text())["reason"] == "wrong"
    assert (tmp_path / "open.jsonl").read_text() == ""
    # a second export replaces everything atomically and leaves no temp folders behind
    export_all(tmp_path, rows[:1], [], {})
    assert len(datasets.load_from_disk(str(tmp_path / "hf_dataset"))) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_of_nothing_still_has_the_schema(tmp_path) -> None:
    import datasets

    export_all(tmp_path, [], [], {})
    ds = datasets.load_from_disk(str(tmp_path / "hf_dataset"))
    assert len(ds) == 0 and "messages" in ds.column_names

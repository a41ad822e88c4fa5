import json
import os

from verimath.store import atomic_write_json, read_jsonl


def test_atomic_write_and_read_jsonl_reports_bad_lines(tmp_path):
    p = tmp_path / "x.json"
    atomic_write_json(p, {"a": 1})
    assert json.loads(p.read_text()) == {"a": 1}
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    j = tmp_path / "in.jsonl"
    j.write_text('{"a": 1}\nnot json\n\n[1, 2]\n')
    got = list(read_jsonl(j))
    assert got[0] == (1, {"a": 1})
    assert got[1][0] == 2 and isinstance(got[1][1], ValueError) and ":2:" in str(got[1][1])
    assert got[2][0] == 4 and isinstance(got[2][1], ValueError)


def test_old_name_resolves_to_the_job_store():
    from verimath import store
    from verimath.jobs import JobStore

    assert store.ResultStore is JobStore

"""SFT labels: prompt and tool-output tokens ignored, the model's own code and text trained."""

from __future__ import annotations

import json

import pytest

from tests.verimath.tiny_model import tiny_model_dir
from verimath.records import RecordError
from verimath.rl.sft_data import IGNORE_INDEX, build_sft_dataset, build_sft_features, load_records

MODEL_1 = "Let me compute it.\n```python\nx = 37 * 41\nprint(x)\n```\n"
TOOL = "```output\n1517\n```\n"
MODEL_2 = "So the answer is \\boxed{1517}."
MESSAGES = [
    {"role": "system", "content": "You are a careful math tutor."},
    {"role": "user", "content": "What is 37 times 41?"},
    {"role": "assistant", "content": MODEL_1 + TOOL + MODEL_2},
]
SPANS = [{"kind": "model", "text": MODEL_1}, {"kind": "tool", "text": TOOL},
         {"kind": "model", "text": MODEL_2}]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir()))


def _trained_text(tok, feats) -> str:
    return tok.decode([t for t, lab in zip(feats.input_ids, feats.labels, strict=True)
                       if lab != IGNORE_INDEX])


def test_masks_prompt_and_tool_output_keeps_model_code_and_text(tok):
    feats = build_sft_features(MESSAGES, SPANS, tok)
    assert len(feats.input_ids) == len(feats.labels)
    trained = _trained_text(tok, feats)
    # the model's own code and prose are trained on ...
    assert "x = 37 * 41" in trained and "print(x)" in trained
    assert "So the answer is \\boxed{1517}." in trained
    assert trained.endswith("<|im_end|>")  # ... and so is the end of its turn
    # ... the prompt and the interpreter's output are not
    assert "1517\n```" not in trained.split("\\boxed")[0]
    assert "```output" not in trained
    assert "37 times 41" not in trained and "careful math tutor" not in trained
    assert "user" not in trained and "system" not in trained
    # every token is either a label equal to its id or ignored
    assert all(lab in (tid, IGNORE_INDEX) for tid, lab in zip(feats.input_ids, feats.labels,
                                                               strict=True))


def test_tool_token_positions_are_exactly_ignored(tok):
    """Token by token: each token lying inside the tool span is -100, each model one is not."""
    from verimath.records import SpanKind
    from verimath.rl.sft_data import model_char_mask

    spans = [(SpanKind(s["kind"]), s["text"]) for s in SPANS]
    text, owner = model_char_mask(MESSAGES, spans, tok)
    feats = build_sft_features(MESSAGES, SPANS, tok)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    n_tool = n_model = 0
    for lab, (a, b) in zip(feats.labels, enc["offset_mapping"], strict=True):
        who = set(owner[a:b])
        if who == {2}:
            n_tool += 1
            assert lab == IGNORE_INDEX
        elif who == {1}:
            n_model += 1
            assert lab != IGNORE_INDEX
        elif who == {0}:
            assert lab == IGNORE_INDEX
    assert n_tool >= 3 and n_model >= 10


def test_without_spans_the_whole_assistant_turn_is_trained(tok):
    feats = build_sft_features(MESSAGES, None, tok)
    assert "```output\n1517\n```" in _trained_text(tok, feats)


@pytest.mark.parametrize("messages,spans,field", [
    ([{"role": "user", "content": "hi"}], None, "messages"),
    (MESSAGES, [{"kind": "model", "text": "something else"}], "spans"),
    (MESSAGES, [{"kind": "robot", "text": MODEL_1 + TOOL + MODEL_2}], "spans"),
    ([{"role": "user"}, {"role": "assistant", "content": "x"}], None, "messages[0]"),
])
def test_bad_records_name_the_field(tok, messages, spans, field):
    with pytest.raises(RecordError) as e:
        build_sft_features(messages, spans, tok, where="traj-7")
    assert e.value.where == "traj-7" and e.value.field_name == field


def test_dataset_from_datagen_jsonl_filters_unverified(tok, tmp_path):
    good = {"problem": {"id": "p1"}, "messages": MESSAGES, "spans": SPANS,
            "verdicts": {"answer": {"status": "correct"}}}
    bad = {**good, "problem": {"id": "p2"}, "verdicts": {"answer": {"status": "timeout"}}}
    path = tmp_path / "sft.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (good, bad)) + "\n")
    ds = build_sft_dataset(load_records(path), tok, only_verified=True)
    assert len(ds) == 1 and set(ds.column_names) == {"input_ids", "labels"}
    broken = {**good, "spans": [{"kind": "model", "text": "nope"}]}
    with pytest.raises(RecordError, match="p1"):
        build_sft_dataset([broken], tok)


def test_dataset_from_datagen_parquet_and_hf_export(tok, tmp_path):
    """datagen stores problem/verdicts/provenance as JSON strings in Parquet and HF datasets."""
    import datasets

    from verimath.datagen.export import arrow_table, write_parquet

    def row(pid, status):
        return {"id": pid, "kind": "tir", "verified_by": "gold", "problem_id": pid,
                "source": "t", "answer": "1", "messages": MESSAGES, "spans": SPANS,
                "problem": {"id": pid}, "verdicts": {"answer": {"status": status}},
                "provenance": {"model": "m"}}

    rows = [row("p1", "correct"), row("p2", "wrong")]
    pq_path = tmp_path / "data.parquet"
    write_parquet(pq_path, rows)
    hf_path = tmp_path / "hf"
    datasets.Dataset(arrow_table(rows)).save_to_disk(str(hf_path))
    for path in (pq_path, hf_path):
        recs = load_records(path)
        assert recs[0]["verdicts"] == {"answer": {"status": "correct"}}
        ds = build_sft_dataset(recs, tok, only_verified=True)
        assert len(ds) == 1
    broken = tmp_path / "broken.parquet"
    write_parquet(broken, rows)
    import pyarrow.parquet as pq

    t = pq.read_table(broken).to_pylist()
    t[1]["verdicts"] = "{not json"
    pq.write_table(datasets.Dataset.from_list(t).data.table, broken)
    with pytest.raises(RecordError, match="verdicts"):
        load_records(broken)

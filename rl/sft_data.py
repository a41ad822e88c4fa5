"""SFT examples from ``verimath datagen`` trajectories: loss on the model's own tokens only.

A trajectory's chat is rendered with the tokenizer's chat template and tokenized once (the same
tokenization the model sees at inference). Each token's label is its id only when every
character it covers was written by the model: assistant-turn text from ``model`` spans, plus the
end-of-turn marker that closes an assistant turn (so the model learns to stop). Prompt tokens
(system, user, template scaffolding) and interpreter output (``tool`` spans) get ``-100``, the
practice of ToRA (Gou et al. 2023) and MuMath-Code (Yin et al. 2024). A token that straddles a
model/tool boundary (BPE can merge across it) is masked too and counted in
:attr:`SFTFeatures.boundary_tokens`, so tool text is never trained on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verimath.records import RecordError, SpanKind

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass(frozen=True, slots=True)
class SFTFeatures:
    """One tokenized SFT example.

    Attributes:
        input_ids: (T,) token ids of the rendered chat.
        labels: (T,) ``input_ids`` where the model wrote the token, ``-100`` elsewhere.
        boundary_tokens: tokens masked because they mix model and tool characters.
    """

    input_ids: list[int]
    labels: list[int]
    boundary_tokens: int = 0


def _render(tokenizer: Any, messages: Sequence[Mapping[str, str]], gen_prompt: bool) -> str:
    return str(tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=gen_prompt))


def _check_messages(messages: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise RecordError(where, "messages", "expected a non-empty list of {role, content}")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) \
                or not isinstance(m.get("content"), str):
            raise RecordError(where, f"messages[{i}]", "expected {role: str, content: str}")
    if not any(m["role"] == "assistant" for m in messages):
        raise RecordError(where, "messages", "no assistant turn to train on")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _check_spans(spans: Any, content: str, where: str) -> list[tuple[SpanKind, str]]:
    if not spans:
        return [(SpanKind.MODEL, content)]
    try:
        out = [(SpanKind(s["kind"]), str(s["text"])) for s in spans]
    except (KeyError, TypeError, ValueError) as e:
        raise RecordError(where, "spans", f"expected [{{kind: model|tool, text}}] ({e})") from e
    if "".join(t for _, t in out) != content:
        raise RecordError(where, "spans", "the span texts do not join to the last assistant turn")
    return out


def model_char_mask(
    messages: Sequence[Mapping[str, str]], spans: Sequence[tuple[SpanKind, str]],
    tokenizer: Any, where: str = "record",
) -> tuple[str, list[int]]:
    """Render the chat and mark who wrote each character.

    Args:
        messages: the chat; every assistant turn is trained on.
        spans: model/tool split of the *last* assistant turn (earlier ones are all model).
        tokenizer: a tokenizer with a chat template.
        where: record name for errors.

    Returns:
        ``(text, owner)``: the rendered chat and, per character, 1 = model, 2 = tool, 0 = prompt.

    Raises:
        RecordError: the chat template does not reproduce an assistant turn verbatim.
    """
    text = _render(tokenizer, messages, gen_prompt=False)
    owner = [0] * len(text)
    eot = tokenizer.eos_token or ""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], gen_prompt=True)
        upto = _render(tokenizer, messages[: i + 1], gen_prompt=False)
        content = m["content"]
        start = len(prefix)
        if not (text.startswith(upto) and upto.startswith(prefix)
                and upto[start:start + len(content)] == content):
            raise RecordError(where, f"messages[{i}]", "the chat template does not render this "
                              "assistant turn verbatim after the generation prompt")
        pos = start
        for kind, piece in (spans if i == last else [(SpanKind.MODEL, content)]):
            code = 1 if kind is SpanKind.MODEL else 2
            owner[pos:pos + len(piece)] = [code] * len(piece)
            pos += len(piece)
        tail = upto[pos:]
        if eot and eot in tail:  # the end-of-turn marker is the model's to write
            k = pos + tail.index(eot)
            owner[k:k + len(eot)] = [1] * len(eot)
    return text, owner


def build_sft_features(
    messages: Sequence[Mapping[str, str]], spans: Sequence[Mapping[str, Any]] | None,
    tokenizer: Any, where: str = "record",
) -> SFTFeatures:
    """Tokenize one trajectory and build its labels (see the module docstring).

    Args:
        messages: ``[{"role", "content"}]`` with at least one assistant turn.
        spans: ``[{"kind": "model"|"tool", "text"}]`` of the last assistant turn; None or empty
            means the whole turn is model text.
        tokenizer: a *fast* tokenizer (offsets mapping) with a chat template.
        where: record name for errors.

    Returns:
        :class:`SFTFeatures` with ``len(input_ids) == len(labels)``.

    Raises:
        RecordError: malformed messages/spans, or nothing left to train on.
    """
    msgs = _check_messages(list(messages), where)
    last_content = next(m["content"] for m in reversed(msgs) if m["role"] == "assistant")
    span_list = _check_spans(spans, last_content, where)
    text, owner = model_char_mask(msgs, span_list, tokenizer, where)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels: list[int] = []
    boundary = 0
    for tok, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        who = set(owner[a:b])
        if who == {1}:
            labels.append(tok)
        else:
            labels.append(IGNORE_INDEX)
            boundary += int(1 in who and 2 in who)
    if all(lab == IGNORE_INDEX for lab in labels):
        raise RecordError(where, "messages", "no model-written token left to train on")
    return SFTFeatures(list(enc["input_ids"]), labels, boundary)


def load_records(path: str | os.PathLike[str], limit: int | None = None) -> list[dict[str, Any]]:
    """Read SFT records from JSONL, Parquet, or a ``datasets.save_to_disk`` folder.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RecordError: a JSONL line is not a JSON object, or a Parquet/HF row's JSON-string
            column (problem, verdicts, provenance) does not parse (names the row and field).
    """
    from verimath.store import read_jsonl

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"SFT data not found: {p}")
    rows: list[dict[str, Any]] = []
    if p.is_dir() or p.suffix == ".parquet":
        import datasets

        ds = datasets.load_from_disk(str(p)) if p.is_dir() else datasets.Dataset.from_parquet(
            str(p))
        rows = [_decode_json_columns(dict(r), f"{p}:row {i}") for i, r in enumerate(ds, 1)]
    else:
        for line_no, rec in read_jsonl(p):
            if isinstance(rec, Exception):
                raise RecordError(f"{p}:{line_no}", "<line>", str(rec))
            rows.append(rec)
    return rows[:limit] if limit is not None else rows


#: columns that `verimath datagen` stores as JSON strings in Parquet / HF datasets (their
#: nested dicts have no fixed Arrow schema); JSONL keeps them as objects.
_JSON_COLUMNS = ("problem", "verdicts", "provenance")


def _decode_json_columns(row: dict[str, Any], where: str) -> dict[str, Any]:
    """Parse the JSON-string columns of a Parquet / HF row back into objects."""
    import json

    for col in _JSON_COLUMNS:
        if isinstance(row.get(col), str):
            try:
                row[col] = json.loads(row[col])
            except json.JSONDecodeError as e:
                raise RecordError(where, col, f"not valid JSON ({e.msg})") from e
    return row


def record_id(rec: Mapping[str, Any], fallback: str) -> str:
    """A record's name for errors: its problem id, else ``fallback`` (e.g. "file:line")."""
    prob = rec.get("problem")
    if isinstance(prob, Mapping) and prob.get("id"):
        return str(prob["id"])
    return fallback


def all_verified(rec: Mapping[str, Any]) -> bool:
    """True when the record has verdicts and every one of them is ``correct``."""
    verdicts = rec.get("verdicts") or {}
    return bool(verdicts) and all(
        isinstance(v, Mapping) and v.get("status") == "correct" for v in verdicts.values())


def build_sft_dataset(
    records: Iterable[Mapping[str, Any]], tokenizer: Any, *, only_verified: bool = False,
    source: str = "data",
) -> Any:
    """A ``datasets.Dataset`` with ``input_ids`` and ``labels`` columns for TRL's SFTTrainer.

    TRL uses a given ``labels`` column as is (truncation to ``max_length`` and dropping fully
    masked rows are left to it).

    Args:
        records: Trajectory dicts (``messages``, ``spans``, ``verdicts``...) or bare
            ``{"messages": [...]}`` chats.
        tokenizer: fast tokenizer with a chat template.
        only_verified: keep only records whose verdicts are all ``correct``.
        source: name used in error messages.

    Raises:
        RecordError: a malformed record (named by problem id or position); nothing is written.
        ValueError: no record is left.
    """
    import datasets

    rows: dict[str, list[Any]] = {"input_ids": [], "labels": []}
    skipped = boundary = 0
    for i, rec in enumerate(records):
        if only_verified and not all_verified(rec):
            skipped += 1
            continue
        feats = build_sft_features(rec.get("messages"), rec.get("spans"), tokenizer,  # type: ignore[arg-type]
                                   where=record_id(rec, f"{source}[{i}]"))
        rows["input_ids"].append(feats.input_ids)
        rows["labels"].append(feats.labels)
        boundary += feats.boundary_tokens
    if not rows["input_ids"]:
        raise ValueError(f"{source}: no SFT records left ({skipped} without all-correct verdicts)")
    log.info("SFT data %s: %d records (%d skipped as unverified), %d boundary tokens masked",
             source, len(rows["input_ids"]), skipped, boundary)
    return datasets.Dataset.from_dict(rows)

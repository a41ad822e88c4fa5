"""Export: SFT-ready records as JSONL, Parquet and an HF ``datasets`` dataset.

Every export row is one verified record:

==============  =================================================================
``id``          content hash of the record (stable across runs and resumes)
``kind``        ``pot`` | ``tir`` | ``cot`` | ``formal``
``verified_by`` ``gold`` (graded against the known answer), ``self_consistency``
                (majority agreement, no known answer) or ``proof`` (Lean proof found)
``problem_id``  / ``source``: the source problem
``answer``      the verified final answer (informal) or None
``messages``    chat turns ``[{"role", "content"}]``; the last is the assistant turn
``spans``       the assistant turn split into ``{"kind": "model"|"tool", "text"}``;
                tool spans are interpreter output, masked out of SFT/GRPO losses
``problem``     the full source Problem
``verdicts``    verifier name -> ``{"status", "reason", "detail"}``
``provenance``  model, sampling, prompt hash, grader/prover versions, seed, ...
==============  =================================================================

In JSONL ``problem``, ``verdicts`` and ``provenance`` are JSON objects; in Parquet and in the HF
dataset (fixed Arrow schema) they are JSON-encoded strings (``json.loads`` them back).
Every file is written to a temporary path first and moved into place with ``os.replace``, so a
crash never leaves a half-written export.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verimath.records import Trajectory
from verimath.store import atomic_write_text

log = logging.getLogger(__name__)

_JSON_COLUMNS = ("problem", "verdicts", "provenance")


_TIMING_KEYS = frozenset({"elapsed_s", "wall_time_s", "cpu_time_s", "seconds"})


def scrub_timing(obj: Any) -> Any:
    """``obj`` without timing fields (``elapsed_s``, ``wall_time_s``, ...) at any depth.

    Exported records leave timings out so that two runs over the same data (or a resumed and an
    uninterrupted run) export identical bytes; timings stay in the stage files.
    """
    if isinstance(obj, dict):
        return {k: scrub_timing(v) for k, v in obj.items() if k not in _TIMING_KEYS}
    if isinstance(obj, list | tuple):
        return [scrub_timing(v) for v in obj]
    return obj


def export_row(trajectory: Trajectory, *, kind: str, verified_by: str, key: str,
               answer: str | None) -> dict[str, Any]:
    """One export row (nested JSON form) from a Trajectory; timing fields are dropped."""
    d = scrub_timing(trajectory.to_dict())
    return {
        "id": key,
        "kind": kind,
        "verified_by": verified_by,
        "problem_id": trajectory.problem.id,
        "source": trajectory.problem.source,
        "answer": answer,
        "messages": d["messages"],
        "spans": d["spans"],
        "problem": d["problem"],
        "verdicts": d["verdicts"],
        "provenance": d["provenance"],
    }


def arrow_schema() -> Any:
    """The fixed Arrow schema of the Parquet / HF export."""
    import pyarrow as pa

    return pa.schema([
        ("id", pa.string()), ("kind", pa.string()), ("verified_by", pa.string()),
        ("problem_id", pa.string()), ("source", pa.string()), ("answer", pa.string()),
        ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("spans", pa.list_(pa.struct([("kind", pa.string()), ("text", pa.string())]))),
        ("problem", pa.string()), ("verdicts", pa.string()), ("provenance", pa.string()),
    ])


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for k in _JSON_COLUMNS:
        out[k] = json.dumps(row[k], ensure_ascii=False, sort_keys=True, default=str)
    return out


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    """Rows as JSONL text (one object per line, keys in insertion order)."""
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Atomically write ``rows`` as JSONL."""
    atomic_write_text(path, jsonl_text(rows))


def arrow_table(rows: list[dict[str, Any]]) -> Any:
    """A ``pyarrow.Table`` of export rows with :func:`arrow_schema`."""
    import pyarrow as pa

    return pa.Table.from_pylist([_flat(r) for r in rows], schema=arrow_schema())


def write_parquet(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Atomically write export rows as Parquet."""
    import pyarrow.parquet as pq

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(arrow_table(rows), tmp)
        os.replace(tmp, p)
    finally:
        Path(tmp).unlink(missing_ok=True)


def hf_dataset(rows: list[dict[str, Any]]) -> Any:
    """A ``datasets.Dataset`` of export rows (fixed schema, works for zero rows)."""
    import datasets

    return datasets.Dataset(arrow_table(rows))


def save_dataset_atomic(dataset: Any, path: str | Path) -> None:
    """``dataset.save_to_disk`` into a temporary folder, then swap it into ``path``."""
    import datasets

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=p.parent, prefix=f".{p.name}.tmp-"))
    old = p.with_name(f".{p.name}.old")
    bars = datasets.is_progress_bar_enabled()
    try:
        datasets.disable_progress_bars()  # the datagen progress display is ours
        # an empty dataset needs an explicit shard, else load_from_disk cannot read it back
        dataset.save_to_disk(str(tmp), num_shards=1 if len(dataset) == 0 else None)
        if old.exists():
            shutil.rmtree(old)
        if p.exists():
            os.replace(p, old)
        os.replace(tmp, p)
    finally:
        if bars:
            datasets.enable_progress_bars()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class ExportPaths:
    """Where an export put its files (paths relative to the run folder where possible)."""

    files: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    pushed_to: str | None = None


def export_all(
    out_dir: str | Path, rows: list[dict[str, Any]], rejected: list[dict[str, Any]],
    side: dict[str, list[Any]], *, formats: tuple[str, ...] = ("jsonl", "parquet", "hf"),
    push_to_hub: str | None = None, private: bool = True,
    pairs: list[dict[str, Any]] | None = None,
) -> ExportPaths:
    """Write the verified rows, the rejected records and the side files.

    Args:
        out_dir: the run folder.
        rows: export rows (:func:`export_row`), in input order.
        rejected: ``{"stage", "reason", "unit", "record"}`` entries (timing fields are dropped
            from these and from the side files, as from the rows).
        side: extra record lists by name, e.g. ``review`` (judge disagreements) and ``open``
            (statements neither proved nor refuted); each becomes ``<name>.jsonl``.
        formats: any of ``jsonl``, ``parquet``, ``hf``, ``preference``.
        push_to_hub: a hub repo id to push the HF dataset to (needs network and a token);
            None pushes nothing.
        private: create the hub repo as private.
        pairs: preference pairs (:mod:`verimath.datagen.preference`), written to
            ``preference.jsonl`` when ``formats`` has ``preference`` (None: none were built).

    Returns:
        The written paths and record counts.

    Raises:
        ValueError: an unknown format.
    """
    unknown = set(formats) - {"jsonl", "parquet", "hf", "preference"}
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; use jsonl, parquet, hf, "
                         "preference")
    out = Path(out_dir)
    res = ExportPaths()
    res.counts["verified"] = len(rows)
    if "jsonl" in formats:
        write_jsonl(out / "data.jsonl", rows)
        res.files["jsonl"] = "data.jsonl"
    if "parquet" in formats:
        write_parquet(out / "data.parquet", rows)
        res.files["parquet"] = "data.parquet"
    ds = None
    if "hf" in formats or push_to_hub:
        ds = hf_dataset(rows)
    if "hf" in formats:
        save_dataset_atomic(ds, out / "hf_dataset")
        res.files["hf"] = "hf_dataset"
    if "preference" in formats:
        write_jsonl(out / "preference.jsonl", (scrub_timing(p) for p in pairs or []))
        res.files["preference"] = "preference.jsonl"
        res.counts["pairs"] = len(pairs or [])
    write_jsonl(out / "rejected.jsonl", (scrub_timing(r) for r in rejected))
    res.files["rejected"] = "rejected.jsonl"
    res.counts["rejected"] = len(rejected)
    for name, vals in sorted(side.items()):
        write_jsonl(out / f"{name}.jsonl", (scrub_timing(v) for v in vals))
        res.files[name] = f"{name}.jsonl"
        res.counts[name] = len(vals)
    if push_to_hub:
        log.info("pushing %d records to the hub as %s", len(rows), push_to_hub)
        ds.push_to_hub(push_to_hub, private=private)  # type: ignore[union-attr]
        res.pushed_to = push_to_hub
    return res

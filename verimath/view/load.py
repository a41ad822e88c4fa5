"""Read the run folders verimath writes into the compact payload a report embeds.

One loader per job kind, chosen from ``manifest.json``'s ``job`` (``eval``, ``prove``,
``datagen``, ``iterate``; a folder with ``rounds.json`` is an iterate run). Everything read is
data the jobs already wrote: ``records.jsonl`` (final records), ``retries.jsonl`` (records still
provisional after an infrastructure failure, shown and marked as such), ``summary.json``,
``manifest.json``, ``funnel.json``, ``rejected.jsonl``, ``data.jsonl``, ``rounds.json``.

Payload shape (JSON; short keys because a run of 5,000 problems x 8 attempts embeds 40,000
attempts): every chat message is stored once in ``M`` (``[role, content]``) and referred to by
index, so a few-shot prompt shared by every problem costs one copy. An attempt is
``{"s": status, "c": true | false | null (not judged), ...}``; see :func:`eval_attempt` and
:func:`prove_attempt` for the rest. Model text is embedded as data and rendered as text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from verimath.records import VerdictStatus

#: the record files of a run folder a loader reads, in the order they are read
RECORD_FILES = ("records.jsonl", "retries.jsonl")


class RunFolderError(ValueError):
    """A folder is not a verimath run folder, or one of its files is unreadable (names which)."""


def clean(x: Any) -> Any:
    """``x`` with NaN / infinity replaced by None (JSON has neither; JS would fail to parse)."""
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [clean(v) for v in x]
    return x


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file (NaN allowed, as Python writes it); None when the file is absent.

    Raises:
        RunFolderError: the file is not a JSON object (names the file).
    """
    if not path.exists():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from e
    if not isinstance(obj, dict):
        raise RunFolderError(f"{path}: expected a JSON object")
    return obj


def read_records(path: Path, damaged: list[str] | None = None) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file in order; [] when absent.

    A line that is not a JSON object (a write cut short by a kill, which the job store skips
    and redoes on resume) is left out and described in ``damaged`` ("FILE:LINE: why"), so the
    report can say so; with ``damaged`` None such a line raises.

    Raises:
        RunFolderError: a damaged line and no ``damaged`` list (names the file and line).
    """
    from verimath.store import read_jsonl

    if not path.exists():
        return []
    out = []
    for _line, rec in read_jsonl(path):
        if isinstance(rec, Exception):
            if damaged is None:
                raise RunFolderError(str(rec))
            damaged.append(str(rec))
            continue
        out.append(rec)
    return out


def job_records(run: Path, damaged: list[str] | None = None) -> list[dict[str, Any]]:
    """Final records of an eval / prove folder plus provisional ones (``"_provisional": True``).

    A problem appears once: its final record when there is one, else its latest try in
    ``retries.jsonl`` (an attempt an infrastructure failure left unjudged, awaiting a resume).
    Order: ``records.jsonl`` order, then provisional problems in first-seen order. Damaged
    lines are skipped and described in ``damaged`` (see :func:`read_records`).
    """
    final: dict[str, dict[str, Any]] = {}
    for rec in read_records(run / "records.jsonl", damaged):
        final[str(rec["id"])] = rec
    pending: dict[str, dict[str, Any]] = {}
    for rec in read_records(run / "retries.jsonl", damaged):
        key = str(rec.get("id"))
        if key not in final:
            pending[key] = {**rec, "_provisional": True}  # later tries replace earlier ones
    return [*final.values(), *pending.values()]


class Messages:
    """The message table ``M``: each distinct ``(role, content)`` stored once, by index."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []
        self._index: dict[tuple[str, str], int] = {}

    def ref(self, messages: list[dict[str, Any]] | None) -> list[int]:
        """Indices of ``messages`` (``[{"role", "content"}]``) in the table, adding new ones."""
        out = []
        for m in messages or []:
            key = (str(m.get("role", "")), str(m.get("content", "")))
            i = self._index.get(key)
            if i is None:
                i = self._index[key] = len(self.rows)
                self.rows.append(list(key))
            out.append(i)
        return out


def run_info(run: Path, manifest: dict[str, Any] | None) -> dict[str, Any]:
    """Provenance shown in a report's header: job, model, versions, isolation, git revision."""
    m = manifest or {}
    cfg = m.get("config") or {}
    keys = ("job", "model", "benchmark_source", "prompt_hash", "grader_version", "isolation",
            "seed", "sampling", "lean", "audit_version", "git_revision", "created_unix",
            "fingerprint", "n_bad_records", "n_duplicate_ids", "damaged_record_lines", "shard")
    info = {k: m[k] for k in keys if m.get(k) not in (None, [], {})}
    info["path"] = str(run.resolve())
    info["name"] = run.resolve().name
    for k in ("benchmark", "split", "mode", "n", "k", "temperature", "max_tokens"):
        if cfg.get(k) is not None:
            info[k] = cfg[k]
    if isinstance(cfg.get("rollout"), dict):
        info["strategy"] = cfg["rollout"].get("strategy")
    info["packages"] = {k: v for k, v in (m.get("packages") or {}).items() if v}
    return info


def detect_kind(run: Path) -> str:
    """``eval`` | ``prove`` | ``datagen`` | ``iterate`` of a run folder.

    Raises:
        RunFolderError: not a folder, or none of the files a verimath job writes is there.
    """
    if not run.is_dir():
        raise RunFolderError(f"{run}: not a folder")
    manifest = read_json(run / "manifest.json") or {}
    job = manifest.get("job")
    if job in ("eval", "prove", "datagen", "iterate"):
        return str(job)
    if (run / "rounds.json").exists():
        return "iterate"
    if (run / "funnel.json").exists():
        return "datagen"
    if (run / "records.jsonl").exists() or (run / "retries.jsonl").exists():
        summary = read_json(run / "summary.json") or {}
        return "prove" if "n_solved" in summary else "eval"
    raise RunFolderError(f"{run}: not a verimath run folder (no manifest.json, records.jsonl, "
                         "funnel.json or rounds.json); pass the --out folder of eval, prove, "
                         "datagen or iterate")


def eval_attempt(a: dict[str, Any]) -> dict[str, Any]:
    """One eval attempt, compact.

    Returns:
        ``{"s": status, "c": correct, "a": answer, "f": finish_reason, "k": completion tokens,
        "t": text | "sp": [[kind, text], ...], "tc": [{"st", "o", "w", "code"?}], "r": reason,
        "d": grader detail}``. ``s`` is the verdict status, or ``generation_error`` when the
        rollout itself failed; ``sp`` replaces ``t`` when the text has tool spans.
    """
    v = a.get("verdict") or {}
    status = "generation_error" if a.get("finish_reason") == "error" else str(
        v.get("status") or "unknown")
    text = str(a.get("text") or "")
    out: dict[str, Any] = {"s": status, "c": a.get("correct"), "a": a.get("answer"),
                           "f": a.get("finish_reason"), "k": a.get("completion_tokens")}
    spans = a.get("spans") or []
    if any(s.get("kind") != "model" for s in spans):
        out["sp"] = [[s.get("kind"), s.get("text", "")] for s in spans]
    else:
        out["t"] = text
    calls = []
    for t in a.get("tool_calls") or []:
        call = {"st": t.get("status"), "o": t.get("output"), "w": t.get("wall_time_s")}
        if str(t.get("code", "")).strip() not in text:  # shown in the text already otherwise
            call["code"] = t.get("code")
        calls.append(call)
    if calls:
        out["tc"] = calls
    if v.get("reason"):
        out["r"] = v["reason"]
    if v.get("detail"):
        out["d"] = v["detail"]
    return out


def _round(proof: Any, verdict: dict[str, Any]) -> dict[str, Any]:
    """One checked proof, compact: ``{"p", "s", "r", "d", "c"}``.

    ``c`` is True / False when the verdict is judged (:func:`verimath.records.judged`), None when
    it could not be judged (or there is none).
    """
    status = verdict.get("status")
    try:
        judged = VerdictStatus(str(status)).judged
    except ValueError:  # no verdict, or one of another version: shown, never scored
        judged = False
    return {"p": proof, "s": status, "r": verdict.get("reason"), "d": verdict.get("detail"),
            "c": status == "correct" if judged else None}


def prove_attempt(a: dict[str, Any]) -> dict[str, Any]:
    """One prove attempt, compact.

    Returns:
        ``{"s": status, "c": correct, "rd": [{"p": proof, "s", "r", "d", "c"}] (whole mode: each
        correction round), "se": search result (bfs mode)}``. ``s`` is the last verdict's status;
        a search that found no proof has ``search_<status>``.
    """
    rounds = [_round(rd.get("proof"), rd.get("verdict") or {}) for rd in a.get("rounds") or []]
    out: dict[str, Any] = {"c": a.get("correct"), "rd": rounds}
    if a.get("search") is not None:
        out["se"] = a["search"]
        if a.get("verdict"):
            out["rd"] = [_round(a["search"].get("proof"), a["verdict"])]
    if out["rd"] and out["rd"][-1]["s"]:
        out["s"] = str(out["rd"][-1]["s"])
    elif a.get("search") is not None:
        out["s"] = f"search_{a['search'].get('status')}"
    else:
        out["s"] = "unknown"
    return out


def load_eval(run: Path, msgs: Messages) -> dict[str, Any]:
    """The payload of an eval folder: summary, run info and one entry per problem.

    A problem is ``{"id", "q": question, "g": gold, "m": prompt message indices, "sec",
    "pv": provisional, "at": [eval_attempt, ...]}``.
    """
    manifest = read_json(run / "manifest.json")
    problems: list[dict[str, Any]] = []
    damaged: list[str] = []
    for rec in job_records(run, damaged):
        problems.append({
            "id": str(rec["id"]), "q": rec.get("question"), "g": rec.get("gold"),
            "m": msgs.ref(rec.get("prompt")), "sec": rec.get("seconds"),
            "pv": bool(rec.get("_provisional")),
            "at": [eval_attempt(a) for a in rec.get("attempts") or []],
        })
    return {"kind": "eval", "run": run_info(run, manifest), "damaged": damaged,
            "summary": read_json(run / "summary.json"), "problems": problems}


def load_prove(run: Path, msgs: Messages) -> dict[str, Any]:
    """The payload of a prove folder (same problem shape as eval; ``q`` is the statement)."""
    manifest = read_json(run / "manifest.json")
    problems: list[dict[str, Any]] = []
    damaged: list[str] = []
    for rec in job_records(run, damaged):
        problems.append({
            "id": str(rec["id"]), "q": rec.get("formal_statement"), "g": None,
            "split": rec.get("split"), "mode": rec.get("mode"), "sec": rec.get("seconds"),
            "pv": bool(rec.get("_provisional")),
            "at": [prove_attempt(a) for a in rec.get("attempts") or []],
        })
    return {"kind": "prove", "run": run_info(run, manifest), "damaged": damaged,
            "summary": read_json(run / "summary.json"), "problems": problems}


def _reason_key(reason: str) -> str:
    """The kind of a drop reason: its text before the first ``:`` (``no_solution: ...``)."""
    return reason.split(":", 1)[0].strip() or "unspecified"


def load_datagen(run: Path, msgs: Messages, *, examples_per_reason: int = 5) -> dict[str, Any]:
    """The payload of a datagen folder: funnel, drop reasons with examples, exported rows.

    Returns:
        ``{"kind": "datagen", "run", "funnel": funnel.json, "drops": [{"stage", "reason",
        "n", "ex": [rejected record, ...] (at most ``examples_per_reason``)}], "rows":
        [{"id", "kind", "vb": verified_by, "pid": problem id, "a": answer, "m": message
        indices, "v": verdicts, "pr": provenance}]}``.
    """
    manifest = read_json(run / "manifest.json")
    drops: dict[tuple[str, str], dict[str, Any]] = {}
    damaged: list[str] = []
    for rej in read_records(run / "rejected.jsonl", damaged):
        key = (str(rej.get("stage")), _reason_key(str(rej.get("reason") or "")))
        d = drops.setdefault(key, {"stage": key[0], "reason": key[1], "n": 0, "ex": []})
        d["n"] += 1
        if len(d["ex"]) < examples_per_reason:
            d["ex"].append(rej)
    rows = []
    for row in read_records(run / "data.jsonl", damaged):
        rows.append({"id": row.get("id"), "kind": row.get("kind"), "vb": row.get("verified_by"),
                     "pid": row.get("problem_id"), "a": row.get("answer"),
                     "m": msgs.ref(row.get("messages")), "v": row.get("verdicts"),
                     "pr": row.get("provenance")})
    return {"kind": "datagen", "run": run_info(run, manifest), "damaged": damaged,
            "funnel": read_json(run / "funnel.json"), "drops": list(drops.values()),
            "rows": rows}


def iterate_links(run: Path) -> dict[str, Any]:
    """Sub-run folders of an iterate run: ``{"seed": path?, "rounds": {r: {"eval", "data"}}}``.

    Paths are relative to ``run`` (the report links to each folder's ``report.html``); a
    folder that does not exist is left out.
    """
    links: dict[str, Any] = {"rounds": {}}
    if (run / "seed" / "funnel.json").exists():
        links["seed"] = "seed"
    for d in sorted(run.glob("round_*"), key=lambda p: (len(p.name), p.name)):
        r = d.name.removeprefix("round_")
        sub = {}
        if (d / "eval" / "summary.json").exists():
            sub["eval"] = f"{d.name}/eval"
        if (d / "data" / "generated" / "funnel.json").exists():
            sub["data"] = f"{d.name}/data/generated"
        if sub:
            links["rounds"][r] = sub
    return links


def load_iterate(run: Path, msgs: Messages) -> dict[str, Any]:
    """The payload of an iterate folder: ``rounds.json`` rows and the sub-run links."""
    del msgs  # no messages in an iterate report; the signature matches the other loaders
    manifest = read_json(run / "manifest.json")
    rounds = (read_json(run / "rounds.json") or {}).get("rounds") or []
    return {"kind": "iterate", "run": run_info(run, manifest), "rounds": rounds,
            "links": iterate_links(run)}


LOADERS = {"eval": load_eval, "prove": load_prove, "datagen": load_datagen,
           "iterate": load_iterate}

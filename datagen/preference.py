"""Preference pairs from a datagen run: a verified trajectory vs a judged-wrong one.

The export behind ``export.formats: [..., preference]`` (file ``preference.jsonl``): DPO data
(Rafailov et al. 2023, "Direct Preference Optimization") as built by iterative reasoning
preference optimization (Pang et al. 2024, "Iterative Reasoning Preference Optimization"):
for each problem, *chosen* is a verified-correct trajectory and *rejected* is one of the model's
own samples for the same prompt that the grader judged wrong.

Rules (each counted in the ``preference`` funnel row):

* chosen: a row of this run verified against the known answer (``verified_by: gold``) -- the
  model's own sample, ``chosen_source: own`` -- or, with ``export.preference.reference``, a
  reference / synthesized row of another datagen run for the same problem id verified against
  the known answer (``gold``, or ``execution`` in reference mode),
  ``chosen_source: reference``. Self-consistency rows are never chosen (the majority is not a
  judged answer), nor rows judged by a test double (``checker.test_double`` / ``test_double``
  in a verdict's detail).
* rejected: an attempt of this run rejected as :data:`JUDGED_WRONG` (``wrong``: the grader said
  WRONG; ``no_answer``: the completion finished and holds no answer; ``unverifiable``: the
  answer could not be evaluated within the limits). Never a could-not-judge sample
  (``sandbox_error``, ``grader_timeout``, ``grader_error``, ``grader_unjudged``), never one cut
  short (``truncated``, ``tool_limit``: its answer may be right), never a minority/duplicate/capped
  sample, never one whose verdict a test double gave.
* never a pair whose two answers the grader calls equivalent: every (chosen answer, rejected
  answer) is graded again with extraction off; CORRECT drops the pair (``equivalent_answers``),
  TIMEOUT / ERROR drop it too (``equivalence_unjudged``: could not judge, never paired).
* dedup: trajectories with the same normalized text are one candidate (per side, per problem).
* policy: ``max_per_problem`` pairs at most (None: every chosen x rejected), negatives in
  ``order``: ``hardest`` (a wrong answer before no answer, then the wrong answer the model gave
  most often -- its most confident mistake -- then sample order) or ``random`` (seeded); each
  negative is paired once before any is paired twice, chosen trajectories taken in turn.
* decontamination: pairs exist only for problems of this run, which passed the run's
  dedup and decontamination stages; a reference row never brings in a problem of its own.

A pair row (TRL's conversational preference format plus our columns): ``prompt`` (system + user
messages the model was sampled with), ``chosen`` / ``rejected`` (one assistant message each),
``chosen_spans`` / ``rejected_spans`` (model / tool spans of the assistant text), ``id``,
``problem_id``, ``source``, ``gold``, ``chosen_answer``, ``rejected_answer``,
``chosen_source``, ``rejected_reason`` and ``provenance`` (``chosen``: row id, verified_by,
sample index, model; ``rejected``: attempt key, sample index, verdict).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verimath.datagen.dedup import normalize_text
from verimath.records import VerdictStatus, content_hash, judged

#: rejection reasons of a *judged* wrong sample (the only ones a pair's rejected side may have);
#: ``unverifiable`` is a judged verdict: the answer could not be evaluated within the limits.
JUDGED_WRONG = frozenset({"wrong", "no_answer", "unverifiable"})
#: verdict statuses of a judged-wrong sample's grader verdict (when the record stores one): every
#: judged status but CORRECT (:func:`verimath.records.judged`)
_WRONG_STATUSES = frozenset(str(s) for s in VerdictStatus
                            if judged(s) and s is not VerdictStatus.CORRECT)
#: ``verified_by`` of reference rows that may be chosen: graded against the known answer, or
#: (reference mode, :mod:`verimath.datagen.synth`) a program whose output matched it
REFERENCE_VERIFIED = frozenset({"gold", "execution"})
#: equivalence verdicts that say nothing about equivalence (could not judge); a BAD_GOLD here is
#: a chosen answer that does not parse as a reference: the two differ (as in the solve vote)
_UNJUDGED_STATUSES = frozenset(str(s) for s in VerdictStatus
                               if not judged(s) and s is not VerdictStatus.BAD_GOLD)
_ORDERS = ("hardest", "random")


@dataclass(frozen=True)
class PreferenceConfig:
    """How preference pairs are built (``export.preference``).

    Attributes:
        max_per_problem: at most this many pairs per problem; None: every chosen x rejected.
        order: which negatives come first: ``hardest`` or ``random`` (see the module docstring).
        reference: a datagen ``data.jsonl`` whose gold-verified rows may be chosen (reference /
            synthesized trajectories, marked ``chosen_source: reference``); None: own rows only.
        prefer: ``own`` (own verified rows first, reference rows when a problem has none) or
            ``reference`` (reference rows first); either way both kinds are candidates.
        seed: RNG seed of ``order: random``.
    """

    max_per_problem: int | None = 4
    order: str = "hardest"
    reference: str | None = None
    prefer: str = "own"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_per_problem is not None and self.max_per_problem < 1:
            raise ValueError("export.preference.max_per_problem must be >= 1 (or null: all)")
        if self.order not in _ORDERS:
            raise ValueError(f"export.preference.order must be one of {_ORDERS}")
        if self.prefer not in ("own", "reference"):
            raise ValueError("export.preference.prefer must be own or reference")


@dataclass
class PreferenceResult:
    """What :func:`build_pairs` made.

    Attributes:
        pairs: pair rows (module docstring), by problem in input order.
        problems: problems considered; ``with_pairs``: problems that got at least one pair.
        no_pairs: reason -> problems without a pair (``no_verified_chosen``,
            ``no_judged_wrong``, ``only_equivalent``, ``only_unjudged``).
        dropped: reason -> candidate pairs or samples left out (``equivalent_answers``,
            ``equivalence_unjudged``, ``duplicate_chosen``, ``duplicate_rejected``,
            ``over_cap``, ``not_judged_wrong:<reason>``, ``test_double``).
    """

    pairs: list[dict[str, Any]] = field(default_factory=list)
    problems: int = 0
    with_pairs: int = 0
    no_pairs: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)


def load_reference(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of a datagen ``data.jsonl`` verified against a known answer, by problem id.

    ``verified_by`` ``gold`` or ``execution`` (:data:`REFERENCE_VERIFIED`); self-consistency
    rows and rows judged by a test double are left out.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line that is not a JSON object with ``problem_id`` and ``messages``
            (the message names file and line).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON ({e})") from e
            if not isinstance(row, dict) or "problem_id" not in row or "messages" not in row:
                raise ValueError(f"{path}:{n}: expected a datagen export row with "
                                 "'problem_id' and 'messages'")
            if row.get("verified_by") in REFERENCE_VERIFIED and not judged_by_double(row):
                out.setdefault(str(row["problem_id"]), []).append(row)
    return out


def judged_by_double(row: dict[str, Any]) -> bool:
    """Whether a test double judged ``row`` (an export row or a rejected attempt's verdict)."""
    prov = row.get("provenance") or {}
    if prov.get("test_double") or (prov.get("checker") or {}).get("test_double"):
        return True
    verdicts = list((row.get("verdicts") or {}).values())
    if row.get("verdict"):
        verdicts.append(row["verdict"])
    for v in verdicts:
        detail = (v or {}).get("detail") or {}
        if detail.get("test_double") or (detail.get("checker") or {}).get("test_double"):
            return True
    return False


def _chosen_answer(row: dict[str, Any]) -> str | None:
    for v in (row.get("verdicts") or {}).values():
        pred = ((v or {}).get("detail") or {}).get("pred")
        if pred is not None:
            return str(pred)
    return row.get("answer")


def _hardest_first(rejected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    freq = Counter(r["attempt"].get("answer") for r in rejected if r["reason"] == "wrong")
    return sorted(rejected, key=lambda r: (
        r["reason"] != "wrong", -freq.get(r["attempt"].get("answer"), 0), r["sample_index"]))


def _candidates(chosen: list[dict[str, Any]], rejected: list[dict[str, Any]],
                ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every chosen x rejected, each negative paired once before any is paired twice."""
    return [(chosen[(i + t) % len(chosen)], r)
            for t in range(len(chosen)) for i, r in enumerate(rejected)]


def _dedup(items: list[dict[str, Any]], text: Callable[[dict[str, Any]], str],
           res: PreferenceResult, why: str) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for it in items:
        norm = normalize_text(text(it))
        if norm in seen:
            res.dropped[why] += 1
            continue
        seen.add(norm)
        out.append(it)
    return out


def _rejected_ok(entry: dict[str, Any], res: PreferenceResult) -> bool:
    rec = entry.get("record") or {}
    reason = entry.get("reason", "")
    if reason not in JUDGED_WRONG:
        res.dropped[f"not_judged_wrong:{reason}"] += 1
        return False
    if judged_by_double(rec):
        res.dropped["test_double"] += 1
        return False
    status = ((rec.get("verdict") or {}).get("status"))
    if status is not None and status not in _WRONG_STATUSES:  # a stale or edited reason
        res.dropped[f"not_judged_wrong:verdict_{status}"] += 1
        return False
    return True


def build_pairs(
    problem_ids: list[str], rows: list[dict[str, Any]], rejected: list[dict[str, Any]],
    grader: Any, cfg: PreferenceConfig, *,
    prompt_of: Callable[[str], list[dict[str, str]] | None] | None = None,
    reference: dict[str, list[dict[str, Any]]] | None = None,
) -> PreferenceResult:
    """Preference pairs for ``problem_ids`` (module docstring for every rule).

    Args:
        problem_ids: the problems of this run (after dedup / decontamination / sharding), in
            order; only these get pairs.
        rows: this run's export rows (:func:`verimath.datagen.export.export_row`).
        rejected: this run's rejection entries (``{"stage", "reason", "unit", "record"}``);
            attempt entries (``unit: attempts``) are the negatives.
        grader: a :class:`verimath.reasoning.grading.Grader` (or anything with its
            ``grade_many(pairs, extract=False)``) for the equivalence check.
        cfg: the pairing policy.
        prompt_of: problem id -> the prompt messages the model was sampled with (system +
            user); None or a None answer: the chosen own row's prompt.
        reference: :func:`load_reference` output (reference / synthesized chosen rows).

    Returns:
        :class:`PreferenceResult`.
    """
    res = PreferenceResult(problems=len(problem_ids))
    own: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("verified_by") == "gold" and r.get("kind") != "formal":
            if judged_by_double(r):
                res.dropped["test_double"] += 1
            else:
                own.setdefault(str(r["problem_id"]), []).append(r)
    neg: dict[str, list[dict[str, Any]]] = {}
    for e in rejected:
        rec = e.get("record") or {}
        if e.get("unit") == "attempts" and "attempt" in rec and _rejected_ok(e, res):
            neg.setdefault(str(rec["problem_id"]), []).append(
                {**rec, "reason": e["reason"]})
    plans = []
    for pid in problem_ids:
        mine = [(r, "own") for r in own.get(pid, [])]
        ref = [(r, "reference") for r in (reference or {}).get(pid, [])]
        chosen = mine + ref if cfg.prefer == "own" else ref + mine
        chosen = _dedup([{"row": r, "from": s} for r, s in chosen],
                        lambda c: c["row"]["messages"][-1]["content"], res, "duplicate_chosen")
        wrong = _dedup(neg.get(pid, []), lambda r: r["attempt"]["text"], res,
                       "duplicate_rejected")
        if not chosen:
            res.no_pairs["no_verified_chosen"] += 1
            continue
        if not wrong:
            res.no_pairs["no_judged_wrong"] += 1
            continue
        if cfg.order == "hardest":
            wrong = _hardest_first(wrong)
        else:
            random.Random(f"{cfg.seed}:{pid}").shuffle(wrong)
        plans.append((pid, _candidates(chosen, wrong)))
    verdicts = _equivalence(grader, plans)
    for pid, cands in plans:
        _pick(pid, cands, verdicts, cfg, res, prompt_of)
    return res


def _equivalence(grader: Any, plans: list[tuple[str, list[Any]]]) -> dict[tuple[str, str], str]:
    """Grader status of every (chosen answer, rejected answer) that has both answers."""
    todo = list(dict.fromkeys(
        (a, b) for _, cands in plans for c, r in cands
        if (a := _chosen_answer(c["row"])) is not None
        and (b := r["attempt"].get("answer")) is not None))
    if not todo:
        return {}
    got = grader.grade_many(todo, extract=False)
    return {pr: str(v.status) for pr, v in zip(todo, got, strict=True)}


def _pick(pid: str, cands: list[tuple[dict[str, Any], dict[str, Any]]],
          verdicts: dict[tuple[str, str], str], cfg: PreferenceConfig, res: PreferenceResult,
          prompt_of: Callable[[str], list[dict[str, str]] | None] | None) -> None:
    kept = 0
    why: Counter[str] = Counter()
    for c, r in cands:
        a, b = _chosen_answer(c["row"]), r["attempt"].get("answer")
        status = verdicts.get((a, b)) if a is not None and b is not None else None
        if status == "correct":
            why["equivalent_answers"] += 1
            continue
        if status in _UNJUDGED_STATUSES:
            why["equivalence_unjudged"] += 1
            continue
        if cfg.max_per_problem is not None and kept >= cfg.max_per_problem:
            why["over_cap"] += 1
            continue
        res.pairs.append(pair_row(pid, c["row"], c["from"], r, prompt_of))
        kept += 1
    res.dropped.update(why)
    if kept:
        res.with_pairs += 1
    elif why["equivalence_unjudged"] and not why["equivalent_answers"]:
        res.no_pairs["only_unjudged"] += 1
    else:
        res.no_pairs["only_equivalent"] += 1


def pair_row(pid: str, chosen: dict[str, Any], chosen_source: str, rej: dict[str, Any],
             prompt_of: Callable[[str], list[dict[str, str]] | None] | None = None,
             ) -> dict[str, Any]:
    """One pair row (module docstring) from a chosen export row and a rejected attempt."""
    prompt = (prompt_of(pid) if prompt_of else None) or \
        [m for m in chosen["messages"][:-1] if m["role"] != "assistant"]
    att = rej["attempt"]
    cprov = chosen.get("provenance") or {}
    return {
        "id": content_hash(pid, chosen["id"], rej["key"]),
        "problem_id": pid,
        "source": chosen.get("source"),
        "prompt": [dict(m) for m in prompt],
        "chosen": [{"role": "assistant", "content": chosen["messages"][-1]["content"]}],
        "rejected": [{"role": "assistant", "content": att["text"]}],
        "chosen_spans": chosen.get("spans") or [],
        "rejected_spans": att.get("spans") or [],
        "gold": (chosen.get("problem") or {}).get("answer", chosen.get("answer")),
        "chosen_answer": _chosen_answer(chosen),
        "rejected_answer": att.get("answer"),
        "chosen_source": chosen_source,
        "rejected_reason": rej["reason"],
        "provenance": {
            "chosen": {"id": chosen["id"], "kind": chosen.get("kind"),
                       "verified_by": chosen.get("verified_by"),
                       "sample_index": cprov.get("sample_index"), "model": cprov.get("model"),
                       "backend": cprov.get("backend")},
            "rejected": {"key": rej["key"], "sample_index": rej.get("sample_index"),
                         "finish_reason": att.get("finish_reason"),
                         "verdict": rej.get("verdict")},
        },
    }


def funnel_counts(res: PreferenceResult) -> Any:
    """The ``preference`` funnel row: problems in, problems with pairs, pairs out, why not."""
    from verimath.datagen.funnel import StageCounts

    return StageCounts("preference", "problems", res.problems, res.with_pairs,
                       dict(sorted(res.no_pairs.items())), "pairs", len(res.pairs),
                       dict(sorted(res.dropped.items())), "candidates")


def run_preference(cfg: Any, grader: Any, problems: list[Any], template: Any,
                   rows: list[dict[str, Any]], rejected: list[dict[str, Any]],
                   ) -> PreferenceResult:
    """The ``preference`` export of a datagen run (called by the pipeline after solving).

    Args:
        cfg: the run's ``DatagenConfig`` (``export.preference``, ``grader``).
        grader: the solve stage's grader, or None to start one from ``cfg.grader`` (closed
            here).
        problems: the run's problems (after dedup, decontamination and sharding).
        template: the solve stage's prompt template (the prompt of every pair).
        rows: the run's export rows.
        rejected: the run's rejection entries.

    Raises:
        FileNotFoundError / ValueError: ``export.preference.reference`` is missing or malformed.
    """
    pc = cfg.export.preference
    reference = load_reference(pc.reference) if pc.reference else None
    by_id = {p.id: p for p in problems}

    def prompt_of(pid: str) -> list[dict[str, str]] | None:
        p = by_id.get(pid)
        if p is None:
            return None
        msgs = template.messages(p)  # few-shot turns are scaffolding: system + question
        return [m for m in msgs if m["role"] == "system"][:1] + [msgs[-1]]

    owned = None
    if grader is None:
        from verimath.reasoning.service.factory import make_grader

        grader = owned = make_grader(cfg.grader)
    try:
        return build_pairs([p.id for p in problems], rows, rejected, grader, pc,
                           prompt_of=prompt_of, reference=reference)
    finally:
        if owned is not None:
            owned.close()

"""``verimath datagen``: the whole loop, from problem files to verified SFT data.

Stages (each resumable, each counted in the funnel):

1. ``load`` problems (benchmark ids, JSONL, Parquet, hub ids); bad records are reported with
   line and field and counted, never fatal;
2. ``dedup`` (normalized-text hash) and ``decontaminate`` (word n-gram overlap with the
   configured benchmark test sets);
3. informal mode: ``solve`` (N PoT/TIR rollouts, graded against the known answer or kept by
   self-consistency);
4. reference mode (no model, :mod:`verimath.datagen.synth`): ``synthesize`` (programs from annotated
   reference solutions, verified by execution) -> ``augment`` (numeric variants, backward
   questions, verified by execution) -> ``dedup_augmented`` -> ``decontaminate_augmented``;
5. formal mode: ``autoformalize`` -> ``compile`` (statement elaborates with ``sorry``) ->
   ``backtranslate`` -> ``judge`` (disagreements go to ``review.jsonl``) -> ``prove``
   (statement and negation; false formalizations dropped, unproved ones kept in ``open.jsonl``);
6. ``export``: ``data.jsonl``, ``data.parquet``, ``hf_dataset/``, ``rejected.jsonl``, the side
   files, ``funnel.json``, ``funnel.png`` and ``manifest.json``.

Output folder layout (``cfg.out``)::

    stages/<stage>.jsonl      append-only per-stage results (resume state), named by stage
    stages/<stage>.settings.json  the settings the stage's results depend on (resume check)
    data.jsonl / data.parquet / hf_dataset/   verified records (verimath.datagen.export)
    rejected.jsonl            everything dropped, with stage and reason
    review.jsonl / open.jsonl judge disagreements / statements neither proved nor refuted
    funnel.json / funnel.png  counts per stage (+ timings in funnel.json)
    manifest.json             versions, config, model, prompt hashes, grader / prover versions
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verimath.datagen.config import DatagenConfig, config_dict
from verimath.datagen.funnel import Funnel, StageCounts
from verimath.datagen.runner import Item, Progress, StageResult, StageRunner
from verimath.datagen.stages import DecontamStage, DedupStage, as_items
from verimath.records import Problem

log = logging.getLogger(__name__)


@dataclass
class DatagenReport:
    """What :func:`main` returns.

    Attributes:
        out: the run folder.
        funnel: per-stage counts.
        counts: ``verified``, ``rejected`` and side-file record counts.
        timing: seconds by phase (``total``, ``generate`` = model time, ``sandbox``, ``verify``
            = grading/checking, ``wait_verify`` = generation blocked on verification, ...).
        files: export file names relative to ``out``.
    """

    out: Path
    funnel: Funnel
    counts: dict[str, int] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class Components:
    """Externally built components; whatever is None is built from the config when needed.

    Tests pass scripted doubles here; the stage code cannot tell them from the real ones.
    """

    backend: Any = None
    judge_backend: Any = None
    sandbox: Any = None
    grader: Any = None
    checker: Any = None
    prover: Any = None
    replay_only: bool = False


def load_stage(cfg: DatagenConfig) -> tuple[list[Problem], list[dict[str, Any]], StageCounts]:
    """Load every input; returns usable problems, rejection entries and the load counts."""
    from verimath.datasets import load_problems
    from verimath.layouts import FieldMap

    problems: list[Problem] = []
    rejected: list[dict[str, Any]] = []
    reasons: Counter[str] = Counter()
    for spec in cfg.inputs:
        res = load_problems(spec, split=cfg.split, limit=cfg.limit,
                            fields=FieldMap(cfg.question_field, cfg.answer_field, cfg.id_field),
                            allow_missing_gold=True)  # gold-less problems: self-consistency
        for e in res.errors:
            log.warning("skipping bad record: %s", e)
            rejected.append({"stage": "load", "reason": f"bad_record: {e}", "unit": "records",
                             "record": {"where": e.where, "field": e.field_name,
                                        "error": e.problem}})
            reasons["bad_record"] += 1
        for p in res.problems:
            why = _unusable(cfg, p)
            if why:
                rejected.append({"stage": "load", "reason": why, "unit": "records",
                                 "record": {"problem": p.to_dict()}})
                reasons[why.split(":")[0]] += 1
            else:
                problems.append(p)
    entered = len(problems) + sum(reasons.values())
    counts = StageCounts("load", "records", entered, len(problems), dict(reasons), "problems",
                         len(problems))
    return problems, rejected, counts


def _unusable(cfg: DatagenConfig, p: Problem) -> str | None:
    if cfg.mode in ("informal", "reference") and not p.informal.strip():
        return "no_informal_statement"
    if cfg.mode != "informal" and not p.informal.strip() and not (
        cfg.formal.use_given_statement and p.formal_statement
    ):
        return "no_informal_statement"
    return None


def main(cfg: DatagenConfig, *, components: Components | None = None,
         progress: Progress | None = None) -> DatagenReport:
    """Run the datagen loop into ``cfg.out`` (resuming whatever is already there).

    Args:
        cfg: the run's settings.
        components: prebuilt backend / sandbox / grader / prover objects (tests, or callers
            that keep a model loaded); missing ones are built from ``cfg`` when first needed
            and closed at the end.
        progress: per-stage progress display; None shows nothing.

    Returns:
        DatagenReport (also written as ``funnel.json``).

    Raises:
        verimath.prover.types.LeanUnavailable: a formal mode with the ``repl`` prover (the default)
            and no usable Lean; raised before anything runs, naming ``verimath doctor``.
        ScriptedExportRefused: rows verified by a test double and no ``export.allow_scripted``.
        verimath.jobs.SettingsMismatch: a stage's stored settings differ (keys named).
        FileNotFoundError: an input or a decontamination benchmark cannot be found.
        KeyboardInterrupt: passed on after closing everything; what was stored is kept and a
            re-run with the same ``out`` continues from there.
    """
    from verimath.manifest import build_manifest
    from verimath.store import atomic_write_json

    t_start = time.perf_counter()
    comps = components or Components()
    if not comps.replay_only:
        _preflight(cfg, comps)
    if cfg.torch_threads:
        import torch

        torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    funnel = Funnel()
    from verimath.datagen.config import stage_settings

    runner = StageRunner(out, funnel, progress, max_inflight=cfg.max_inflight,
                         retries=cfg.infra_retries, replay_only=comps.replay_only,
                         verifier_settings=stage_settings(cfg, ("sandbox", "grader")))
    problems, rejected, load_counts = load_stage(cfg)
    funnel.add(load_counts)
    items = as_items(problems)
    log.info("%d problems loaded (%d records rejected)", len(items), len(rejected))

    def run(stage: Any, its: list[Item]) -> list[Item]:
        res: StageResult = runner.run(stage, its)
        rejected.extend({"stage": stage.name, **r} for r in res.rejected)
        for k, v in res.side.items():
            side.setdefault(k, []).extend(v)
        return res.kept

    side: dict[str, list[Any]] = {}
    if cfg.dedup:
        items = run(DedupStage(), items)
    if cfg.decontam.enabled and cfg.decontam.benchmarks:
        d = cfg.decontam
        items = run(DecontamStage(d.benchmarks, d.ngram, d.min_overlap), items)
    from verimath.jobs import select_shard, settings_of, shard_manifest

    mine = select_shard([it["key"] for it in items], cfg.shard)
    shard_info = shard_manifest(cfg.shard, [it["key"] for it in items], mine)
    items = [items[i] for i in mine]
    rows: list[dict[str, Any]] = []
    owned: list[Any] = []
    extra_manifest: dict[str, Any] = {}
    pairs = None
    try:
        if cfg.mode in ("informal", "both"):
            from verimath.datagen.solve import SolveStage

            solve = SolveStage(cfg, comps)
            owned.append(solve)
            rows.extend(run(solve, items))
            extra_manifest.update(solve.manifest_extra())
            if "preference" in cfg.export.formats:
                pairs = _preference(cfg, solve, items, rows, rejected, funnel)
        if cfg.mode in ("formal", "both"):
            from verimath.datagen.formal import formal_stages

            stages = formal_stages(cfg, comps)
            owned.extend(stages)
            cur = items
            for st in stages:
                cur = run(st, cur)
            rows.extend(cur)
            side.setdefault("review", [])
            side.setdefault("open", [])
            for st in stages:
                extra_manifest.update(getattr(st, "manifest_extra", dict)())
        if cfg.mode == "reference":  # reference-guided synthesis + verified augmentation
            from verimath.datagen.synth import reference_rows

            rows.extend(reference_rows(cfg, comps, items, run, owned, extra_manifest))
    finally:
        for o in owned:
            close = getattr(o, "close", None)
            if close is not None:
                close()
    if not cfg.export.rejected_attempts:
        rejected = [r for r in rejected if r.get("unit") not in ("attempts", "proofs")]
    from verimath.datagen.export import export_all

    _refuse_doubles(cfg, rows)
    t = time.perf_counter()
    paths = export_all(out, rows, rejected, side, formats=cfg.export.formats,
                       push_to_hub=cfg.export.push_to_hub, private=cfg.export.private,
                       pairs=pairs)
    runner.timer.add("export", time.perf_counter() - t)
    funnel.add(StageCounts("export", "records", len(rows), len(rows), {}, "records", len(rows)))
    timing = _timing(runner, owned, time.perf_counter() - t_start)
    funnel.write_json(out / "funnel.json", counts=paths.counts, timing=timing,
                      files=paths.files)
    funnel.write_png(out / "funnel.png", title=f"datagen funnel ({cfg.mode})")
    atomic_write_json(out / "manifest.json", build_manifest(
        "datagen", config_dict(cfg), settings=settings_of(config_dict(cfg)), counts=paths.counts,
        **shard_info, **extra_manifest))
    if cfg.report:
        from verimath.view import write_job_report

        write_job_report(out)
    return DatagenReport(out=out, funnel=funnel, counts=paths.counts, timing=timing,
                         files=paths.files)


def _preference(cfg: DatagenConfig, solve: Any, items: list[Item], rows: list[dict[str, Any]],
                rejected: list[dict[str, Any]], funnel: Funnel) -> list[dict[str, Any]]:
    """Preference pairs of this run's own samples (before rejected attempts are dropped)."""
    from verimath.datagen.preference import funnel_counts, run_preference
    from verimath.datagen.stages import item_problem

    res = run_preference(cfg, solve.grader, [item_problem(it) for it in items], solve.template,
                         rows, rejected)
    funnel.add(funnel_counts(res))
    log.info("preference: %d pairs from %d of %d problems", len(res.pairs), res.with_pairs,
             res.problems)
    return res.pairs


class ScriptedExportRefused(ValueError):
    """Rows verified by a test double (the scripted prover) would be exported as verified data."""


def _preflight(cfg: DatagenConfig, comps: Components) -> None:
    """Stop before any work when the formal stages need Lean and there is none."""
    if cfg.mode in ("formal", "both") and comps.checker is None \
            and cfg.formal.prover.backend == "repl":
        from verimath.prover.toolchain import require_lean

        require_lean(cfg.formal.prover.project_dir)


def _by_double(row: dict[str, Any]) -> bool:
    """Whether a test double judged any verdict of ``row`` (its provenance names it)."""
    if (row.get("provenance") or {}).get("checker", {}).get("test_double"):
        return True
    return any(((v or {}).get("detail") or {}).get("checker", {}).get("test_double")
               for v in (row.get("verdicts") or {}).values())


def _refuse_doubles(cfg: DatagenConfig, rows: list[dict[str, Any]]) -> None:
    n = sum(_by_double(r) for r in rows)
    if n and not cfg.export.allow_scripted:
        raise ScriptedExportRefused(
            f"{n} of {len(rows)} verified rows were judged by the scripted prover (a test "
            "double: Lean never ran); nothing was exported. Use formal.prover.backend=repl "
            "with a Lean project, or pass --allow-scripted (export.allow_scripted=true) to "
            "export them anyway, marked as such in their provenance")


def _timing(runner: StageRunner, owned: list[Any], total: float) -> dict[str, float]:
    t: defaultdict[str, float] = defaultdict(float, runner.timer.seconds)
    for o in owned:
        for k, v in getattr(o, "timing", {}).items():
            t[k] += v
    out = {k: round(v, 3) for k, v in sorted(t.items())}
    out["total"] = round(total, 3)
    return out



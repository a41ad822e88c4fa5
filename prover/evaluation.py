"""``verimath prove``: prove a formal benchmark (miniF2F, ProofNet, a JSONL) and score pass@k.

Two modes:

* ``whole`` — :class:`verimath.prover.whole.WholeProofGenerator`: ``n`` whole proofs per problem,
  each audited (and corrected up to ``rounds`` times from the checker's errors);
* ``bfs`` — :func:`verimath.prover.search.best_first_search` in a tactic env (the Lean REPL or
  LeanDojo), ``n`` independent searches per problem (seeds ``seed .. seed+n-1``); a proof found
  is then audited by the whole-proof checker like any other.

Output folder ``out/``: ``records.jsonl`` (one line per problem, append-only, resumable),
``errors.jsonl`` (unusable input records), ``summary.json`` (pass@k over judged attempts,
solved count, infrastructure failures excluded and counted, Lean toolchain and Mathlib
revision), ``manifest.json``. A run with different settings in the same folder is refused.

Without Lean the job stops before loading anything, naming ``verimath doctor``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verimath.backends import BackendConfig
from verimath.prover.audit import AUDIT_VERSION
from verimath.prover.checker import LeanBackendConfig
from verimath.prover.dojo import DojoConfig
from verimath.prover.repl import ReplConfig
from verimath.prover.search import SearchConfig, SearchStatus, load_template
from verimath.prover.types import LeanVersion, ProofChecker, ProofEnv
from verimath.reasoning.metrics import check_ks
from verimath.records import Problem, judged

if TYPE_CHECKING:
    from verimath.backends import Backend, SamplingParams
    from verimath.progress import StageBars

log = logging.getLogger(__name__)
MODES = ("whole", "bfs")
ENVS = ("repl", "dojo")


@dataclass(frozen=True)
class ProveConfig:
    """Settings of one proving run (YAML preset under ``configs/prove/`` + overrides).

    Attributes:
        benchmark: ``minif2f`` | ``proofnet`` | a .jsonl/.parquet path of formal problems.
        split: keep this split only (miniF2F ``valid``/``test``); None keeps all.
        limit: first ``limit`` problems; None keeps all.
        out: output folder (resumable).
        mode: ``whole`` or ``bfs``.
        n: attempts per problem (whole proofs, or independent searches).
        k: the k of pass@k reported (each <= n).
        rounds: error-feedback correction rounds per whole-proof attempt.
        chat: prompt as a chat message (instruct models) rather than raw text continuation.
        temperature / top_p / max_tokens / seed: sampling (``max_tokens`` per proof; for bfs
            per tactic it is capped at 128).
        batch_size: problems per generation call (whole mode).
        backend: model backend.
        search: bfs width and budgets.
        env: tactic env for bfs: ``repl`` (lean-interact) or ``dojo`` (LeanDojo).
        repl: the Lean REPL pool (project, workers, timeouts, memory, recycling).
        prover: where whole proofs are checked: ``backend: repl`` (the pool above) or
            ``backend: kimina`` with ``url`` (a kimina-lean-server).
        dojo: LeanDojo repo and limits (env ``dojo``).
        verdict_cache: cache judged verdicts on disk (free re-checks).
        cache_path: cache file; None uses ``$VERIMATH_CACHE/lean_verdicts.jsonl``.
        infra_retries: how many more times a resume runs a problem with an attempt Lean could
            not judge (timeout, crash); until then its record is provisional
            (``retries.jsonl``). 0 makes the first record final.
        shard: ``"I/N"``: only shard ``I`` (0-based) of ``N`` of the problems (split by
            problem id); ``verimath merge`` joins shard folders. None runs every problem.
        report: write ``report.html`` (``verimath view``) when the run finishes.
    """

    benchmark: str = "minif2f"
    split: str | None = "test"
    limit: int | None = None
    out: str = "runs/prove"
    mode: str = "whole"
    n: int = 8
    k: tuple[int, ...] = (1, 8)
    rounds: int = 0
    chat: bool = False
    temperature: float = 1.0
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int = 0
    batch_size: int = 4
    backend: BackendConfig = field(default_factory=BackendConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    env: str = "repl"
    repl: ReplConfig = field(default_factory=ReplConfig)
    prover: LeanBackendConfig = field(default_factory=LeanBackendConfig)
    dojo: DojoConfig = field(default_factory=DojoConfig)
    verdict_cache: bool = True
    cache_path: str | None = None
    infra_retries: int = 2
    shard: str | None = None
    report: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", check_ks(self.k, self.n))
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}: use one of {list(MODES)}")
        if self.env not in ENVS:
            raise ValueError(f"env={self.env!r}: use one of {list(ENVS)}")
        if self.rounds < 0 or self.batch_size < 1:
            raise ValueError("rounds must be >= 0 and batch_size >= 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1 or null")
        if self.infra_retries < 0:
            raise ValueError("infra_retries must be >= 0")
        from verimath.jobs import parse_shard

        parse_shard(self.shard)


@dataclass(frozen=True)
class ProveReport:
    """What :func:`main` returns: the summary and where things were written."""

    summary: dict[str, Any]
    out: Path
    n_problems: int
    n_bad_records: int


def sampling_params(cfg: ProveConfig, *, n: int | None = None, seed: int | None = None
                    ) -> SamplingParams:
    """The run's sampling parameters (``n`` / ``seed`` overridable)."""
    from verimath.backends import SamplingParams

    return SamplingParams(n=n or cfg.n, temperature=cfg.temperature, top_p=cfg.top_p,
                          max_tokens=cfg.max_tokens, seed=cfg.seed if seed is None else seed)


def build_checker(cfg: ProveConfig) -> tuple[ProofChecker, Any]:
    """The checker for ``cfg`` and its REPL pool (None with ``prover.backend: kimina``).

    Raises:
        verimath.prover.types.LeanUnavailable: no ``lake`` or no Lean project with Mathlib, or the
            REPL is not set up (at once, before any check).
        ValueError: bfs with the REPL env on a kimina-lean-server (it checks whole proofs
            only).
    """
    from verimath.prover.cache import VerdictCache
    from verimath.prover.checker import LeanChecker
    from verimath.prover.repl import ReplPool
    from verimath.prover.toolchain import require_lean

    if cfg.prover.backend == "kimina":
        if cfg.mode == "bfs" and cfg.env == "repl":
            raise ValueError("prover.backend 'kimina' checks whole proofs; bfs with env 'repl' "
                             "needs a local Lean REPL (use env 'dojo' or backend 'repl')")
        runner = cfg.prover.kimina_runner(cfg.repl.timeout_s)
        return LeanChecker(runner, timeout_s=cfg.repl.timeout_s), None
    project = require_lean(cfg.repl.project_dir, lake_path=cfg.repl.lake_path)
    pool = ReplPool(replace(cfg.repl, project_dir=str(project.path)), project.version)
    pool.preflight()
    cache = None
    if cfg.verdict_cache:
        from verimath.backends.default_model import cache_dir

        cache = VerdictCache(cfg.cache_path or cache_dir() / "lean_verdicts.jsonl")
    return LeanChecker(pool, cache=cache, timeout_s=cfg.repl.timeout_s), pool


def build_env(cfg: ProveConfig, pool: Any, lean: LeanVersion | None = None) -> ProofEnv:
    """The bfs tactic env named by ``cfg.env``.

    Args:
        cfg: the run's settings.
        pool: the REPL pool (env ``repl``).
        lean: the checker's toolchain / Mathlib revision; a LeanDojo repo must match it.

    Raises:
        verimath.prover.types.LeanUnavailable: the LeanDojo repo's Lean differs from ``lean``.
    """
    if cfg.env == "dojo":
        from verimath.prover.dojo import DojoEnv

        dojo = DojoEnv(cfg.dojo, expected_lean=lean)
        dojo.preflight()  # a repo on another Lean / Mathlib is refused before any search
        return dojo
    from verimath.prover.repl import ReplProofEnv

    return ReplProofEnv(pool, timeout_s=cfg.repl.timeout_s)


def run_settings(cfg: ProveConfig, prompt_hash: str, lean: dict[str, Any]) -> dict[str, Any]:
    """The settings results depend on (resume refuses a change to any of them).

    The whole config minus ``verimath.jobs.NON_RESULT_KEYS`` (and, in ``whole`` mode, the
    ``search`` / ``env`` / ``dojo`` settings only bfs reads), plus the prompt hash, the Lean
    toolchain / Mathlib revision and the audit version; a flat ``{dotted_key: value}`` dict.
    """
    from verimath.jobs import settings_of

    d = asdict(cfg)
    if cfg.mode == "whole":
        for key in ("search", "env", "dojo"):
            d.pop(key)
    return settings_of(d, extra={"prompt_hash": prompt_hash, "lean": lean,
                                 "audit_version": AUDIT_VERSION})


def _record(p: Problem, mode: str, attempts: list[dict[str, Any]], seconds: float
            ) -> dict[str, Any]:
    correct = [a["correct"] for a in attempts]
    judged = [c for c in correct if c is not None]
    return {"id": p.id, "split": p.meta.get("split"), "mode": mode,
            "formal_statement": p.formal_statement, "attempts": attempts,
            "n_judged": len(judged), "n_correct": sum(judged),
            "n_infra": len(correct) - len(judged), "seconds": round(seconds, 3)}


def _bfs_attempts(cfg: ProveConfig, p: Problem, backend: Backend, checker: ProofChecker,
                  env: ProofEnv) -> list[dict[str, Any]]:
    from verimath.prover.search import BackendTacticPolicy, best_first_search
    from verimath.prover.whole import task_for

    attempts = []
    template = load_template("tactic")
    for s in range(cfg.n):
        params = replace(sampling_params(cfg, n=1, seed=cfg.seed + s),
                         max_tokens=min(cfg.max_tokens, 128))
        policy = BackendTacticPolicy(backend, params, template)
        try:
            res = best_first_search(task_for(p), env, policy, cfg.search)
        finally:
            env.close()
        att: dict[str, Any] = {"search": res.to_dict(), "verdict": None, "correct": False}
        if res.status is SearchStatus.INFRA_ERROR:
            att["correct"] = None
        elif res.proof is not None:
            v = checker.check(task_for(p, res.proof))
            att["verdict"] = v.to_dict()
            att["correct"] = v.correct if judged(v) else None
        attempts.append(att)
    return attempts


def score(records: list[dict[str, Any]], ks: tuple[int, ...]) -> dict[str, Any]:
    """pass@k (unbiased, Chen et al. 2021) over judged attempts, by :func:`~.metrics.score`.

    ``score`` is :func:`verimath.reasoning.metrics.score`.

    Attempts Lean could not judge (ERROR: a crashed or lost REPL, env failure) are excluded and
    counted in ``n_infra_failures``; a proof that ran Lean out of its time limit is a judged
    failed attempt, counted in ``n_unverifiable``; a problem with fewer than k judged attempts
    is left out of pass@k for that k (``problems_per_k`` says how many entered);
    ``pass@k_ci95`` is the Wilson interval over problems.
    """
    from verimath.reasoning.metrics import score as score_samples
    from verimath.reasoning.report import count_unverifiable

    correct = [[True] * r["n_correct"] + [False] * (r["n_judged"] - r["n_correct"])
               + [None] * r["n_infra"] for r in records]
    sc = score_samples(correct, ks, n_boot=0)
    out: dict[str, Any] = {
        "n_problems": len(records),
        "n_attempts": sum(len(r["attempts"]) for r in records),
        "n_judged": sc.n_judged, "n_infra_failures": sc.n_infra_failures,
        "nothing_judged": sc.nothing_judged,
        "n_solved": sum(1 for r in records if r["n_correct"] > 0),
        "n_unverifiable": count_unverifiable(records),
        "pass@k": {k: v.mean for k, v in sc.pass_at_k.items()},
        "pass@k_ci95": {k: list(v.ci95) for k, v in sc.pass_at_k.items()},
        "problems_per_k": {k: v.problems for k, v in sc.pass_at_k.items()},
    }
    searches = [a["search"] for r in records for a in r["attempts"] if "search" in a]
    if searches:
        out["mean_expansions"] = sum(s["expansions"] for s in searches) / len(searches)
        out["mean_nodes"] = sum(s["nodes"] for s in searches) / len(searches)
    return out


def main(cfg: ProveConfig, *, progress: bool = True, backend: Backend | None = None,
         checker: ProofChecker | None = None, env: ProofEnv | None = None) -> ProveReport:
    """Run a proving evaluation and write the output folder (see module docstring).

    Args:
        cfg: the run's settings.
        progress: rich progress bar on stderr.
        backend: a pre-built model backend (not closed here); None loads ``cfg.backend``.
        checker: a pre-built ProofChecker (tests pass scripted doubles; not closed here);
            None builds the REPL-pool checker of ``cfg.repl`` after the Lean preflight.
        env: a pre-built tactic env for bfs (not closed here); None builds ``cfg.env``.

    Raises:
        verimath.prover.types.LeanUnavailable: no usable Lean (raised before anything is loaded).
        FileNotFoundError: the benchmark cannot be found.
        verimath.jobs.SettingsMismatch: ``cfg.out`` holds a run with different settings
            (a ValueError; names the keys).
    """
    from verimath.backends import load_backend
    from verimath.datasets import load_problems
    from verimath.jobs import (
        JobRecords,
        check_settings,
        fingerprint_of,
        has_results,
        select_shard,
        shard_manifest,
    )
    from verimath.manifest import build_manifest
    from verimath.progress import StageBars
    from verimath.store import atomic_write_json, atomic_write_text

    owned: list[Any] = []
    if checker is None:
        checker, pool = build_checker(cfg)
        owned.append(checker)
        if cfg.mode == "bfs" and env is None:
            env = build_env(cfg, pool, checker.lean)
    if cfg.mode == "bfs" and env is None:
        raise ValueError("bfs mode needs a tactic env")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    lean = checker.lean.to_dict()
    prompt = load_template("tactic" if cfg.mode == "bfs" else "whole_proof")
    settings = run_settings(cfg, prompt.hash, lean)
    fp = fingerprint_of(settings)
    check_settings(out / "manifest.json", settings, has_work=has_results(out))
    loaded = load_problems(cfg.benchmark, split=cfg.split, limit=cfg.limit)
    errors = [{"where": e.where, "field": e.field_name, "error": e.problem}
              for e in loaded.errors]
    atomic_write_text(out / "errors.jsonl", "".join(json.dumps(e) + "\n" for e in errors))
    problems = [p for p in loaded.problems if p.formal_statement]
    mine = select_shard([p.id for p in problems], cfg.shard)
    shard_info = shard_manifest(cfg.shard, [p.id for p in problems], mine)
    problems = [problems[i] for i in mine]
    store = JobRecords(out, retries=cfg.infra_retries,
                       unjudged=lambda rec: rec.get("n_infra", 0) > 0)
    todo = [p for p in problems if p.id not in store]
    try:
        if todo and backend is None:
            backend = load_backend(cfg.backend)
            owned.append(backend)
        manifest = build_manifest(
            "prove", asdict(cfg), fingerprint=fp, settings=settings, benchmark_source=loaded.source,
            model=getattr(backend, "model_id", cfg.backend.model), prompt_hash=prompt.hash,
            lean=lean, audit_version=AUDIT_VERSION, seed=cfg.seed,
            sampling=asdict(sampling_params(cfg)), n_problems=len(problems),
            damaged_record_lines=store.final.damaged, **shard_info)
        atomic_write_json(out / "manifest.json", manifest)
        with StageBars(progress) as bar:
            bar.start("prove", len(problems), done=len(problems) - len(todo))
            _run(cfg, todo, backend, checker, env, store, bar)
    finally:
        store.close()
        for o in reversed(owned):
            o.close()
    records = [r for p in problems if (r := store.get(p.id)) is not None]
    summary = finalize(out, records, manifest)
    if cfg.report:
        from verimath.view import write_job_report

        write_job_report(out)
    return ProveReport(summary, out, len(problems), len(loaded.errors))


def finalize(out: Path, records: list[dict[str, Any]], manifest: dict[str, Any]
             ) -> dict[str, Any]:
    """Score ``records`` and write ``summary.json`` (also ``verimath merge`` of shards)."""
    from verimath.store import atomic_write_json

    c = manifest["config"]
    summary = score(records, tuple(c["k"]))
    summary.update(benchmark=c["benchmark"], split=c["split"], mode=c["mode"],
                   model=manifest["model"], lean=manifest["lean"],
                   audit_version=manifest["audit_version"])
    atomic_write_json(out / "summary.json", summary)
    return summary


def _run(cfg: ProveConfig, todo: list[Problem], backend: Any, checker: ProofChecker,
         env: ProofEnv | None, store: Any, bar: StageBars) -> None:
    if cfg.mode == "whole":
        from verimath.prover.whole import WholeProofGenerator

        gen = WholeProofGenerator(backend, checker, sampling_params(cfg), rounds=cfg.rounds,
                                  chat=cfg.chat)
        for i in range(0, len(todo), cfg.batch_size):
            batch = todo[i:i + cfg.batch_size]
            t0 = time.perf_counter()
            results = gen.run(batch)
            dt = (time.perf_counter() - t0) / len(batch)
            for p, per in zip(batch, results, strict=True):
                store.add(p.id, _record(p, "whole", [a.to_dict() for a in per], dt))
            bar.advance("prove", len(batch))
        return
    assert env is not None
    for p in todo:
        t0 = time.perf_counter()
        atts = _bfs_attempts(cfg, p, backend, checker, env)
        store.add(p.id, _record(p, "bfs", atts, time.perf_counter() - t0))
        bar.advance("prove", 1)


def print_summary(summary: dict[str, Any]) -> None:
    """The summary as a rich table on stderr."""
    from rich.console import Console
    from rich.table import Table

    def pct(v: float) -> str:
        return "n/a" if isinstance(v, float) and math.isnan(v) else f"{100 * v:.1f}%"

    lean = summary.get("lean") or {}
    t = Table(title=f"{summary.get('benchmark')} {summary.get('split') or ''} | "
                    f"{summary.get('mode')} | {Path(str(summary.get('model'))).name}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("problems", str(summary["n_problems"]))
    t.add_row("solved", str(summary["n_solved"]))
    t.add_row("attempts (judged)", f"{summary['n_attempts']} ({summary['n_judged']})")
    t.add_row("infrastructure failures (excluded)", str(summary["n_infra_failures"]))
    for k, v in summary["pass@k"].items():
        t.add_row(f"pass@{k}", pct(v))
    if summary.get("nothing_judged"):
        t.add_row("[bold red]NOTHING WAS JUDGED[/]", "pass@k means nothing")
    if "mean_expansions" in summary:
        t.add_row("mean expansions / tree size",
                  f"{summary['mean_expansions']:.1f} / {summary['mean_nodes']:.1f}")
    t.add_row("Lean toolchain", str(lean.get("toolchain")))
    t.add_row("Mathlib revision", str(lean.get("mathlib_rev")))
    Console(stderr=True).print(t)

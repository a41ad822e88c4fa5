"""``verimath eval``: sample, execute, grade and score a benchmark (the main job).

Output folder ``out/``:

* ``records.jsonl`` – one line per problem (append-only, keyed by problem id): prompt messages,
  gold, and every attempt with its text, spans, tool calls, extracted answer, verdict, tokens;
* ``errors.jsonl`` – input records that could not be used (line and field named);
* ``results.parquet`` – the same records, flattened one row per attempt;
* ``summary.json`` – pass@k, maj@k, accuracy with a 95% Wilson interval, counts of
  infrastructure failures (excluded, never scored);
* ``manifest.json`` – versions, model, sampling, prompt hash, grader version, isolation, seed;
* ``pass_at_k.png`` – a bar chart of the summary.

Re-running with the same ``out`` continues where an interrupted run stopped. Any setting that
can change results (the whole config minus ``verimath.jobs.NON_RESULT_KEYS``, plus the prompt
hash and grader version) that differs from the stored run is refused, naming the keys, before
anything in the folder is written (it would mix runs).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verimath.backends import BackendConfig
from verimath.reasoning.grading import GRADER_VERSION
from verimath.reasoning.metrics import check_ks
from verimath.reasoning.rollout import RolloutConfig, Strategy, load_prompt
from verimath.reasoning.service.factory import GraderSettings, SandboxSettings
from verimath.records import Attempt, Problem, RecordError, Verdict, VerdictStatus, judged

if TYPE_CHECKING:
    from verimath.backends import Backend
    from verimath.reasoning.grading import Grader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalConfig:
    """Settings of one evaluation run (YAML preset + overrides; see ``configs/eval/``).

    Attributes:
        benchmark: a built-in id (``gsm8k``, ``math500``, ``svamp``, ... see
            :mod:`verimath.datasets`) | a .jsonl/.parquet path | a hub id.
        question_field / answer_field / id_field: explicit field mapping for layouts that
            are not detected (:class:`verimath.layouts.FieldMap`; None: detect).
        allow_missing_gold: keep problems whose gold cannot be extracted (not scored,
            counted in ``n_problems_without_gold``) instead of reporting them as bad records.
        split: keep records of this split only (None: all).
        limit: first ``limit`` problems (None: all).
        out: output folder (resumable).
        n: samples per problem.
        k: the k of pass@k and maj@k reported (each must be <= n).
        temperature / top_p / max_tokens: sampling; temperature 0 is greedy.
        seed: sampling seed (recorded in the manifest).
        infra_retries: how many more times a resume runs a problem whose record has an
            attempt that could not be judged (sandbox error, grader timeout); until then its
            record is provisional (``retries.jsonl``). 0 makes the first record final.
        shard: ``"I/N"``: run only shard ``I`` (0-based) of ``N``, a deterministic split by
            problem id (``verimath.jobs.shard_of``); ``verimath merge`` joins the shard
            folders into the files of one unsharded run. None runs every problem.
        report: write ``report.html`` (``verimath view``) when the run finishes.
        backend / rollout / sandbox / grader: component configs.
    """

    benchmark: str = "gsm8k"
    question_field: str | None = None
    answer_field: str | None = None
    id_field: str | None = None
    allow_missing_gold: bool = False
    split: str | None = None
    limit: int | None = None
    out: str = "runs/eval"
    n: int = 1
    k: tuple[int, ...] = (1,)
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 384
    seed: int = 0
    infra_retries: int = 2
    shard: str | None = None
    report: bool = True
    backend: BackendConfig = field(default_factory=BackendConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    sandbox: SandboxSettings = field(default_factory=lambda: SandboxSettings(timeout_s=5.0))
    grader: GraderSettings = field(default_factory=GraderSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", check_ks(self.k, self.n))
        if self.n > 1 and self.temperature == 0.0:
            log.warning("n=%d with temperature 0: samples will be near-identical", self.n)
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1 or null")
        if self.infra_retries < 0:
            raise ValueError("infra_retries must be >= 0")
        from verimath.jobs import parse_shard

        parse_shard(self.shard)


@dataclass(frozen=True)
class EvalReport:
    """What ``main`` returns: the summary dict and where things were written."""

    summary: dict[str, Any]
    out: Path
    n_problems: int
    n_bad_records: int


def run_settings(cfg: EvalConfig, prompt_hash: str) -> dict[str, Any]:
    """The settings results depend on (resume refuses a change to any of them).

    The whole config minus ``verimath.jobs.NON_RESULT_KEYS``, plus the prompt-template hash
    and the grader version; a flat ``{dotted_key: value}`` dict.
    """
    from verimath.jobs import settings_of

    return settings_of(_config_dict(cfg), extra={"prompt_hash": prompt_hash,
                                                 "grader_version": GRADER_VERSION})


def _sample_correct(attempt: Attempt, verdict: Verdict) -> bool | None:
    """True/False when judged; None when infrastructure failed (excluded from scores)."""
    if attempt.finish_reason == "error" or not judged(verdict):
        return None
    return verdict.status is VerdictStatus.CORRECT


def _grade_batch(
    grader: Grader, problems: list[Problem], attempts: list[list[Attempt]]
) -> list[list[Verdict]]:
    """Grade each attempt against its problem's gold (``grading.grade_attempts``)."""
    from verimath.reasoning.grading import grade_attempts

    pairs = [(p.answer, a) for p, per in zip(problems, attempts, strict=True) for a in per]
    flat = grade_attempts(grader, pairs)
    out, i = [], 0
    for per in attempts:
        out.append(flat[i:i + len(per)])
        i += len(per)
    return out


def _problem_record(
    problem: Problem, messages: list[dict[str, str]], attempts: list[Attempt],
    verdicts: list[Verdict], seconds: float,
) -> dict[str, Any]:
    rows = []
    for a, v in zip(attempts, verdicts, strict=True):
        row = a.to_dict()
        row["verdict"] = v.to_dict()
        row["correct"] = _sample_correct(a, v)
        rows.append(row)
    return {
        "id": problem.id, "question": problem.informal, "gold": problem.answer,
        "prompt": messages, "attempts": rows, "seconds": round(seconds, 3),
    }


def main(cfg: EvalConfig, *, progress: bool = True, backend: Backend | None = None) -> EvalReport:
    """Run an evaluation and write the output folder (see module docstring).

    Args:
        cfg: the run's settings.
        progress: show a rich progress bar on stderr.
        backend: an already-built backend to use instead of ``load_backend(cfg.backend)``
            (tests, or a caller that keeps one model loaded across runs); not closed here.

    Returns:
        EvalReport with the summary (also in ``summary.json``).

    Raises:
        FileNotFoundError: the benchmark cannot be found (message says how to fix).
        verimath.jobs.SettingsMismatch: ``cfg.out`` holds a run with different settings
            (a ValueError; names the keys).
    """
    from verimath.backends import SamplingParams, load_backend
    from verimath.datasets import load_problems
    from verimath.jobs import (
        JobRecords,
        check_settings,
        fingerprint_of,
        has_results,
        select_shard,
        shard_manifest,
    )
    from verimath.layouts import FieldMap
    from verimath.manifest import build_manifest
    from verimath.progress import StageBars
    from verimath.reasoning.rollout import rollout
    from verimath.reasoning.service.factory import make_grader, make_sandbox
    from verimath.store import atomic_write_json

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    template = load_prompt(cfg.rollout.strategy, cfg.rollout.prompt_file)
    settings = run_settings(cfg, template.hash)
    fp = fingerprint_of(settings)
    check_settings(out / "manifest.json", settings, has_work=has_results(out))
    fields = FieldMap(cfg.question_field, cfg.answer_field, cfg.id_field)
    loaded = load_problems(cfg.benchmark, split=cfg.split, limit=cfg.limit, fields=fields,
                           allow_missing_gold=cfg.allow_missing_gold)
    _write_errors(out, loaded.errors)
    problems = [p for p in loaded.problems if p.informal]
    mine = select_shard([p.id for p in problems], cfg.shard)
    shard_info = shard_manifest(cfg.shard, [p.id for p in problems], mine)
    problems = [problems[i] for i in mine]
    store = JobRecords(out, retries=cfg.infra_retries, unjudged=_unjudged)
    todo = [p for p in problems if p.id not in store]
    retried = sum(store.tries(p.id)[0] > 0 for p in todo)
    if retried:
        log.info("%d problems retried after an infrastructure failure", retried)
    log.info("%d problems, %d already done, %d to run", len(problems), len(problems) - len(todo),
             len(todo))
    params = SamplingParams(n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p,
                            max_tokens=cfg.max_tokens, seed=cfg.seed)
    needs_sandbox = cfg.rollout.strategy is not Strategy.COT
    owned = backend is None
    if owned and todo:
        backend = load_backend(cfg.backend)
    sandbox = make_sandbox(cfg.sandbox) if needs_sandbox else None
    manifest = build_manifest(
        "eval", _config_dict(cfg), fingerprint=fp, settings=settings,
        benchmark_source=loaded.source,
        model=getattr(backend, "model_id", cfg.backend.model), prompt_hash=template.hash,
        grader_version=GRADER_VERSION, isolation=sandbox.isolation if sandbox else None,
        seed=cfg.seed, sampling=asdict(params), n_problems=len(problems),
        n_bad_records=len(loaded.errors), n_duplicate_ids=len(loaded.duplicates),
        n_problems_without_gold=loaded.missing_gold, damaged_record_lines=store.final.damaged,
        **shard_info,
    )
    atomic_write_json(out / "manifest.json", manifest)
    try:
        with make_grader(cfg.grader) as grader, StageBars(progress) as bar:
            bar.start("eval", len(problems), done=len(problems) - len(todo))
            t0 = [time.perf_counter()]

            def on_batch(batch: list[Problem], attempts: list[list[Attempt]]) -> None:
                verdicts = _grade_batch(grader, batch, attempts)
                dt = (time.perf_counter() - t0[0]) / max(1, len(batch))
                for p, a, v in zip(batch, attempts, verdicts, strict=True):
                    store.add(p.id, _problem_record(p, template.messages(p), a, v, dt))
                bar.advance("eval", len(batch))
                t0[0] = time.perf_counter()

            if todo:
                assert backend is not None
                rollout(backend, todo, params, cfg.rollout, sandbox, on_batch=on_batch)
    finally:
        store.close()
        if sandbox is not None:
            sandbox.close()
        if owned and backend is not None:
            backend.close()
    summary = finalize(out, _ordered(store, problems), manifest)
    if cfg.report:
        from verimath.view import write_job_report

        write_job_report(out)
    return EvalReport(summary=summary, out=out, n_problems=len(problems),
                      n_bad_records=len(loaded.errors))


def finalize(out: Path, records: list[dict[str, Any]], manifest: dict[str, Any]
             ) -> dict[str, Any]:
    """Write ``summary.json``, ``results.parquet`` and the chart from ``records``.

    Also used by ``verimath merge`` on the merged records of shards. Returns the summary.
    """
    from verimath.reasoning.report import write_outputs

    return write_outputs(out, records, tuple(manifest["config"]["k"]), manifest)


def _ordered(store: Any, problems: list[Problem]) -> list[dict[str, Any]]:
    """Stored records of ``problems`` in benchmark order (only this run's problems)."""
    return [store.get(p.id) for p in problems if store.get(p.id) is not None]


def _config_dict(cfg: EvalConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["rollout"]["strategy"] = str(cfg.rollout.strategy)
    return d


#: Verdict statuses a retry can change: could-not-judge (the one predicate,
#: :func:`verimath.records.judged`) except BAD_GOLD, which is data and stays as it is.
_RETRYABLE = frozenset(str(s) for s in VerdictStatus
                       if not judged(s) and s is not VerdictStatus.BAD_GOLD)


def _unjudged(record: dict[str, Any]) -> bool:
    """A record with an attempt an infrastructure failure left unjudged (retried on resume).

    A sandbox error / lost interpreter (``finish_reason == "error"``) or a grader TIMEOUT /
    ERROR; not BAD_GOLD, which no retry can change.
    """
    return any(a.get("finish_reason") == "error"
               or (a.get("verdict") or {}).get("status") in _RETRYABLE
               for a in record["attempts"])


def _write_errors(out: Path, errors: list[RecordError]) -> None:
    from verimath.store import atomic_write_text

    for e in errors:
        log.warning("skipping bad record: %s", e)
    lines = [
        json.dumps({"where": e.where, "field": e.field_name, "error": e.problem})
        for e in errors
    ]
    atomic_write_text(out / "errors.jsonl", "".join(ln + "\n" for ln in lines))

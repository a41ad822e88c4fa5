"""The resumable stage runner.

A stage maps work items (JSON-ready dicts with a ``"key"``) to outcomes. Each stage writes one
line per input item to ``<out>/stages/<name>.jsonl`` (named by stage, not by position, so
switching dedup or decontamination on or off reuses the stored work of the later stages) through
:class:`verimath.jobs.JobStore`, keyed by ``content_hash(item key, stage fingerprint)``.

A stage's settings (``stage.settings``: the config sections it reads, minus
``verimath.jobs.NON_RESULT_KEYS``, plus prompt hashes and model ids) are kept in
``stages/<name>.settings.json``; resuming with different settings is refused naming the keys
(:class:`verimath.jobs.SettingsMismatch`). On a re-run with the same ``--out``, items whose key
is already stored are skipped, so a run killed at any point (Ctrl-C or ``kill -9``) resumes with
nothing lost and nothing duplicated. An outcome marked ``unjudged`` (an infrastructure failure:
sandbox error, grader timeout, Lean timeout...) is not final: a resume runs the item again, at
most ``retries`` times, and what stays unjudged is counted (``StageCounts.unjudged``). Outputs
are always collected in input order, never in completion order, so a resumed run produces
exactly the files of an uninterrupted one (given a backend that is deterministic per prompt).

A stage that has a ``verify`` phase is pipelined: the main thread runs ``generate`` on batch
``i + 1`` while one worker thread runs ``verify`` on batch ``i`` and writes its lines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from verimath.datagen.funnel import Funnel, StageCounts
from verimath.jobs import JobStore, check_settings, plan_tries, try_key
from verimath.records import content_hash
from verimath.store import atomic_write_json

log = logging.getLogger(__name__)

Item = dict[str, Any]


@dataclass
class Outcome:
    """What a stage made of one input item.

    Attributes:
        kept: output items passed to the next stage (0, 1 or many), each with a ``"key"``.
        rejected: ``{"reason", "unit", "record"}`` for everything dropped, the input item itself
            (``unit`` = the stage's input unit) or sub-records (e.g. single attempts).
        side: named side outputs (``{"review": [...], "open": [...]}``) collected per stage.
        unjudged: why the item could not be judged (infrastructure failures: ``sandbox_error``,
            ``grader_timeout``, ``compile_check_failed``...); non-empty makes the outcome
            provisional: a resume runs the item again (bounded by the runner's ``retries``).
    """

    kept: list[Item] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    side: dict[str, list[Any]] = field(default_factory=dict)
    unjudged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form stored in the stage file."""
        return {"kept": self.kept, "rejected": self.rejected, "side": self.side,
                "unjudged": self.unjudged}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        """Inverse of :meth:`to_dict`."""
        return cls(list(d.get("kept") or []), list(d.get("rejected") or []),
                   dict(d.get("side") or {}), list(d.get("unjudged") or []))


#: Rejection reasons (the text before any ``:``) that are infrastructure failures, i.e. "could
#: not judge": the one list every stage's outcomes are read against. An outcome rejecting
#: anything for one of them is provisional (``unjudged``), whatever the stage said, so a resume
#: runs it again (issue 18: a lost interpreter must never become a final rejection).
INFRA_REASONS = frozenset({"sandbox_error", "grader_timeout", "grader_error", "grader_unjudged",
                           "compile_check_failed", "proof_check_unjudged"})


def infra_reasons_of(outcome: Outcome) -> list[str]:
    """The infrastructure reasons among ``outcome``'s rejections (:data:`INFRA_REASONS`)."""
    found = {str(r.get("reason", "")).split(":", 1)[0].strip() for r in outcome.rejected}
    return sorted(found & INFRA_REASONS)


def reject(item: Item, reason: str, unit: str) -> dict[str, Any]:
    """A rejection entry for ``item``."""
    return {"reason": reason, "unit": unit, "record": item}


@runtime_checkable
class Stage(Protocol):
    """One pipeline stage.

    Attributes:
        name: short name (file name and funnel row).
        unit_in / unit_out: what is counted on the way in and out ("problems", "trajectories").
        fingerprint: hash of every setting that changes the stage's output.
        batch_size: items per ``process`` call.
        settings: (optional) the flat settings dict ``fingerprint`` hashes
            (``verimath.jobs.settings_of``); stored next to the stage file so a change is
            refused naming the keys. A stage without it is checked on ``fingerprint`` alone.
    """

    name: str
    unit_in: str
    unit_out: str
    fingerprint: str
    batch_size: int

    def prepare(self, items: list[Item], todo: list[Item]) -> None:
        """Called once before processing with all input items and those still to do."""

    def process(self, items: list[Item]) -> list[Outcome]:
        """One outcome per input item, in order."""


class Progress(Protocol):
    """Progress display hooks (the CLI draws bars; library code never prints)."""

    def start(self, stage: str, total: int, done: int) -> None:
        """A stage starts with ``total`` items of which ``done`` were already stored."""

    def advance(self, stage: str, n: int) -> None:
        """``n`` more items finished."""

    def finish(self, stage: str) -> None:
        """The stage is complete."""


class NullProgress:
    """Progress that shows nothing."""

    def start(self, stage: str, total: int, done: int) -> None:  # noqa: D102
        pass

    def advance(self, stage: str, n: int) -> None:  # noqa: D102
        pass

    def finish(self, stage: str) -> None:  # noqa: D102
        pass


@dataclass
class StageResult:
    """A finished stage: outputs in input order plus everything it dropped or set aside."""

    kept: list[Item]
    rejected: list[dict[str, Any]]
    side: dict[str, list[Any]]
    counts: StageCounts


@dataclass
class Timer:
    """Accumulates seconds per label across threads (for generation vs verification split)."""

    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, label: str, seconds: float) -> None:
        """Add ``seconds`` to ``label``."""
        with self._lock:
            self.seconds[label] += seconds


class StageRunner:
    """Runs stages against per-stage JSONL stores under ``out_dir/stages``.

    Args:
        out_dir: the run folder (``--out``).
        funnel: receives each stage's counts.
        progress: display hooks; None shows nothing.
        max_inflight: pipelined stages: batches generated but not yet verified; 0 turns the
            overlap off (verify inline after each generated batch).
        retries: how many more times a resume runs an item whose stored outcome is unjudged.
        replay_only: every outcome must already be stored (``verimath merge`` rebuilding the
            files of merged shards); an item left to do raises ``RuntimeError``.
        verifier_settings: the flat settings of the verifiers (sandbox and grader limits,
            ``sandbox.timeout_s``, ``grader.strict``, ...). Every stage with a true
            ``uses_verifiers`` attribute has them added to its settings and its item keys, so a
            resume never reuses results judged under other limits or rules.
    """

    def __init__(self, out_dir: str | Path, funnel: Funnel, progress: Progress | None = None,
                 max_inflight: int = 2, retries: int = 2, replay_only: bool = False,
                 verifier_settings: dict[str, Any] | None = None) -> None:
        self.verifier_settings = dict(verifier_settings or {})
        self.replay_only = replay_only
        self.out_dir = Path(out_dir)
        self.funnel = funnel
        self.progress: Progress = progress or NullProgress()
        self.max_inflight = max(0, max_inflight)
        self.retries = max(0, retries)
        self.timer = Timer()

    def run(self, stage: Stage, items: list[Item]) -> StageResult:
        """Run ``stage`` on ``items`` (skipping stored ones); results come in input order.

        Raises:
            ValueError: two items share a key.
            verimath.jobs.SettingsMismatch: the stage file was written with other settings.
        """
        path = self.out_dir / "stages" / f"{stage.name}.jsonl"
        settings = getattr(stage, "settings", None) or {"@fingerprint": stage.fingerprint}
        salt: tuple[Any, ...] = ()
        if getattr(stage, "uses_verifiers", False) and self.verifier_settings:
            settings = {**settings, **self.verifier_settings}
            salt = (sorted(self.verifier_settings.items()),)
        keys = [content_hash(it["key"], stage.fingerprint, *salt) for it in items]
        if len(set(keys)) != len(keys):
            raise ValueError(f"stage {stage.name}: duplicate input keys")
        t0 = time.perf_counter()
        with JobStore(path) as store:
            meta = path.with_suffix(".settings.json")
            check_settings(meta, settings, has_work=len(store) > 0)
            if not meta.exists() or len(store) == 0:
                atomic_write_json(meta, {"stage": stage.name, "fingerprint": stage.fingerprint,
                                         "settings": settings})
            tries, stuck = plan_tries(store, keys, self.retries)
            todo = [(try_key(k, tries[k]), it) for k, it in zip(keys, items, strict=True)
                    if k in tries]
            self.progress.start(stage.name, len(items), len(items) - len(todo))
            if todo and self.replay_only:
                raise RuntimeError(f"stage {stage.name}: {len(todo)} of {len(items)} items are "
                                   "not stored in the merged shards (an unfinished shard?)")
            if todo:
                log.info("%s: %d of %d items to do (%d retried after an infrastructure "
                         "failure)", stage.name, len(todo), len(items),
                         sum(1 for k in tries.values() if k > 0))
                stage.prepare(items, [it for _, it in todo])
                if self.max_inflight > 0 and callable(getattr(stage, "generate", None)):
                    self._run_pipelined(stage, todo, store)
                else:
                    self._run_plain(stage, todo, store)
            outcomes = [_latest(store, k, self.retries) for k in keys]
        self.progress.finish(stage.name)
        self.timer.add(f"stage:{stage.name}", time.perf_counter() - t0)
        result = _collect(stage, outcomes)
        if result.counts.unjudged:
            log.warning("%s: %d items could not be judged (infrastructure failures; %d "
                        "retries each)", stage.name, result.counts.unjudged, self.retries)
        self.funnel.add(result.counts)
        return result

    def _write(self, store: JobStore, stage: Stage, batch: list[tuple[str, Item]],
               outs: list[Outcome]) -> None:
        if len(outs) != len(batch):
            raise RuntimeError(f"stage {stage.name}: {len(outs)} outcomes for {len(batch)} items")
        for (k, it), o in zip(batch, outs, strict=True):
            infra = infra_reasons_of(o)
            if infra:  # the one rule, whatever the stage marked
                o.unjudged = sorted({*o.unjudged, *infra})
            store.add(k, {"input": it["key"], **o.to_dict()})
        self.progress.advance(stage.name, len(batch))

    def _run_plain(self, stage: Stage, todo: list[tuple[str, Item]], store: JobStore) -> None:
        for start in range(0, len(todo), stage.batch_size):
            batch = todo[start:start + stage.batch_size]
            self._write(store, stage, batch, stage.process([it for _, it in batch]))

    def _run_pipelined(self, stage: Any, todo: list[tuple[str, Item]],
                       store: JobStore) -> None:
        """generate(batch) on this thread, verify(batch, generated) + write on one worker."""

        def verify_and_write(batch: list[tuple[str, Item]], generated: Any) -> None:
            t = time.perf_counter()
            outs = stage.verify([it for _, it in batch], generated)
            self.timer.add("verify", time.perf_counter() - t)
            self._write(store, stage, batch, outs)

        pending: list[Future[None]] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"verify-{stage.name}") as pool:
            try:
                for start in range(0, len(todo), stage.batch_size):
                    batch = todo[start:start + stage.batch_size]
                    t = time.perf_counter()
                    generated = stage.generate([it for _, it in batch])
                    self.timer.add("generate", time.perf_counter() - t)
                    pending.append(pool.submit(verify_and_write, batch, generated))
                    while len(pending) >= self.max_inflight + 1 or (
                        pending and pending[0].done()
                    ):
                        t = time.perf_counter()
                        pending.pop(0).result()
                        self.timer.add("wait_verify", time.perf_counter() - t)
                t = time.perf_counter()
                for f in pending:
                    f.result()
                self.timer.add("wait_verify", time.perf_counter() - t)
            except BaseException:
                for f in pending:
                    f.cancel()
                raise


def _latest(store: JobStore, key: str, retries: int) -> Outcome:
    """The outcome of the last stored try of ``key``."""
    from verimath.jobs import latest_try

    _, rec = latest_try(store, key, 1 + retries)
    return Outcome.from_dict(rec or {})


def _collect(stage: Stage, outcomes: list[Outcome]) -> StageResult:
    kept: list[Item] = []
    rejected: list[dict[str, Any]] = []
    side: dict[str, list[Any]] = {}
    left_in = 0
    dropped_in: Counter[str] = Counter()
    rejected_out: Counter[str] = Counter()
    sub_unit = ""
    unjudged = 0
    for o in outcomes:
        unjudged += bool(o.unjudged)
        kept.extend(o.kept)
        rejected.extend(o.rejected)
        for name, vals in o.side.items():
            side.setdefault(name, []).extend(vals)
        if o.kept:
            left_in += 1
        for r in o.rejected:
            if r["unit"] == stage.unit_in and not o.kept:
                dropped_in[_reason_class(r["reason"])] += 1
            elif r["unit"] != stage.unit_in:
                rejected_out[_reason_class(r["reason"])] += 1
                sub_unit = sub_unit or r["unit"]
    counts = StageCounts(
        stage=stage.name, unit_in=stage.unit_in, entered=len(outcomes), left=left_in,
        dropped=dict(dropped_in), unit_out=stage.unit_out, produced=len(kept),
        rejected_out=dict(rejected_out), sub_unit=sub_unit, unjudged=unjudged,
    )
    return StageResult(kept, rejected, side, counts)


def _reason_class(reason: str) -> str:
    """The part of a reason before ``": "`` (details such as error text are not grouped on)."""
    return reason.split(": ", 1)[0]


def fingerprint(*parts: object) -> str:
    """Stage fingerprint from its settings (sha256, 16 hex chars)."""
    return content_hash("datagen-stage-v1", *parts)


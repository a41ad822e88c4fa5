r"""Reference-guided synthesis: verified PoT programs and TIR trajectories without a model.

A small model rarely produces a verified sample, so rejection sampling alone cannot start the
expert-iteration loop (DeepSeek-Prover, ToRA imitation learning). This stage writes the seed
data from the reference solutions instead: the calculator annotations of a GSM8K solution
(``<<48/2=24>>``) become a program (:mod:`verimath.datagen.refprog`), the program runs in the real
sandbox, and it is kept only when what it prints is graded CORRECT against the gold answer
(math-verify). Records say ``verified_by: execution`` and ``provenance.source_method:
reference``, in the export schema of :mod:`verimath.datagen.export`.

* **PoT** (Chen et al. 2022): named inputs, one statement per step, ``print`` of the answer;
  the program is run with :meth:`verimath.reasoning.sandbox.Sandbox.run_many`.
* **TIR** (ToRA, Gou et al. 2023): per solution line a ```python block (that line's steps,
  each printed), its ```output block (the real stdout of the block run in one sandbox
  *session* per problem, state kept between blocks, shown as the rollout shows it) and the
  line's text; it ends with ``\boxed{gold}``. Kept only when every printed value agrees with
  the value the text states (to the text's precision); output spans are ``tool`` spans,
  masked out of SFT losses.

Drop reasons (funnel): ``no_gold``, ``no_annotations``, ``unparseable_annotation``,
``no_answer_step``, ``exec_error`` (the program failed), ``exec_mismatch`` (it printed another
answer), ``sandbox_error`` (infrastructure; never counted as the program's fault),
``grader_timeout`` / ``grader_error`` (could not judge); TIR trajectories (sub-records):
``tir_mismatch``, ``tir_exec_error``, ``tir_exec_mismatch`` (the answer step's printed value
is not graded CORRECT), ``tir_grader_timeout`` / ``tir_grader_error``, ``sandbox_error``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from verimath.datagen.export import export_row
from verimath.datagen.refprog import (
    RefError,
    RefProgram,
    matches_claim,
    parse_reference,
    pot_program,
)
from verimath.datagen.refprog import tir_cells as make_tir_cells
from verimath.datagen.runner import Item, Outcome, fingerprint, reject
from verimath.datagen.stages import DedupStage, item_problem
from verimath.records import (
    Attempt,
    Problem,
    Span,
    SpanKind,
    ToolCall,
    Verdict,
    VerdictStatus,
    content_hash,
    judged,
)

if TYPE_CHECKING:
    from verimath.datagen.config import DatagenConfig
    from verimath.reasoning.grading import Grader
    from verimath.reasoning.sandbox import ExecResult, Sandbox

log = logging.getLogger(__name__)

#: bump when the program construction changes (part of the stage fingerprint)
SYNTH_VERSION = "refprog-v3"  # v3: names grow by context words before taking a number

_GRADE_REASON = {VerdictStatus.WRONG: "exec_mismatch", VerdictStatus.NO_ANSWER: "exec_mismatch",
                 VerdictStatus.UNVERIFIABLE: "exec_mismatch",
                 VerdictStatus.BAD_GOLD: "no_gold", VerdictStatus.TIMEOUT: "grader_timeout",
                 VerdictStatus.ERROR: "grader_error"}


class SharedTools:
    """The sandbox and grader of the reference stages, built on first use and closed once.

    Args:
        cfg: the run config (``sandbox``, ``grader``).
        comps: prebuilt components (``sandbox``, ``grader``); those are used and not closed.
    """

    def __init__(self, cfg: DatagenConfig, comps: Any) -> None:
        self.cfg = cfg
        self._sandbox: Sandbox | None = getattr(comps, "sandbox", None)
        self._grader: Grader | None = getattr(comps, "grader", None)
        self._owned: list[Any] = []
        self._lock = threading.Lock()

    def sandbox(self) -> Sandbox:
        """The sandbox pool."""
        with self._lock:
            if self._sandbox is None:
                from verimath.reasoning.sandbox import Sandbox

                self._sandbox = Sandbox(self.cfg.sandbox)
                self._owned.append(self._sandbox)
            return self._sandbox

    def grader(self) -> Grader:
        """The math-verify grader."""
        with self._lock:
            if self._grader is None:
                from verimath.reasoning.grading import Grader

                self._grader = Grader(self.cfg.grader)
                self._owned.append(self._grader)
            return self._grader

    @property
    def isolation(self) -> str | None:
        """The sandbox's isolation string (None before it is built)."""
        return getattr(self._sandbox, "isolation", None)

    def close(self) -> None:
        """Close what was built here."""
        for o in reversed(self._owned):
            o.close()
        self._owned.clear()


def tool_call(code: str, result: ExecResult, max_chars: int) -> ToolCall:
    """The ToolCall record of one execution (output as a rollout would show it)."""
    from verimath.reasoning.rollout import tool_feedback

    return ToolCall(code=code, status=str(result.status),
                    output=tool_feedback(result, max_chars), wall_time_s=result.wall_time_s)


def pot_attempt(code: str, result: ExecResult, max_chars: int) -> Attempt:
    """The PoT completion (one fenced program) with its execution."""
    from verimath.reasoning.extract import extract_program_output

    text = f"```python\n{code}```"
    answer = extract_program_output(result.stdout) if result.ok else None
    return Attempt(text=text, spans=(Span(SpanKind.MODEL, text),),
                   tool_calls=(tool_call(code, result, max_chars),), answer=answer)


def join_spans(spans: list[Span]) -> tuple[Span, ...]:
    """Adjacent spans of the same kind merged (model text between two blocks is one span)."""
    out: list[Span] = []
    for s in spans:
        if out and out[-1].kind is s.kind:
            out[-1] = Span(s.kind, out[-1].text + s.text)
        elif s.text:
            out.append(s)
    return tuple(out)


def tir_row_prov(base: dict[str, Any], calls: list[ToolCall]) -> dict[str, Any]:
    """Provenance of a TIR row: the stage's plus its tool calls."""
    return {**base, "strategy": "tir", "tool_calls": [c.to_dict() for c in calls]}


class SynthStage:
    """Problems with annotated reference solutions -> verified programs (module docstring).

    Output items: ``{"key", "problem", "program": RefProgram.to_dict(), "rows": [...]}`` with
    one export row per format in ``cfg.synth.formats`` (the TIR row may be missing when its
    trajectory did not verify; the PoT program always did).

    Args:
        cfg: the run config.
        tools: shared sandbox and grader.
    """

    name = "synthesize"
    uses_verifiers = True  # sandbox/grader settings join the settings and keys (runner)
    unit_in = "problems"
    unit_out = "programs"

    def __init__(self, cfg: DatagenConfig, tools: SharedTools) -> None:
        from verimath.reasoning.grading import GRADER_VERSION
        from verimath.reasoning.rollout import load_prompt

        self.cfg = cfg
        self.tools = tools
        self.batch_size = cfg.synth.batch_size
        self.formats = tuple(cfg.synth.formats)
        self.templates = {k: load_prompt(k) for k in ("pot", "tir")}
        self.max_chars = cfg.rollout.max_tool_output_chars
        self.timing: defaultdict[str, float] = defaultdict(float)
        self.fingerprint = fingerprint(
            "synthesize", SYNTH_VERSION, self.formats, self.templates["pot"].hash,
            self.templates["tir"].hash, GRADER_VERSION, self.max_chars,
        )

    def prepare(self, items: list[Item], todo: list[Item]) -> None:
        """Start the sandbox and grader (only when there is work)."""
        self.tools.sandbox()
        self.tools.grader()

    def provenance(self, kind: str) -> dict[str, Any]:
        """Provenance copied into every row (deterministic: no timings)."""
        from verimath.reasoning.grading import GRADER_VERSION

        return {"source_method": "reference", "model": None, "backend": None,
                "strategy": kind, "prompt_hash": self.templates[kind].hash,
                "grader_version": GRADER_VERSION, "isolation": self.tools.isolation,
                "reference": "calculator annotations of the reference solution",
                "synth_version": SYNTH_VERSION, "stage_fingerprint": self.fingerprint}

    def manifest_extra(self) -> dict[str, Any]:
        """Entries for the run manifest."""
        return {"synthesize": {"fingerprint": self.fingerprint, "version": SYNTH_VERSION,
                               "formats": list(self.formats),
                               "prompt_hashes": {k: t.hash for k, t in self.templates.items()},
                               "isolation": self.tools.isolation,
                               "augment": asdict(self.cfg.synth.augment)}}

    def process(self, items: list[Item]) -> list[Outcome]:
        """Build, run and grade the programs of a batch; then the TIR trajectories."""
        problems = [item_problem(it) for it in items]
        progs: list[RefProgram | None] = []
        outs: list[Outcome | None] = []
        for it, p in zip(items, problems, strict=True):
            try:
                progs.append(parse_reference(p.informal, str(p.meta.get("solution") or ""),
                                             p.answer))
                outs.append(None)
            except RefError as e:
                progs.append(None)
                outs.append(Outcome(rejected=[reject(it, str(e), self.unit_in)]))
        todo = [i for i, o in enumerate(outs) if o is None]
        t = time.perf_counter()
        codes = {i: pot_program(progs[i]) for i in todo}  # type: ignore[arg-type]
        results = dict(zip(todo, self.tools.sandbox().run_many([codes[i] for i in todo]),
                           strict=True))
        self.timing["sandbox_s"] += time.perf_counter() - t
        attempts = {i: pot_attempt(codes[i], results[i], self.max_chars) for i in todo}
        graded = [i for i in todo if attempts[i].answer is not None]
        t = time.perf_counter()
        verdicts = dict(zip(graded, self.tools.grader().grade_many(
            [(problems[i].answer, attempts[i].answer) for i in graded], extract=False),
            strict=True))
        self.timing["grade_s"] += time.perf_counter() - t
        verified = []
        for i in todo:
            why = _pot_failure(results[i], verdicts.get(i))
            if why:
                rec = {**items[i], "program": codes[i], "output": results[i].stdout[-400:],
                       "stderr": results[i].stderr[-400:]}
                outs[i] = Outcome(rejected=[reject(rec, why, self.unit_in)])
            else:
                verified.append(i)
        tir = self._tir_many([(problems[i], progs[i]) for i in verified])  # type: ignore[misc]
        tir = self._grade_tir([problems[i] for i in verified], tir)
        for i, tir_res in zip(verified, tir, strict=True):
            outs[i] = self._outcome(items[i], problems[i], progs[i], attempts[i],  # type: ignore[arg-type]
                                    verdicts[i], tir_res)
        return outs  # type: ignore[return-value]

    def _grade_tir(self, problems: list[Problem], tir: list[tuple[Attempt | None, Any]]
                   ) -> list[tuple[Attempt | None, Any]]:
        """Grade the answer step's printed value of each TIR trajectory against the gold.

        Returns ``(attempt, grader verdict)`` for a CORRECT one, else ``(None, reason)``.
        """
        from verimath.reasoning.extract import extract_program_output

        todo = [j for j, (a, _) in enumerate(tir) if a is not None]
        pairs = [(problems[j].answer, extract_program_output(
            tir[j][0].tool_calls[-1].output)) for j in todo]  # type: ignore[union-attr]
        out = list(tir)
        if not pairs:
            return out
        for j, v in zip(todo, self.tools.grader().grade_many(pairs, extract=False), strict=True):
            if v.correct:
                out[j] = (tir[j][0], v)
            else:
                why = _GRADE_REASON.get(v.status, "exec_mismatch")
                out[j] = (None, f"tir_{why}: {v.reason}")
        return out

    # ------------------------------------------------------------------ helpers

    def _outcome(self, it: Item, p: Problem, prog: RefProgram, attempt: Attempt,
                 verdict: Verdict, tir: tuple[Attempt | None, Any]) -> Outcome:
        from verimath.reasoning.rollout import to_trajectory

        rows, rejected = [], []
        if "pot" in self.formats:
            prov = {**self.provenance("pot"),
                    "tool_calls": [c.to_dict() for c in attempt.tool_calls]}
            traj = to_trajectory(p, self.templates["pot"].messages(p), attempt,
                                 {"grader": verdict}, prov)
            rows.append(export_row(traj, kind="pot", verified_by="execution",
                                   key=content_hash(it["key"], self.fingerprint, "pot"),
                                   answer=p.answer))
        tir_attempt, why = tir
        if "tir" in self.formats and tir_attempt is not None:
            steps = Verdict(VerdictStatus.CORRECT,
                            reason="every printed step value agrees with the text's claim",
                            detail={"cells": len(tir_attempt.tool_calls)})
            final = why  # the grader's verdict on the answer step's printed value
            prov = tir_row_prov(self.provenance("tir"), list(tir_attempt.tool_calls))
            traj = to_trajectory(p, self.templates["tir"].messages(p), tir_attempt,
                                 {"grader": final, "steps": steps}, prov)
            rows.append(export_row(traj, kind="tir", verified_by="execution",
                                   key=content_hash(it["key"], self.fingerprint, "tir"),
                                   answer=p.answer))
        elif "tir" in self.formats:
            rejected.append(reject({"key": content_hash(it["key"], "tir"), "problem_id": p.id,
                                    "detail": why}, str(why), "trajectories"))
        kept = {"key": it["key"], "problem": it["problem"], "program": prog.to_dict(),
                "rows": rows}
        return Outcome(kept=[kept], rejected=rejected)

    def _tir_many(self, pairs: list[tuple[Problem, RefProgram]]
                  ) -> list[tuple[Attempt | None, str | None]]:
        if "tir" not in self.formats or not pairs:
            return [(None, None)] * len(pairs)
        t = time.perf_counter()
        workers = max(1, self.cfg.sandbox.workers)
        with ThreadPoolExecutor(workers, thread_name_prefix="synth-tir") as pool:
            out = list(pool.map(lambda pp: self._tir_one(*pp), pairs))
        self.timing["tir_s"] += time.perf_counter() - t
        return out

    def _tir_one(self, p: Problem, prog: RefProgram) -> tuple[Attempt | None, str | None]:
        """One TIR trajectory: cells run in one session; (attempt, None) or (None, reason)."""
        spans: list[Span] = []
        calls: list[ToolCall] = []
        claims = {s.name: s for s in prog.steps}
        with self.tools.sandbox().session() as sess:
            for cell in make_tir_cells(prog):
                if cell.code is not None:
                    res = sess.run(cell.code)
                    call = tool_call(cell.code, res, self.max_chars)
                    calls.append(call)
                    if not judged(res):  # the one rule: SANDBOX_ERROR or a lost interpreter
                        return None, f"sandbox_error: {res.stderr.strip()[-200:]}"
                    if not res.ok:
                        return None, f"tir_exec_error: {res.status}"
                    printed = res.stdout.strip().splitlines()
                    if len(printed) != len(cell.steps):
                        return None, f"tir_mismatch: {len(printed)} lines for {len(cell.steps)}"
                    for name, line in zip(cell.steps, printed, strict=True):
                        st = claims[name]
                        if not matches_claim(line, st.claimed, st.claimed_text):
                            return None, f"tir_mismatch: {name} printed {line}, text says " \
                                         f"{st.claimed_text}"
                    spans.append(Span(SpanKind.MODEL, f"```python\n{cell.code}\n```\n"))
                    spans.append(Span(SpanKind.TOOL, f"```output\n{call.output}\n```\n"))
                if cell.text:
                    spans.append(Span(SpanKind.MODEL, cell.text + "\n"))
        spans.append(Span(SpanKind.MODEL, f"The answer is \\boxed{{{p.answer}}}."))
        joined = join_spans(spans)
        return Attempt(text="".join(s.text for s in joined), spans=joined,
                       tool_calls=tuple(calls), answer=p.answer), None


def _pot_failure(result: ExecResult, verdict: Verdict | None) -> str | None:
    """Why a PoT program is not verified, or None when it is."""
    if not judged(result):
        return f"sandbox_error: {result.stderr.strip()[-200:]}"
    if not result.ok:
        last = (result.stderr.strip().splitlines() or [str(result.status)])[-1]
        return f"exec_error: {result.status}: {last}"
    if verdict is None:
        return "exec_mismatch: the program printed nothing"
    if verdict.correct:
        return None
    return f"{_GRADE_REASON.get(verdict.status, 'exec_mismatch')}: {verdict.reason}"


def reference_rows(cfg: DatagenConfig, comps: Any, items: list[Item], run: Any,
                   owned: list[Any], manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Mode ``reference``: synthesize, augment, dedup + decontaminate the new problems.

    Args:
        cfg: the run config.
        comps: prebuilt components (``sandbox``, ``grader``).
        items: problem items after load / dedup / decontamination.
        run: the pipeline's ``run(stage, items) -> kept items`` (funnel + rejections).
        owned: receives what must be closed at the end.
        manifest: receives the stages' manifest entries.

    Returns:
        Export rows: the synthesized ones in input order, then the augmented ones.
    """
    from verimath.datagen.augment import AugmentStage
    from verimath.datagen.dedup import problem_text, text_hash
    from verimath.datagen.stages import DecontamStage

    tools = SharedTools(cfg, comps)
    owned.append(tools)
    synth = SynthStage(cfg, tools)
    owned.append(synth)  # its timing goes into funnel.json
    progs = run(synth, items)
    manifest.update(synth.manifest_extra())
    rows = [r for it in progs for r in it["rows"]]
    a = cfg.synth.augment
    if not (a.numeric_variants or a.backward):
        return rows
    aug = AugmentStage(cfg, tools)
    owned.append(aug)
    new = run(aug, progs)
    manifest.update(aug.manifest_extra())
    if cfg.dedup:
        originals = tuple(sorted({text_hash(problem_text(item_problem(it))) for it in items}))
        new = run(AugmentedDedupStage(originals=originals), new)
    if cfg.decontam.enabled and cfg.decontam.benchmarks:
        d = cfg.decontam
        new = run(DecontamStage(d.benchmarks, d.ngram, d.min_overlap,
                                name="decontaminate_augmented"), new)
    return rows + [r for it in new for r in it["rows"]]


@dataclass
class AugmentedDedupStage(DedupStage):
    """:class:`DedupStage` over new problems that also drops copies of an input problem.

    Args:
        originals: normalized-text hashes (:func:`verimath.datagen.dedup.text_hash`) of the input
            problems; part of the fingerprint, so other inputs re-run the stage.
    """

    name: str = "dedup_augmented"
    originals: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.fingerprint = fingerprint("dedup_augmented", "normalize-v1", self.originals)
        self._orig = frozenset(self.originals)

    def process(self, items: list[Item]) -> list[Outcome]:
        """First occurrences pass unless their text is an input problem's."""
        from verimath.datagen.dedup import problem_text, text_hash

        outs = []
        for it in items:
            if text_hash(problem_text(item_problem(it))) in self._orig:
                outs.append(Outcome(rejected=[reject(
                    it, "duplicate: same normalized text as an input problem", self.unit_in)]))
            else:
                outs.extend(super().process([it]))
        return outs

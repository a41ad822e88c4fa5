"""Formal stages: autoformalize -> compile filter -> back-translate -> judge -> prove.

The recipe of Lean Workbook (Ying et al. 2024) and DeepSeek-Prover (Xin et al. 2024):

* ``autoformalize``: the model writes Lean 4 statements from the informal problem (few-shot
  prompt ``datagen/prompts/autoformalize.yaml``); candidates are parsed, renamed to a stable
  theorem name and de-duplicated;
* ``compile``: the statement must elaborate with ``sorry`` as its proof
  (``ProofChecker.check_statement``);
* ``backtranslate`` + ``judge``: the model writes the statement back into natural language and
  a judge (the same or a larger model) decides whether it states the same problem; every
  disagreement (or unreadable judgment) goes to ``review.jsonl`` as well as ``rejected.jsonl``;
* ``prove``: whole-proof candidates for the statement *and* its negation
  (:func:`verimath.prover.lean_text.negate_statement`) are generated and audited by the
  ProofChecker. Statement proved: verified formal data. Negation proved: the formalization is false,
  dropped with that reason. Neither: kept as an open statement in ``open.jsonl`` -- unless a
  check could not be judged (a crashed or lost Lean; a proof's own Lean timeout is a failed
  proof, issue 18), which makes the outcome provisional
  (``proof_check_unjudged``), retried on resume like ``compile_check_failed``.

The stages see only the Backend and ProofChecker protocols, so tests run them with scripted
doubles and the code cannot tell the difference.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any

from verimath.datagen.config import DatagenConfig
from verimath.datagen.export import export_row, scrub_timing
from verimath.datagen.runner import Item, Outcome, reject
from verimath.datagen.stages import item_problem
from verimath.datagen.templates import load_template
from verimath.records import (
    Problem,
    Span,
    SpanKind,
    Trajectory,
    Verdict,
    VerdictStatus,
    content_hash,
    judged,
)

log = logging.getLogger(__name__)

#: The miniF2F / DeepSeek-Prover header, used when a problem brings none.
DEFAULT_HEADER = ("import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
                  "open BigOperators Real Nat Topology Rat\n\n")
_LEAN_BLOCK = re.compile(r"```(?:lean4?|Lean4?)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_DECL = re.compile(r"\b(theorem|lemma)\s")
_VERDICT = re.compile(r"VERDICT\s*:\s*\**\s*(SAME|DIFFERENT)", re.IGNORECASE)


def lean_code(text: str) -> str:
    """The first ```lean block of a completion, or the whole text when there is none."""
    m = _LEAN_BLOCK.search(text)
    return (m.group(1) if m else text).strip()


def theorem_name(problem_id: str) -> str:
    """A Lean identifier derived from a problem id (stable, collision-safe by hash suffix)."""
    base = re.sub(r"\W+", "_", problem_id, flags=re.ASCII).strip("_")[:48] or "problem"
    if base[0].isdigit():
        base = "p_" + base
    return f"{base}_{content_hash(problem_id, length=6)}"


def extract_statement(completion: str, name: str) -> str:
    """The theorem statement in a completion, renamed to ``name``, ending in ``:= by``.

    Raises:
        verimath.prover.lean_text.StatementError: no parsable ``theorem``/``lemma`` statement.
    """
    from verimath.prover.lean_text import StatementError, parse_statement

    code = lean_code(completion)
    m = _DECL.search(code)
    if not m:
        raise StatementError("no theorem or lemma in the completion")
    code = code[m.start():]
    cut = code.find(":=")
    if cut != -1:
        code = code[:cut]
    st = parse_statement(code)
    return replace(st, keyword="theorem", name=name, modifiers="").signature + " := by"


def parse_judgment(text: str) -> bool | None:
    """True for ``VERDICT: SAME``, False for ``VERDICT: DIFFERENT`` (last one wins); else None."""
    found = _VERDICT.findall(text)
    if not found:
        return None
    return found[-1].upper() == "SAME"


class FormalResources:
    """The model, judge model and proof checker shared by the formal stages, built lazily.

    Args:
        cfg: the run config.
        comps: :class:`verimath.datagen.pipeline.Components`; given objects are used as they are
            (and not closed), missing ones are built on first use and closed by :meth:`close`.
    """

    def __init__(self, cfg: DatagenConfig, comps: Any) -> None:
        self.cfg = cfg
        self.comps = comps
        self._backend = comps.backend
        self._judge = comps.judge_backend
        self._checker = comps.checker
        self._owned: list[Any] = []
        self.model_s = 0.0

    @property
    def model_id(self) -> str:
        """The generation model's name (no loading)."""
        return str(getattr(self.comps.backend, "model_id", None) or self.cfg.backend.model)

    @property
    def checker_provenance(self) -> dict[str, Any]:
        """Which ProofChecker judges (no building): ``{"name", "test_double"}``."""
        if self.comps.checker is not None:
            return checker_provenance(self.comps.checker)
        name = self.cfg.formal.prover.backend
        return {"name": name, "test_double": name == "scripted"}

    @property
    def judge_id(self) -> str:
        """The judge model's name (no loading)."""
        if self.comps.judge_backend is not None:
            return str(getattr(self.comps.judge_backend, "model_id", "judge"))
        return self.cfg.formal.judge_model or self.model_id

    def backend(self) -> Any:
        """The generation model."""
        if self._backend is None:
            from verimath.backends import load_backend

            self._backend = load_backend(self.cfg.backend)
            self._owned.append(self._backend)
        return self._backend

    def judge(self) -> Any:
        """The judge model (the generation model unless ``formal.judge_model`` is set)."""
        if self._judge is None:
            if not self.cfg.formal.judge_model:
                return self.backend()
            from verimath.backends import load_backend

            self._judge = load_backend(replace(self.cfg.backend, model=self.cfg.formal.judge_model))
            self._owned.append(self._judge)
        return self._judge

    def checker(self) -> Any:
        """The ProofChecker (compile filter and proof audit)."""
        if self._checker is None:
            self._checker = build_checker(self.cfg)
            self._owned.append(self._checker)
        return self._checker

    def generate(self, which: str, prompts: list[list[dict[str, str]]], params: Any) -> Any:
        """``generate`` on the generation (``which="model"``) or judge model, timed."""
        if not prompts:
            return []
        b = self.judge() if which == "judge" else self.backend()
        t = time.perf_counter()
        try:
            return b.generate(prompts, params)
        finally:
            self.model_s += time.perf_counter() - t

    def close(self) -> None:
        """Close what was built here."""
        for o in reversed(self._owned):
            close = getattr(o, "close", None)
            if close is not None:
                close()
        self._owned.clear()


def checker_provenance(checker: Any) -> dict[str, Any]:
    """``{"name", "test_double"}`` of a ProofChecker (its provenance in every record).

    ``test_double`` is the class attribute a double (``verimath.prover.scripted.ScriptedChecker``)
    sets, so a double's verdicts are never taken for Lean's.
    """
    return {"name": str(getattr(checker, "name", type(checker).__name__)),
            "test_double": bool(getattr(checker, "test_double", False))}


def build_checker(cfg: DatagenConfig) -> Any:
    """The ProofChecker named by ``cfg.formal.prover`` (``repl``, ``kimina``, ``scripted`` double).

    Raises:
        ValueError: an unknown backend name.
        verimath.prover.types.LeanUnavailable: a real backend without a usable Lean project.
    """
    s = cfg.formal.prover
    if s.backend == "scripted":
        from verimath.prover.scripted import ScriptedChecker

        return ScriptedChecker()
    if s.backend == "repl":
        from verimath.prover.checker import LeanChecker
        from verimath.prover.repl import ReplConfig, ReplPool
        from verimath.prover.toolchain import require_lean

        project = require_lean(s.project_dir)
        pool = ReplPool(ReplConfig(project_dir=str(project.path), workers=s.workers,
                                   timeout_s=s.timeout_s), project.version)
        return LeanChecker(pool, timeout_s=s.timeout_s)
    if s.backend == "kimina":
        from verimath.prover.checker import LeanBackendConfig, LeanChecker

        lean = LeanBackendConfig(backend="kimina", url=s.url, api_key_env=s.api_key_env,
                                 concurrency=s.workers)
        return LeanChecker(lean.kimina_runner(s.timeout_s), timeout_s=s.timeout_s)
    raise ValueError("formal.prover.backend must be 'scripted', 'repl' or 'kimina' "
                     f"(got {s.backend!r})")


class _ModelStage:
    """Shared parts of the formal stages."""

    name = ""
    unit_in = "statements"
    unit_out = "statements"
    batch_size = 8

    def __init__(self, cfg: DatagenConfig, res: FormalResources) -> None:
        self.cfg = cfg
        self.res = res
        self.timing: defaultdict[str, float] = defaultdict(float)

    def params(self, n: int = 1, temperature: float | None = None) -> Any:
        from verimath.backends import SamplingParams

        f = self.cfg.formal
        temp = f.temperature if temperature is None else temperature
        return SamplingParams(n=n, temperature=temp, top_p=0.95, max_tokens=f.max_tokens,
                              seed=f.seed)

    def _fingerprint(self, only: tuple[str, ...], **extra: Any) -> str:
        """Set ``self.settings`` (the config keys under ``only`` + ``extra``); its hash."""
        from verimath.datagen.config import stage_settings
        from verimath.jobs import fingerprint_of

        self.settings = stage_settings(self.cfg, only, **extra)
        return fingerprint_of(self.settings)

    def prepare(self, items: list[Item], todo: list[Item]) -> None:
        """Nothing to prepare; models are built on first use."""

    def child(self, it: Item, j: int, **fields: Any) -> Item:
        """A copy of ``it`` with ``fields`` and a new key for output ``j``."""
        key = content_hash(it["key"], self.fingerprint, j, fields.get("statement", ""))  # type: ignore[attr-defined]
        return {**it, **fields, "key": key}


class AutoformalizeStage(_ModelStage):
    """Informal problem -> candidate Lean statements (see the module docstring)."""

    name = "autoformalize"
    unit_in = "problems"
    unit_out = "statements"

    def __init__(self, cfg: DatagenConfig, res: FormalResources) -> None:
        super().__init__(cfg, res)
        f = cfg.formal
        self.template = load_template(f.prompt_path("autoformalize"), ("informal",))
        self.fingerprint = self._fingerprint(
            ("backend", "formal.autoformalize_prompt", "formal.n_formalizations",
             "formal.temperature", "formal.max_tokens", "formal.seed",
             "formal.use_given_statement"), model=res.model_id, prompt_hash=self.template.hash)

    def process(self, items: list[Item]) -> list[Outcome]:
        """Generate ``n_formalizations`` statements per problem; keep the distinct parsable ones."""
        from verimath.prover.lean_text import StatementError, normalize_statement

        f = self.cfg.formal
        problems = [item_problem(it) for it in items]
        ask = [i for i, p in enumerate(problems)
               if not (f.use_given_statement and p.formal_statement)]
        prompts = [self.template.messages(informal=problems[i].informal) for i in ask]
        gens = dict(zip(ask, self.res.generate("model", prompts,
                                               self.params(f.n_formalizations)), strict=True))
        outs = []
        for i, (it, p) in enumerate(zip(items, problems, strict=True)):
            name = theorem_name(p.id)
            texts = ([p.formal_statement or ""] if i not in gens
                     else [c.text for c in gens[i]])
            origin = "given" if i not in gens else "model"
            o = Outcome()
            seen: set[str] = set()
            for j, text in enumerate(texts):
                try:
                    st = extract_statement(text, name)
                except StatementError as e:
                    o.rejected.append(reject({"problem_id": p.id, "completion": text},
                                             f"unparsable_statement: {e}", "statements"))
                    continue
                norm = normalize_statement(st)
                if norm in seen:
                    o.rejected.append(reject({"problem_id": p.id, "statement": st},
                                             "duplicate_statement", "statements"))
                    continue
                seen.add(norm)
                o.kept.append(self.child(it, j, statement=st, header=p.header or DEFAULT_HEADER,
                                         formalized_by=origin, verdicts={},
                                         autoformalize_completion=text))
            if not o.kept:
                o.rejected.append(reject(it, "no_statement: no parsable Lean statement",
                                         self.unit_in))
            outs.append(o)
        return outs


class CompileStage(_ModelStage):
    """Keep statements that elaborate with ``sorry`` as their proof."""

    name = "compile"

    def __init__(self, cfg: DatagenConfig, res: FormalResources) -> None:
        super().__init__(cfg, res)
        self.fingerprint = self._fingerprint(("formal.prover.backend",
                                              "formal.prover.project_dir"),
                                             checker=res.checker_provenance)

    def process(self, items: list[Item]) -> list[Outcome]:
        """``check_statement`` each item (a few in parallel)."""
        checker = self.res.checker()
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.cfg.formal.prover.workers) as pool:
            checks = list(pool.map(lambda it: checker.check_statement(it["statement"],
                                                                      it["header"]), items))
        self.timing["compile_s"] += time.perf_counter() - t
        outs = []
        for it, c in zip(items, checks, strict=True):
            status = str(c.status)
            v = Verdict(VerdictStatus.CORRECT if c.compiles else (
                VerdictStatus.WRONG if status in ("error", "rejected") else VerdictStatus.ERROR),
                reason="; ".join(c.errors[:2]) or status,
                detail={**scrub_timing(c.to_dict()), "checker": checker_provenance(checker)})
            if c.compiles:
                kept = {**it, "verdicts": {**it["verdicts"], "compile": v.to_dict()}}
                outs.append(Outcome(kept=[kept]))
            elif v.status is VerdictStatus.WRONG:
                outs.append(Outcome(rejected=[reject(
                    it, f"does_not_compile: {v.reason[:300]}", self.unit_in)]))
            else:
                outs.append(Outcome(rejected=[reject(
                    it, f"compile_check_failed: {status}: {v.reason[:300]}", self.unit_in)],
                    unjudged=["compile_check_failed"]))
        return outs


class BacktranslateStage(_ModelStage):
    """Lean statement -> natural language (for the judge)."""

    name = "backtranslate"

    def __init__(self, cfg: DatagenConfig, res: FormalResources) -> None:
        super().__init__(cfg, res)
        self.template = load_template(cfg.formal.prompt_path("backtranslate"), ("statement",))
        self.fingerprint = self._fingerprint(
            ("backend", "formal.backtranslate_prompt", "formal.max_tokens", "formal.seed"),
            model=res.model_id, prompt_hash=self.template.hash)

    def process(self, items: list[Item]) -> list[Outcome]:
        """One greedy back-translation per statement."""
        prompts = [self.template.messages(statement=it["statement"]) for it in items]
        gens = self.res.generate("model", prompts, self.params(1, 0.0))
        outs = []
        for it, g in zip(items, gens, strict=True):
            text = g[0].text.strip()
            if not text:
                outs.append(Outcome(rejected=[reject(it, "empty_back_translation",
                                                     self.unit_in)]))
            else:
                outs.append(Outcome(kept=[{**it, "back_translation": text}]))
        return outs


class JudgeStage(_ModelStage):
    """Judge whether the back-translation states the same problem as the original."""

    name = "judge"

    def __init__(self, cfg: DatagenConfig, res: FormalResources) -> None:
        super().__init__(cfg, res)
        self.template = load_template(cfg.formal.prompt_path("judge"),
                                      ("original", "back_translation"))
        self.fingerprint = self._fingerprint(
            ("backend", "formal.judge_model", "formal.judge_prompt", "formal.max_tokens",
             "formal.seed"), judge=res.judge_id, prompt_hash=self.template.hash)

    def process(self, items: list[Item]) -> list[Outcome]:
        """Greedy judgment per statement; disagreements and unclear answers go to review."""
        prompts = [self.template.messages(original=item_problem(it).informal,
                                          back_translation=it["back_translation"])
                   for it in items]
        gens = self.res.generate("judge", prompts, self.params(1, 0.0))
        outs = []
        for it, g in zip(items, gens, strict=True):
            text = g[0].text.strip()
            same = parse_judgment(text)
            status = {True: VerdictStatus.CORRECT, False: VerdictStatus.WRONG,
                      None: VerdictStatus.NO_ANSWER}[same]
            v = Verdict(status, reason=text[-300:], detail={"judge_model": self.res.judge_id})
            new = {**it, "verdicts": {**it["verdicts"], "judge": v.to_dict()}}
            if same:
                outs.append(Outcome(kept=[new]))
                continue
            reason = "inconsistent: judge says the statements differ" if same is False \
                else "judge_unclear: no VERDICT line"
            review = {"problem_id": item_problem(it).id, "original": item_problem(it).informal,
                      "statement": it["statement"], "back_translation": it["back_translation"],
                      "judgment": text, "reason": reason}
            outs.append(Outcome(rejected=[reject(new, reason, self.unit_in)],
                                side={"review": [review]}))
        return outs


class ProveStage(_ModelStage):
    """Prove the statement and its negation with model proofs audited by the ProofChecker.

    Pipelined: ``generate`` samples proof candidates (model time), ``verify`` audits them
    with ``check_many`` on the runner's worker thread while the next batch generates.
    """

    name = "prove"
    unit_out = "proofs"

    def __init__(self, cfg: DatagenConfig, res: FormalResources) -> None:
        super().__init__(cfg, res)
        self.template = load_template(cfg.formal.prompt_path("prove"), ("statement",))
        self.fingerprint = self._fingerprint(
            ("backend", "formal.prove_prompt", "formal.temperature", "formal.max_tokens",
             "formal.seed", "formal.prover"), model=res.model_id, prompt_hash=self.template.hash,
            checker=res.checker_provenance)

    def _targets(self, it: Item) -> list[tuple[str, str]]:
        """``[("statement", text), ("negation", text)]`` (negation when it can be built)."""
        from verimath.prover.lean_text import StatementError, negate_statement

        out = [("statement", it["statement"])]
        if self.cfg.formal.prover.prove_negation:
            try:
                out.append(("negation", negate_statement(it["statement"])))
            except StatementError as e:
                log.info("%s: no negation (%s)", it["key"], e)
        return out

    def generate(self, items: list[Item]) -> list[dict[str, list[str]]]:
        """Proof candidates per target: ``[{"statement": [...], "negation": [...]}]``."""
        n = self.cfg.formal.prover.attempts
        targets = [self._targets(it) for it in items]
        flat = [(i, kind, text) for i, ts in enumerate(targets) for kind, text in ts]
        out: list[dict[str, list[str]]] = [{k: [] for k, _ in ts} for ts in targets]
        if n > 0 and flat:
            prompts = [self.template.messages(statement=text) for _, _, text in flat]
            gens = self.res.generate("model", prompts, self.params(n))
            for (i, kind, _), g in zip(flat, gens, strict=True):
                out[i][kind] = [c.text for c in g]
        return out

    def process(self, items: list[Item]) -> list[Outcome]:
        """Generate and verify in one go (when not pipelined)."""
        return self.verify(items, self.generate(items))

    def verify(self, items: list[Item], cands: list[dict[str, list[str]]]) -> list[Outcome]:
        """Audit every candidate; decide proved / refuted / open per statement."""
        from verimath.prover.types import ProofTask

        checker = self.res.checker()
        tasks, where = [], []
        for i, (it, per) in enumerate(zip(items, cands, strict=True)):
            targets = dict(self._targets(it))
            for kind, proofs in per.items():
                for j, proof in enumerate(proofs):
                    tasks.append(ProofTask(formal_statement=targets[kind], header=it["header"],
                                           proof=lean_code(proof), name=item_problem(it).id))
                    where.append((i, kind, j))
        t = time.perf_counter()
        verdicts = checker.check_many(tasks) if tasks else []
        self.timing["proof_check_s"] += time.perf_counter() - t
        found: list[dict[str, tuple[str, Verdict] | None]] = [
            {"statement": None, "negation": None} for _ in items]
        fails: list[Counter[str]] = [Counter() for _ in items]
        unjudged = [0] * len(items)
        for (i, kind, _), task, v in zip(where, tasks, verdicts, strict=True):
            if v.correct and found[i][kind] is None:
                found[i][kind] = (task.proof, v)
            elif not v.correct:
                fails[i][f"{kind}:{v.status}"] += 1
                unjudged[i] += not judged(v)
        return [self._decide(it, f, c, getattr(checker, "lean", None), n)
                for it, f, c, n in zip(items, found, fails, unjudged, strict=True)]

    def _decide(self, it: Item, found: dict[str, tuple[str, Verdict] | None],
                fails: Counter[str], lean: Any, n_unjudged: int = 0) -> Outcome:
        proof, neg = found["statement"], found["negation"]
        summary = dict(fails)
        if proof and neg:
            reason = "both_proved: statement and negation both checked (checker problem?)"
            rec = {**it, "proof": proof[0], "negation_proof": neg[0]}
            return Outcome(rejected=[reject(rec, reason, self.unit_in)],
                           side={"review": [{"problem_id": item_problem(it).id,
                                             "statement": it["statement"], "reason": reason}]})
        if neg:
            rec = {**it, "negation_proof": neg[0],
                   "verdicts": {**it["verdicts"], "negation": neg[1].to_dict()}}
            return Outcome(rejected=[reject(rec, "false_formalization: negation proved",
                                            self.unit_in)])
        if proof is None and n_unjudged:  # a timed-out / crashed check might have been the proof
            return Outcome(rejected=[reject(
                it, f"proof_check_unjudged: {n_unjudged} proof checks could not be judged",
                self.unit_in)], unjudged=["proof_check_unjudged"])
        if proof is None:
            rec = {"problem": it["problem"], "statement": it["statement"],
                   "header": it["header"], "verdicts": it["verdicts"], "attempts": summary,
                   "checker": self.res.checker_provenance}
            return Outcome(rejected=[reject(it, "open: no proof or disproof within budget",
                                            self.unit_in)], side={"open": [rec]})
        return Outcome(kept=[self._row(it, proof[0], proof[1], lean)])

    def _row(self, it: Item, proof: str, verdict: Verdict, lean: Any) -> dict[str, Any]:
        p = item_problem(it)
        problem = Problem(id=p.id, source=p.source, informal=p.informal, answer=p.answer,
                          formal_statement=it["statement"], header=it["header"],
                          meta={**p.meta, "original_formal_statement": p.formal_statement,
                                "formalized_by": it.get("formalized_by")})
        messages = self.template.messages(statement=it["statement"])
        kept = [m for m in messages if m["role"] == "system"][:1] + [messages[-1]]
        body = proof if proof.lstrip().startswith(("theorem", "lemma")) else (
            it["statement"] + "\n" + proof)
        answer_text = f"```lean\n{body.strip()}\n```"
        verdicts = {k: Verdict.from_dict(v) for k, v in it["verdicts"].items()}
        verdicts["proof"] = verdict
        prov = {
            "model": self.res.model_id, "judge_model": self.res.judge_id,
            "prompt_hash": self.template.hash,
            "prover": asdict(self.cfg.formal.prover),
            "lean": lean.to_dict() if hasattr(lean, "to_dict") else None,
            "back_translation": it.get("back_translation"),
            "checker": self.res.checker_provenance,
            "stage_fingerprint": self.fingerprint,
        }
        traj = Trajectory(problem=problem,
                          messages=(*kept, {"role": "assistant", "content": answer_text}),
                          spans=(Span(SpanKind.MODEL, answer_text),), verdicts=verdicts,
                          provenance=prov)
        return export_row(traj, kind="formal", verified_by="proof",
                          key=content_hash(it["key"], self.fingerprint, proof), answer=None)


def formal_stages(cfg: DatagenConfig, comps: Any) -> list[Any]:
    """The formal stages in order, sharing one :class:`FormalResources` (closed by the last)."""
    res = FormalResources(cfg, comps)
    stages: list[Any] = [AutoformalizeStage(cfg, res), CompileStage(cfg, res),
                         BacktranslateStage(cfg, res), JudgeStage(cfg, res),
                         ProveStage(cfg, res)]
    last = stages[-1]

    def close() -> None:
        last.timing["model_generate_s"] += res.model_s
        res.model_s = 0.0
        res.close()

    def manifest_extra() -> dict[str, Any]:
        return {"formal": {
            "model": res.model_id, "judge_model": res.judge_id,
            "prompt_hashes": {s.name: s.template.hash for s in stages if hasattr(s, "template")},
            "fingerprints": {s.name: s.fingerprint for s in stages},
            "prover": asdict(cfg.formal.prover),
        }}

    last.close = close  # type: ignore[attr-defined]
    last.manifest_extra = manifest_extra  # type: ignore[attr-defined]
    return stages

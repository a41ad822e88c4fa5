"""Verifier reward functions for GRPO and the registry that builds them from a config.

Every reward function has TRL's calling convention and our one signature (DESIGN.md style 3):

    fn(completions: list[str] | list[list[dict]], *, <dataset columns>: list, **_)
        -> list[float | None]

* ``completions``: shape (B*G,); TRL passes plain strings for standard prompts and
  ``[{"role": "assistant", "content": ...}, ...]`` message lists for conversational prompts (tool
  turns included); :func:`completion_text` accepts both.
* return: shape (B*G,); ``None`` means "could not judge" (sandbox ``SANDBOX_ERROR`` or a lost
  interpreter, grader ``TIMEOUT``/``ERROR``/``BAD_GOLD``, a crashed or lost Lean, a verifier
  call that hung past its own per-item limit). Only these known infrastructure failures become
  None: what :func:`verimath.records.judged` calls not judged, and the exceptions of
  :func:`infra_exceptions` (``SandboxError``, ``GraderUnavailable``, ``ProverInfraError``). Any
  other exception (a code bug, a wrong dataset column) propagates and stops training.
* what the completion itself caused is judged, never None (issue 18: a None leaves the sample
  out of its GRPO group, so a policy would be paid to break the verifier): an answer that
  reproducibly runs the grader out of its limits (``UNVERIFIABLE``), a program's own timeout,
  memory or crash, a proof that runs Lean out of its time limit all get 0.0.

TRL turns ``None`` into NaN and leaves the sample out of the group baseline;
:class:`verimath.rl.trainer.VerifierGRPOTrainer` additionally skips the sample's shaping terms.
An infrastructure failure is never scored 0.0 or 1.0. Each call logs its failure rate through
TRL's ``log_metric`` as ``rewards/<name>/infra_failure_rate``.

Verifier rewards (``answer``, ``proof``) run their checks concurrently (sandbox pool, grader
worker processes, proof checker), each call with a deadline of its own derived from its
verifiers' limits (:meth:`VerifierPool.item_limit_s`,
:func:`verimath.rl.concurrency.map_with_deadline`); the batch deadline is only a safety net.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from verimath.records import Verdict, VerdictStatus, judged
from verimath.rl.concurrency import map_with_deadline

log = logging.getLogger(__name__)

RewardFn = Callable[..., list[float | None]]

#: judged verdict status -> reward (every judged status; the rest, "could not judge", give None).
VERDICT_REWARD: Mapping[VerdictStatus, float] = {
    s: 1.0 if s is VerdictStatus.CORRECT else 0.0 for s in VerdictStatus if s.judged
}

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
#: a ```output block: tool output. In a plain completion the model may have written it itself
#: (fabricated evidence), so answers are never read from one (issue 18)
_OUTPUT_BLOCK_RE = re.compile(r"```output[ \t]*\n.*?(?:\n```|\Z)", re.DOTALL)
_PY_BLOCK_RE = re.compile(r"```(?:python|py)[ \t]*\n(.*?)\n```", re.DOTALL)
_LEAN_BLOCK_RE = re.compile(r"```(?:lean4?|lean)[ \t]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


class GraderLike(Protocol):
    """What the answer reward needs of :class:`verimath.reasoning.grading.Grader`."""

    def grade(self, gold: str | None, pred: str | None, *, extract: bool = True) -> Verdict:
        """Judge ``pred`` against ``gold``."""
        ...


class SandboxLike(Protocol):
    """What PoT rewards need of :class:`verimath.reasoning.sandbox.Sandbox` (``run``)."""

    def run(self, code: str) -> Any:
        """Run ``code`` once; returns an ``ExecResult``."""
        ...


class ProofCheckerLike(Protocol):
    """Whole-proof checking with an audited verdict (:class:`~.types.ProofChecker`)."""

    def check(self, task: Any) -> Verdict:
        """CORRECT / WRONG / TIMEOUT / ERROR for the ``verimath.prover.types.ProofTask``'s proof."""
        ...


def completion_text(
    completion: str | Sequence[Mapping[str, Any]], roles: tuple[str, ...] | None = None
) -> str:
    """The completion as one string: a str as is, or the concatenated message contents.

    Args:
        completion: a plain completion, or TRL's conversational completion (assistant and tool
            messages in order; ``content`` may be a str, a list of ``{"type": "text"}`` parts,
            or missing).
        roles: keep only messages with these roles (e.g. ``("assistant",)`` to leave tool
            output out of answer extraction); None keeps all.
    """
    if isinstance(completion, str):
        return completion
    parts: list[str] = []
    for msg in completion:
        if roles is not None and msg.get("role") not in roles:
            continue
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "".join(parts)


def verdict_reward(verdict: Verdict | None) -> float | None:
    """1.0 for CORRECT, 0.0 for any other judged verdict, None for what could not be judged.

    Judged-or-not is :func:`verimath.records.judged`: WRONG, NO_ANSWER and UNVERIFIABLE give 0.0.
    """
    if not judged(verdict):
        return None
    assert verdict is not None
    return VERDICT_REWARD[verdict.status]


def _log_failure_rate(
    name: str, rewards: Sequence[float | None], kwargs: Mapping[str, Any]
) -> None:
    n_fail = sum(r is None for r in rewards)
    rate = n_fail / len(rewards) if rewards else 0.0
    log_metric = kwargs.get("log_metric")
    if callable(log_metric):
        log_metric(f"rewards/{name}/infra_failure_rate", rate)
    if n_fail:
        log.info("reward %s: %d/%d samples could not be judged (skipped)",
                 name, n_fail, len(rewards))


@dataclass
class VerifierPool:
    """The verifiers a reward function may call, plus the batch concurrency limits.

    Attributes:
        grader: answer equivalence (``verimath.reasoning.grading.Grader``); None if no answer
        reward.
        sandbox: Python sandbox pool (``verimath.reasoning.sandbox.Sandbox``); needed for PoT
        answers.
        checker: whole-proof checker (prover); needed for the proof reward.
        workers: concurrent verifier calls per batch.
        item_timeout_s: wall-clock seconds one verifier call may take (from its own start);
            None derives it from the verifiers' own limits (:meth:`item_limit_s`). It is a
            safety net: a call past it hung past its verifier's limits, so it gets None
            (could not judge). Never a per-batch deadline: a sample is never decided by its
            place in the queue.
    """

    grader: GraderLike | None = None
    sandbox: SandboxLike | None = None
    checker: ProofCheckerLike | None = None
    workers: int = 4
    item_timeout_s: float | None = None

    def item_limit_s(self) -> float:
        """Seconds one verifier call may take (the per-item safety net).

        The sum of its verifiers' call budgets, times the queueing a call can meet inside a
        verifier with fewer slots than ``workers``, plus a 10 s margin.
        """
        if self.item_timeout_s is not None:
            return self.item_timeout_s
        budget, slots = 0.0, []
        for comp in (self.grader, self.sandbox, self.checker):
            if comp is None:
                continue
            budget += _call_budget_s(comp)
            n = getattr(comp, "parallelism", None)  # a proof checker, a remote grader
            if not isinstance(n, int):
                n = getattr(getattr(comp, "config", None), "workers", None)
            if isinstance(n, int) and n > 0:
                slots.append(n)
        queueing = max(1, -(-self.workers // min(slots))) if slots else 1
        return budget * queueing + 10.0

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``fn`` over ``items`` concurrently; None for an item that hung or hit an infra error.

        Raises:
            Exception: the first exception of an item that is not an infrastructure failure
                (:func:`infra_exceptions`): a bug is not "could not judge".
        """
        outs = map_with_deadline(fn, items, workers=self.workers,
                                 item_timeout_s=self.item_limit_s())
        infra = infra_exceptions()
        for o in outs:
            if o.exception is not None and not isinstance(o.exception, infra):
                raise o.exception
        return [o.value if o.ok else None for o in outs]


def _call_budget_s(component: Any) -> float:
    """Upper bound of one call's wall time on ``component`` (its limits plus its overheads).

    A component with its own ``call_budget_s()`` (a proof checker, a remote grader): that; a
    grader or a sandbox: its config's ``call_budget_s()`` (:meth:`GraderConfig.call_budget_s`,
    :meth:`SandboxConfig.call_budget_s`); else its ``timeout_s`` times (crash retries + 1) plus
    a margin; an object with none of these: 60 s.
    """
    if callable(getattr(component, "call_budget_s", None)):  # a LeanChecker, a RemoteGrader
        return float(component.call_budget_s())
    cfg = getattr(component, "config", None)
    if callable(getattr(cfg, "call_budget_s", None)):
        return float(cfg.call_budget_s())
    t = getattr(component, "timeout_s", None)
    if isinstance(t, int | float):
        return float(t) * (int(getattr(component, "crash_retries", 0)) + 1) + 30.0
    return 60.0


def infra_exceptions() -> tuple[type[BaseException], ...]:
    """The exception types a reward maps to None: the verifier, not the sample, failed."""
    from verimath.prover.types import ProverInfraError
    from verimath.reasoning.grading import GraderUnavailable
    from verimath.reasoning.sandbox.result import SandboxError

    return (SandboxError, GraderUnavailable, ProverInfraError)


@dataclass
class AnswerReward:
    """Answer correctness: extract the final answer, grade it against the ``answer`` column.

    * ``cot`` / ``tir``: the grader extracts the answer from the completion text (for TIR the
      rollout passes ``tir_answer`` and ``tir_error`` columns: the answer found in the model's
      own text or the last program output, and whether the sandbox failed).
    * ``pot``: the ```python block runs once in the sandbox; its printed output is graded.
      A ``SANDBOX_ERROR`` (or a lost interpreter) gives None; the program's own timeout,
      memory or crash is judged: 0.0.

    Call: ``(completions: (N,), *, answer: (N,) list[str | None], **_) -> (N,) list[float | None]``.
    A row whose gold ``answer`` is None gives None (no gold, cannot judge).
    """

    pool: VerifierPool
    strategy: str = "cot"
    name: str = "answer"

    def __post_init__(self) -> None:
        self.__name__ = self.name  # what TRL logs the column as

    def __call__(
        self, completions: Sequence[Any], *, answer: Sequence[str | None], **kwargs: Any
    ) -> list[float | None]:
        """Rewards in [0, 1] or None, one per completion."""
        if self.pool.grader is None:
            raise ValueError("answer reward needs a grader (VerifierPool.grader)")
        texts = [completion_text(c, roles=("assistant",)) for c in completions]
        tir_answer = kwargs.get("tir_answer")
        tir_error = kwargs.get("tir_error")
        envs = kwargs.get("environments")
        if tir_error is None and envs is not None:
            tir_error = [bool(getattr(e, "infra_error", False)) for e in envs]
        jobs = list(zip(texts, answer, range(len(texts)), strict=True))

        def judge(job: tuple[str, str | None, int]) -> float | None:
            text, gold, i = job
            if gold is None:
                return None
            if self.strategy != "pot" and tir_error is not None and tir_error[i]:
                return None
            if self.strategy != "pot" and tir_answer is not None:
                pred = tir_answer[i]
                if pred is None:
                    return 0.0
                return verdict_reward(self.pool.grader.grade(gold, pred, extract=False))
            return verdict_reward(self.verdict(text, gold))

        rewards = self.pool.map(judge, jobs)
        _log_failure_rate(self.name, rewards, kwargs)
        return rewards

    def verdict(self, text: str, gold: str) -> Verdict:
        """The verdict on one plain completion against ``gold`` (no TIR rollout columns).

        PoT: the ```python block runs once in the sandbox; a sandbox failure is ERROR (reason
        ``sandbox_error: ...``, could not judge), no printed answer NO_ANSWER, else the grader's
        verdict on the printed answer. CoT / TIR: the grader's verdict on the text, with the
        ```output blocks the completion wrote itself left out (fabricated evidence, issue 18).

        Raises:
            SandboxError / GraderUnavailable: a verifier cannot start (could not judge).
        """
        if self.pool.grader is None:
            raise ValueError("answer reward needs a grader (VerifierPool.grader)")
        if self.strategy != "pot":
            return self.pool.grader.grade(gold, _OUTPUT_BLOCK_RE.sub("", text), extract=True)
        from verimath.reasoning.rollout import Strategy, finalize_completion

        attempt = finalize_completion(text, Strategy.POT, self.pool.sandbox)  # type: ignore[arg-type]
        if attempt.finish_reason == "error":
            return Verdict(VerdictStatus.ERROR, "sandbox_error: the sandbox failed")
        if attempt.answer is None:
            return Verdict(VerdictStatus.NO_ANSWER, "the program printed no answer")
        return self.pool.grader.grade(gold, attempt.answer, extract=False)


def extract_lean_proof(text: str) -> str | None:
    """The last ```lean4 block of ``text`` (closed or running to the end); None if there is none."""
    blocks = _LEAN_BLOCK_RE.findall(text)
    return blocks[-1] if blocks else None


@dataclass
class ProofReward:
    """Proof validity from the audited whole-proof checker.

    Call: ``(completions: (N,), *, formal_statement: (N,) list[str | None], header: (N,)
    list[str | None] = None, **_) -> (N,)``. 1.0 for an audited CORRECT proof, 0.0 for WRONG,
    for a proof that ran Lean out of its time limit (UNVERIFIABLE: the proof's own failure) or
    a completion without a ```lean4 block; None for ERROR (a crashed or lost Lean, a server
    error) and for rows with no formal statement (informal problems in a mixed batch).
    """

    pool: VerifierPool
    name: str = "proof"

    def __post_init__(self) -> None:
        self.__name__ = self.name  # what TRL logs the column as

    def __call__(
        self, completions: Sequence[Any], *, formal_statement: Sequence[str | None],
        header: Sequence[str | None] | None = None, **kwargs: Any,
    ) -> list[float | None]:
        """Rewards in {0, 1} or None, one per completion."""
        checker = self.pool.checker
        if checker is None:
            raise ValueError("proof reward needs a proof checker (VerifierPool.checker)")
        headers = list(header) if header is not None else [None] * len(completions)
        jobs = list(zip((completion_text(c) for c in completions), formal_statement, headers,
                        strict=True))

        def judge(job: tuple[str, str | None, str | None]) -> float | None:
            text, stmt, hdr = job
            if stmt is None:
                return None
            proof = extract_lean_proof(text)
            if proof is None:
                return 0.0
            return verdict_reward(checker.check(ProofTask(stmt, hdr or "", proof)))

        from verimath.prover.types import ProofTask

        rewards = self.pool.map(judge, jobs)
        _log_failure_rate(self.name, rewards, kwargs)
        return rewards


@dataclass
class FormatReward:
    r"""Shaping: 1.0 when the completion has the strategy's expected shape, else 0.0.

    * ``cot`` / ``tir``: a ``\\boxed{...}`` final answer, and (TIR) every ```python block closed;
    * ``pot``: a closed ```python block that prints;
    * ``proof``: a ```lean4 block.

    Call: ``(completions: (N,), **_) -> (N,) list[float]`` (never None: nothing external runs).
    """

    strategy: str = "cot"
    name: str = "format"

    def __post_init__(self) -> None:
        self.__name__ = self.name  # what TRL logs the column as

    def __call__(self, completions: Sequence[Any], **_: Any) -> list[float | None]:
        """Rewards in {0, 1}."""
        return [self._score(completion_text(c)) for c in completions]

    def _score(self, text: str) -> float:
        if self.strategy == "pot":
            blocks = _PY_BLOCK_RE.findall(text)
            return float(bool(blocks) and "print" in blocks[-1])
        if self.strategy == "proof":
            return float(extract_lean_proof(text) is not None)
        boxed = bool(_BOXED_RE.search(text))
        if self.strategy == "tir":
            opened = len(re.findall(r"```(?:python|py)[ \t]*\n", text))
            return float(boxed and opened == len(_PY_BLOCK_RE.findall(text)))
        return float(boxed)


@dataclass
class ToolUseReward:
    """Shaping for tool-integrated rollouts: share of the completion's python runs that succeeded.

    Reads the ``tool_statuses`` column the TIR rollout adds (``ExecStatus`` values per run), or
    the ``statuses`` of TRL's per-rollout environments
    (:class:`verimath.rl.tools.PythonSandboxEnv`). ``min_calls``: completions with fewer runs score
    0.0. A completion whose runs include a ``sandbox_error`` gives None (the sandbox, not the model,
    failed).

    Call: ``(completions: (N,), *, tool_statuses: (N,) list[list[str]], **_) -> (N,)``.
    """

    min_calls: int = 1
    name: str = "tool_use"

    def __post_init__(self) -> None:
        self.__name__ = self.name  # what TRL logs the column as

    def __call__(
        self, completions: Sequence[Any], *, tool_statuses: Sequence[Sequence[str]] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        """Rewards in [0, 1] or None."""
        envs = kwargs.get("environments")
        if tool_statuses is None and envs is not None:
            tool_statuses = [list(getattr(e, "statuses", [])) for e in envs]
        if tool_statuses is None:
            raise ValueError("tool_use reward needs tool rollouts (tools.mode: tir or env)")
        out: list[float | None] = []
        for statuses in tool_statuses:
            if "sandbox_error" in statuses:
                out.append(None)
            elif len(statuses) < self.min_calls:
                out.append(0.0)
            else:
                out.append(sum(s == "ok" for s in statuses) / len(statuses))
        _log_failure_rate(self.name, out, kwargs)
        return out


#: rewards that are verifiers (their None skips the whole sample) vs. shaping terms.
VERIFIER_REWARDS = frozenset({"answer", "proof"})


def _answer(spec: Mapping[str, Any], pool: VerifierPool, strategy: str) -> RewardFn:
    return AnswerReward(pool, strategy=spec.get("strategy", strategy))


def _proof(spec: Mapping[str, Any], pool: VerifierPool, strategy: str) -> RewardFn:
    return ProofReward(pool)


def _format(spec: Mapping[str, Any], pool: VerifierPool, strategy: str) -> RewardFn:
    return FormatReward(strategy=spec.get("strategy", strategy))


def _tool_use(spec: Mapping[str, Any], pool: VerifierPool, strategy: str) -> RewardFn:
    return ToolUseReward(min_calls=int(spec.get("min_calls", 1)))


def _constant(spec: Mapping[str, Any], pool: VerifierPool, strategy: str) -> RewardFn:
    value = float(spec.get("value", 0.0))

    def constant(completions: Sequence[Any], **_: Any) -> list[float | None]:
        """The same reward for every completion (baseline for overhead benchmarks)."""
        return [value] * len(completions)

    return constant


#: name -> factory(spec, pool, strategy). Which verifiers a name needs: see NEEDS.
REGISTRY: dict[str, Callable[[Mapping[str, Any], VerifierPool, str], RewardFn]] = {
    "answer": _answer,
    "proof": _proof,
    "format": _format,
    "tool_use": _tool_use,
    "constant": _constant,
}

#: name -> the VerifierPool members it needs ("grader", "sandbox", "checker").
NEEDS: dict[str, frozenset[str]] = {
    "answer": frozenset({"grader"}),
    "proof": frozenset({"checker"}),
    "format": frozenset(),
    "tool_use": frozenset(),
    "constant": frozenset(),
}


@dataclass(frozen=True)
class RewardSpec:
    """One configured reward term.

    Attributes:
        name: a key of :data:`REGISTRY`.
        weight: its weight in the summed reward (TRL ``reward_weights``).
        options: factory options (e.g. ``strategy``, ``min_calls``, ``value``).
    """

    name: str
    weight: float = 1.0
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in REGISTRY:
            raise ValueError(f"unknown reward {self.name!r}; choose from {sorted(REGISTRY)}")


def needed_verifiers(specs: Sequence[RewardSpec], strategy: str) -> set[str]:
    """Which verifiers the requested rewards need (so only those are built)."""
    need: set[str] = set()
    for s in specs:
        need |= NEEDS[s.name]
        if s.name == "answer" and s.options.get("strategy", strategy) == "pot":
            need.add("sandbox")
    return need


def build_rewards(
    specs: Sequence[RewardSpec], pool: VerifierPool, strategy: str
) -> tuple[list[RewardFn], list[float], list[bool]]:
    """Instantiate the configured reward terms.

    Returns:
        ``(funcs, weights, is_verifier)``, each of length ``len(specs)``: the callables for
        ``GRPOTrainer(reward_funcs=...)``, ``GRPOConfig.reward_weights``, and which columns are
        verifiers (their None skips the sample: :class:`verimath.rl.trainer.VerifierGate`).

    Raises:
        ValueError: an empty spec list, a duplicate name, or a missing verifier.
    """
    if not specs:
        raise ValueError("no rewards configured: add e.g. `rewards: {answer: {weight: 1.0}}`")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate reward names in {names}")
    for need in needed_verifiers(specs, strategy):
        if getattr(pool, need) is None:
            raise ValueError(f"rewards {names} need a {need} but none was built")
    funcs = [REGISTRY[s.name](s.options, pool, strategy) for s in specs]
    return funcs, [float(s.weight) for s in specs], [s.name in VERIFIER_REWARDS for s in specs]

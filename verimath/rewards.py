r"""Verifier rewards for TRL in one import: ``from verimath.rewards import accuracy_reward``.

Plain functions with TRL's reward signature, usable as ``GRPOTrainer(reward_funcs=[...])``
without any verimath trainer::

    from trl import GRPOConfig, GRPOTrainer
    from verimath.rewards import accuracy_reward, format_reward

    trainer = GRPOTrainer(model=..., reward_funcs=[accuracy_reward, format_reward],
                          train_dataset=ds)  # ds has "prompt" and "solution" (or "answer")

Signature (TRL's, ``trl.rewards.accuracy_reward``'s conventions)::

    fn(completions: (N,) list[str] | list[list[dict]], *, <dataset columns>: (N,) list,
       log_extra=None, log_metric=None, **_) -> (N,) list[float | None]

* ``completions``: plain strings (standard prompts) or message lists (conversational prompts;
  only assistant messages are read for the answer).
* the gold column: ``solution`` (TRL's name: a bare answer or a whole worked solution, GSM8K
  ``#### N`` or MATH ``\boxed{}``) or ``answer`` (ours); a gold of None gives None.
* return: 1.0 / 0.0 for a judged completion, ``None`` for one that could not be judged (a
  grader or sandbox that died, a bad gold answer): TRL turns None into NaN and leaves the sample
  out, so an infrastructure failure never scores 0.0 or 1.0. What the model's own output causes
  (its program's timeout, an answer that runs the grader out of its limits) is a judged 0.0.
* ``log_extra`` / ``log_metric`` (passed by ``GRPOTrainer``): each verifier reward adds a
  ``<name>_verdict`` column (``correct`` / ``wrong`` / ``could not judge``) to TRL's
  completions table and logs ``rewards/<name>/infra_failure_rate``.

Each ``*_async`` twin is an ``async def`` with the same signature and results: TRL gathers
async reward functions concurrently on its event loop, so verification overlaps other rewards.

The verifiers are started lazily on first use and shared by every function in the process: one
:class:`~verimath.reasoning.grading.Grader` (math-verify in killable worker processes), one
:class:`~verimath.reasoning.sandbox.Sandbox` (PoT only) and one Lean proof checker (proof only).
They are closed at interpreter exit; a forked child (DataLoader workers, multiprocessing) starts
its own instead of using its parent's. :func:`configure` sets their limits (or remote
``verimath serve`` endpoints) before first use; :func:`close` stops them now.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import logging
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from verimath.rl.rewards import (
    AnswerReward,
    FormatReward,
    ProofReward,
    VerifierPool,
)

__all__ = [
    "RewardSettings", "accuracy_reward", "accuracy_reward_async", "close", "configure",
    "format_reward", "pot_format_reward", "pot_reward", "pot_reward_async", "proof_reward",
    "proof_reward_async", "shared_pool", "tir_format_reward", "tir_reward", "tir_reward_async",
]

log = logging.getLogger(__name__)

Rewards = list[float | None]


@dataclass(frozen=True)
class RewardSettings:
    """Limits of the shared verifiers (set with :func:`configure` before first use).

    Attributes:
        workers: concurrent verifier calls per reward call (threads over the pools below).
        grader_workers: math-verify worker processes.
        grader_timeout_s: wall-clock seconds one answer comparison may take (then TIMEOUT).
        sandbox_workers: sandbox processes running PoT programs at once.
        sandbox_timeout_s: wall-clock seconds a PoT program may run (then a judged 0.0).
        sandbox_memory_mb: memory limit of a PoT program.
        lean_project: Lean 4 + Mathlib project for :func:`proof_reward`; None reads
            ``$VERIMATH_LEAN_PROJECT``.
        lean_workers: Lean REPL processes.
        proof_timeout_s: seconds one proof check may take.
        grader_endpoints: ``verimath serve`` URLs to grade on instead of local workers.
        sandbox_endpoints: ``verimath serve`` URLs to run programs on instead of locally.
    """

    workers: int = 8
    grader_workers: int = 2
    grader_timeout_s: float = 5.0
    sandbox_workers: int = 2
    sandbox_timeout_s: float = 10.0
    sandbox_memory_mb: int = 1024
    lean_project: str | None = None
    lean_workers: int = 1
    proof_timeout_s: float = 60.0
    grader_endpoints: tuple[str, ...] = ()
    sandbox_endpoints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("workers", "grader_workers", "sandbox_workers", "lean_workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("grader_timeout_s", "sandbox_timeout_s", "proof_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)!r}")


class _Shared:
    """The process's verifiers: started on demand, owned by the process that started them."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.settings = RewardSettings()
        self.pid = os.getpid()
        self.members: dict[str, Any] = {}  # "grader" / "sandbox" / "checker" -> object
        self.closers: list[Callable[[], None]] = []
        self.inherited: list[Any] = []  # a parent's verifiers, kept alive and never closed
        self.exit_hook = False

    def check_pid(self) -> None:
        """After a fork, forget (never close) the parent's verifiers; the child starts its own."""
        if self.pid == os.getpid():
            return
        for obj in self.members.values():
            fin = getattr(obj, "_finalizer", None)
            if isinstance(fin, weakref.finalize):
                fin.detach()  # its exit hook would kill the parent's workers
            self.inherited.append(obj)
        self.members, self.closers, self.pid = {}, [], os.getpid()
        self.lock = threading.RLock()  # a lock held by another parent thread stays held here

    def get(self, name: str) -> Any:
        self.check_pid()
        with self.lock:
            if name not in self.members:
                self.members[name] = _START[name](self.settings, self.closers)
                if not self.exit_hook:
                    atexit.register(close)
                    self.exit_hook = True
            return self.members[name]

    def close(self) -> None:
        self.check_pid()
        with self.lock:
            closers, self.closers, self.members = self.closers, [], {}
        for fn in reversed(closers):
            try:
                fn()
            except Exception:  # closing one must not keep the others open
                log.exception("verimath.rewards: closing a verifier failed")


def _start_grader(s: RewardSettings, closers: list[Callable[[], None]]) -> Any:
    from verimath.reasoning.service.factory import GraderSettings, make_grader

    grader = make_grader(GraderSettings(timeout_s=s.grader_timeout_s, workers=s.grader_workers,
                                        endpoints=s.grader_endpoints))
    closers.append(grader.close)
    return grader


def _start_sandbox(s: RewardSettings, closers: list[Callable[[], None]]) -> Any:
    from verimath.reasoning.service.factory import SandboxSettings, make_sandbox

    sandbox = make_sandbox(SandboxSettings(
        timeout_s=s.sandbox_timeout_s, memory_mb=s.sandbox_memory_mb, workers=s.sandbox_workers,
        endpoints=s.sandbox_endpoints))
    if hasattr(sandbox, "close"):
        closers.append(sandbox.close)
    return sandbox


def _start_checker(s: RewardSettings, closers: list[Callable[[], None]]) -> Any:
    from verimath.prover.repl import repl_checker

    checker = repl_checker(s.lean_project, workers=s.lean_workers, timeout_s=s.proof_timeout_s)
    if checker is None:
        raise ValueError("proof_reward needs a Lean 4 project with Mathlib: call "
                         "verimath.rewards.configure(lean_project=...) or set "
                         "$VERIMATH_LEAN_PROJECT")
    closers.append(checker.close)
    return checker


_START: dict[str, Callable[[RewardSettings, list[Callable[[], None]]], Any]] = {
    "grader": _start_grader, "sandbox": _start_sandbox, "checker": _start_checker,
}
_SHARED = _Shared()


def configure(**settings: Any) -> RewardSettings:
    """Set the shared verifiers' limits (fields of :class:`RewardSettings`).

    Verifiers already started are closed, so the next reward call starts them with the new
    settings. Returns the settings in force.

    Raises:
        TypeError: an unknown setting. ValueError: a bad value (the message says which).
    """
    known = {f.name for f in dataclasses.fields(RewardSettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"unknown reward settings {unknown}; choose from {sorted(known)}")
    for key in ("grader_endpoints", "sandbox_endpoints"):
        if key in settings and not isinstance(settings[key], str):
            settings[key] = tuple(settings[key])
    new = dataclasses.replace(_SHARED.settings, **settings)
    _SHARED.close()
    with _SHARED.lock:
        _SHARED.settings = new
    return new


def close() -> None:
    """Stop the shared verifiers now (idempotent; they restart on the next reward call)."""
    _SHARED.close()


def shared_pool(*needs: str) -> VerifierPool:
    """A :class:`~verimath.rl.rewards.VerifierPool` over the shared verifiers ``needs``.

    Args:
        needs: any of ``"grader"``, ``"sandbox"``, ``"checker"``; each is started on first use.

    Raises:
        GraderUnavailable / SandboxError: a verifier cannot start. ValueError: no Lean project
            for ``"checker"``.
    """
    members = {n: _SHARED.get(n) for n in needs}
    return VerifierPool(**members, workers=_SHARED.settings.workers)


def _gold(name: str, solution: Sequence[Any] | None, answer: Sequence[Any] | None,
          n: int) -> list[str | None]:
    gold = solution if solution is not None else answer
    if gold is None:
        raise TypeError(f"{name} needs the gold answers as a dataset column named 'solution' "
                        "(TRL's name) or 'answer'")
    if len(gold) != n:
        raise ValueError(f"{name}: {n} completions but {len(gold)} gold answers")
    return [None if g is None else str(g) for g in gold]


def _log_verdicts(name: str, rewards: Rewards, log_extra: Any) -> None:
    if callable(log_extra):
        log_extra(f"{name}_verdict", ["could not judge" if r is None else
                                      "correct" if r == 1.0 else "wrong" for r in rewards])


def _answer(name: str, strategy: str, needs: tuple[str, ...], completions: Sequence[Any],
            solution: Sequence[Any] | None, answer: Sequence[Any] | None,
            log_extra: Any, kwargs: dict[str, Any]) -> Rewards:
    gold = _gold(name, solution, answer, len(completions))
    fn = AnswerReward(shared_pool(*needs), strategy=strategy, name=name)
    rewards = fn(completions, answer=gold, **kwargs)
    _log_verdicts(name, rewards, log_extra)
    return rewards


def accuracy_reward(completions: Sequence[Any], solution: Sequence[Any] | None = None, *,
                    answer: Sequence[Any] | None = None, log_extra: Any = None,
                    **kwargs: Any) -> Rewards:
    r"""Final-answer correctness of chain-of-thought completions (TRL's ``accuracy_reward``).

    The answer is extracted from the completion (last ``\boxed{}``, "the answer is", ``####``,
    or the last number) and compared with the gold by math-verify in worker processes with real
    timeouts (:class:`~verimath.reasoning.grading.Grader`).

    Args:
        completions: (N,) strings or message lists.
        solution: (N,) gold answers or whole gold solutions (TRL's column name).
        answer: (N,) the same under our column name (used when ``solution`` is absent).
        log_extra: TRL's completions-table logger (adds ``accuracy_reward_verdict``).
        **kwargs: other dataset columns and TRL arguments (``log_metric`` is used).

    Returns:
        (N,) 1.0 correct, 0.0 wrong or no answer, None could not judge (see module docstring).

    Raises:
        TypeError: neither ``solution`` nor ``answer`` was passed. GraderUnavailable: the grader
            cannot start.
    """
    return _answer("accuracy_reward", "cot", ("grader",), completions, solution, answer,
                   log_extra, kwargs)


def pot_reward(completions: Sequence[Any], solution: Sequence[Any] | None = None, *,
               answer: Sequence[Any] | None = None, log_extra: Any = None,
               **kwargs: Any) -> Rewards:
    """Program-of-thought correctness: run the last ```python block, grade what it prints.

    The program runs once in the shared sandbox (isolated, time and memory limits); its printed
    output is graded against the gold. A program that fails or times out is a judged 0.0; a
    sandbox that fails (``SANDBOX_ERROR``) gives None. Arguments, returns and errors as
    :func:`accuracy_reward` (plus SandboxError when the sandbox cannot start).
    """
    return _answer("pot_reward", "pot", ("grader", "sandbox"), completions, solution, answer,
                   log_extra, kwargs)


def tir_reward(completions: Sequence[Any], solution: Sequence[Any] | None = None, *,
               answer: Sequence[Any] | None = None, log_extra: Any = None,
               **kwargs: Any) -> Rewards:
    """Tool-integrated-reasoning correctness: grade the answer of a rollout with tool turns.

    With TRL tool rollouts (``GRPOTrainer(tools=...)`` / ``environment_factory``), the
    completion is a message list; the answer is read from the assistant's own messages (tool
    output is never taken as the model's answer). A rollout whose environment reports
    ``infra_error`` (:class:`verimath.rl.tools.PythonSandboxEnv`) or whose ``tir_error`` column
    is true gives None; a ``tir_answer`` column (verimath's TIR engine) is graded as given.
    Arguments, returns and errors as :func:`accuracy_reward`.
    """
    return _answer("tir_reward", "tir", ("grader",), completions, solution, answer,
                   log_extra, kwargs)


def proof_reward(completions: Sequence[Any], formal_statement: Sequence[str | None], *,
                 header: Sequence[str | None] | None = None, log_extra: Any = None,
                 **kwargs: Any) -> Rewards:
    """Lean 4 proof validity: the last ```lean4 block, checked and audited by Lean.

    Args:
        completions: (N,) strings or message lists.
        formal_statement: (N,) the theorem each completion must prove; None rows give None.
        header: (N,) imports/opens before the statement (default Mathlib's).
        log_extra: TRL's completions-table logger (adds ``proof_reward_verdict``).
        **kwargs: other columns and TRL arguments.

    Returns:
        (N,) 1.0 audited proof, 0.0 wrong or no ```lean4 block, None a dead or stuck Lean.

    Raises:
        ValueError: no Lean project (:func:`configure` ``lean_project`` or
            ``$VERIMATH_LEAN_PROJECT``).
    """
    fn = ProofReward(shared_pool("checker"), name="proof_reward")
    rewards = fn(completions, formal_statement=formal_statement, header=header, **kwargs)
    _log_verdicts("proof_reward", rewards, log_extra)
    return rewards


def _format(strategy: str, name: str) -> Callable[..., Rewards]:
    impl = FormatReward(strategy=strategy, name=name)

    def reward(completions: Sequence[Any], **kwargs: Any) -> Rewards:
        return impl(completions, **kwargs)

    reward.__name__ = reward.__qualname__ = name
    return reward


format_reward = _format("cot", "format_reward")
format_reward.__doc__ = r"""1.0 when the completion ends in a ``\boxed{...}`` answer, else 0.0.

    ``(completions: (N,), **_) -> (N,) list[float]``; never None (nothing external runs).
    """
pot_format_reward = _format("pot", "pot_format_reward")
pot_format_reward.__doc__ = """1.0 for a closed ```python block that prints, else 0.0."""
tir_format_reward = _format("tir", "tir_format_reward")
tir_format_reward.__doc__ = r"""1.0 for a ``\boxed{}`` answer with every ```python block closed.

    Else 0.0; never None.
    """


async def accuracy_reward_async(completions: Sequence[Any], **kwargs: Any) -> Rewards:
    """:func:`accuracy_reward` as a coroutine (runs in a thread; TRL gathers it with others)."""
    return await asyncio.to_thread(accuracy_reward, completions, **kwargs)


async def pot_reward_async(completions: Sequence[Any], **kwargs: Any) -> Rewards:
    """:func:`pot_reward` as a coroutine (runs in a thread; TRL gathers it with others)."""
    return await asyncio.to_thread(pot_reward, completions, **kwargs)


async def tir_reward_async(completions: Sequence[Any], **kwargs: Any) -> Rewards:
    """:func:`tir_reward` as a coroutine (runs in a thread; TRL gathers it with others)."""
    return await asyncio.to_thread(tir_reward, completions, **kwargs)


async def proof_reward_async(completions: Sequence[Any], **kwargs: Any) -> Rewards:
    """:func:`proof_reward` as a coroutine (runs in a thread; TRL gathers it with others)."""
    return await asyncio.to_thread(proof_reward, completions, **kwargs)

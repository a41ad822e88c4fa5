"""The one trainer subclass: GRPOTrainer with verifier-aware sample skipping (kept thin).

The skipping goes through TRL's public reward-function contract only (no TRL internals): a
:class:`VerifierGate` wraps the reward functions, runs a batch's verifiers once, and makes every
shaping term return None for a sample no verifier judged. TRL leaves a sample whose rewards are
all None out of its group's baseline and gives it advantage 0.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from trl import GRPOTrainer

from verimath.rl.advantages import unjudged_rows
from verimath.rl.trl_compat import check_rollout_trainer, check_trl

log = logging.getLogger(__name__)

RewardFn = Callable[..., Sequence[float | None]]


class RewardInfraFailure(RuntimeError):
    """A reward judged no sample for too many consecutive steps: training cannot learn."""


class InfraFailureWatch:
    """Counts, per reward column, consecutive steps where every sample was unjudged (NaN).

    Args:
        names: (F,) reward names, for the error message.
        max_steps: consecutive all-NaN steps that stop training; 0 never stops.
    """

    def __init__(self, names: Sequence[str], max_steps: int) -> None:
        self.names = list(names)
        self.max_steps = max_steps
        self.streaks = [0] * len(self.names)

    def update(self, rewards_per_func: torch.Tensor) -> None:
        """Update the streaks with one step's rewards ``(B*G, F)`` float (NaN = unjudged).

        Raises:
            RewardInfraFailure: a column was all-NaN for ``max_steps`` steps in a row.
        """
        if rewards_per_func.numel() == 0:
            return
        for f in range(min(rewards_per_func.shape[1], len(self.streaks))):
            self.update_one(f, rewards_per_func[:, f])

    def update_one(self, index: int, rewards: torch.Tensor) -> None:
        """Update column ``index`` with one step's rewards ``(B*G,)`` float (NaN = unjudged).

        Raises:
            RewardInfraFailure: the column was all-NaN for ``max_steps`` steps in a row.
        """
        if rewards.numel() == 0:
            return
        dead = bool(torch.isnan(rewards).all())
        self.streaks[index] = self.streaks[index] + 1 if dead else 0
        if self.max_steps and self.streaks[index] >= self.max_steps:
            raise RewardInfraFailure(
                f"reward {self.names[index]!r} could not judge any sample for "
                f"{self.streaks[index]} consecutive steps (infra-failure rate 100%): the "
                "verifier is down (sandbox, grader or Lean errors/timeouts in the log) or "
                "its dataset column is empty; training stopped so it does not run without "
                "signal (grpo.max_infra_failure_steps, 0 disables)")


def _callable_name(fn: Any) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__name__", type(fn).__name__)


def _is_plain_callable(fn: Any) -> bool:
    """A synchronous Python callable (not a model id, a reward model or an async function)."""
    if isinstance(fn, (str, torch.nn.Module)) or not callable(fn):
        return False
    while isinstance(fn, functools.partial):
        fn = fn.func
    call = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn).__call__
    return not inspect.iscoroutinefunction(call)


class VerifierGate:
    """Scores one batch's verifier rewards once; shaping rewards return None where none judged.

    TRL calls each reward function with the same ``completions`` list for one batch; the first
    wrapped function called for a new list runs every verifier on it (so the order of the reward
    functions does not matter), marks the samples where every verifier returned None, logs
    ``rewards/skipped_frac`` through TRL's ``log_metric`` keyword, and updates the watch. A
    verifier column then returns its own rewards; a shaping column returns its rewards with None
    on the unjudged samples, so the whole sample carries no reward (TRL: advantage 0, out of the
    group baseline). A sample where one verifier does not apply (None) but another judged it
    keeps every score.

    Args:
        funcs: (F,) synchronous reward functions (TRL's ``reward_funcs`` form).
        verifier_columns: (F,) bool, True for verifiers (their None means "could not judge").
        watch: counts, per column, consecutive training steps where the function's own output
            was all None (before gating); None to skip.
        training: returns True during training steps (the watch ignores evaluation).
        gather: concatenates a (N,) tensor across processes (so every process stops at the
            same step); identity when None.

    Raises:
        ValueError: ``funcs`` and ``verifier_columns`` differ in length, or a function is not a
            plain synchronous callable (a reward model or async function cannot be gated).
    """

    def __init__(self, funcs: Sequence[RewardFn], verifier_columns: Sequence[bool], *,
                 watch: InfraFailureWatch | None = None,
                 training: Callable[[], bool] = lambda: True,
                 gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if len(funcs) != len(verifier_columns):
            raise ValueError(f"{len(funcs)} reward functions but {len(verifier_columns)} "
                             "verifier_columns")
        bad = [_callable_name(f) for f in funcs if not _is_plain_callable(f)]
        if bad:
            raise ValueError(f"rewards {bad} are not synchronous callables: with verifier rewards "
                             "every term must be one, so a sample no verifier judged can be "
                             "skipped whole")
        self.funcs = list(funcs)
        self.verifiers = [i for i, v in enumerate(verifier_columns) if v]
        self.watch, self.training, self.gather = watch, training, gather
        self._batch: Any = None  # the completions list last judged (held: identity is the key)
        self._scores: dict[int, list[float | None]] = {}
        self._unjudged: list[bool] = []

    def wrapped(self) -> list[RewardFn]:
        """(F,) reward functions for ``GRPOTrainer(reward_funcs=...)``, names kept."""
        return [_GatedReward(self, i, _callable_name(f)) for i, f in enumerate(self.funcs)]

    def score(self, index: int, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        """Rewards of column ``index`` for one batch (see the class docstring)."""
        if completions is not self._batch:
            self._judge(completions, kwargs)
        if index in self._scores:
            return self._scores[index]
        out = self._call(index, completions, kwargs)
        self._watch(index, out)
        return [None if skip else r for r, skip in zip(out, self._unjudged, strict=True)]

    def _call(self, index: int, completions: Sequence[Any], kwargs: dict[str, Any]
              ) -> list[float | None]:
        """Column ``index``'s own rewards, one per completion (ValueError otherwise)."""
        out = list(self.funcs[index](completions=completions, **kwargs))
        if len(out) != len(completions):
            raise ValueError(f"reward {_callable_name(self.funcs[index])!r} returned {len(out)} "
                             f"rewards for {len(completions)} completions")
        return out

    def _watch(self, index: int, out: Sequence[float | None]) -> None:
        if self.watch is None or not self.training():
            return
        col = torch.tensor([torch.nan if r is None else float(r) for r in out],
                           dtype=torch.float32)
        self.watch.update_one(index, self.gather(col) if self.gather else col)

    def _judge(self, completions: Sequence[Any], kwargs: dict[str, Any]) -> None:
        self._batch, self._scores = None, {}
        for i in self.verifiers:
            self._scores[i] = self._call(i, completions, kwargs)
        cols = [[torch.nan if r is None else float(r) for r in self._scores[i]]
                for i in self.verifiers]
        table = torch.tensor(cols, dtype=torch.float32).reshape(
            len(self.verifiers), len(completions)).T  # (N, V)
        self._unjudged = unjudged_rows(table).tolist()
        self._batch = completions
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            log_metric("rewards/skipped_frac",
                       sum(self._unjudged) / len(self._unjudged) if self._unjudged else 0.0)
        for i in self.verifiers:
            self._watch(i, self._scores[i])


class _GatedReward:
    """One column of a :class:`VerifierGate`, callable the way TRL calls reward functions."""

    def __init__(self, gate: VerifierGate, index: int, name: str) -> None:
        self.gate, self.index, self.__name__ = gate, index, name

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        return self.gate.score(self.index, completions, **kwargs)


class VerifierGRPOTrainer(GRPOTrainer):  # type: ignore[misc]
    """GRPOTrainer whose verifier rewards' None skips the whole sample, shaping terms included.

    The reward functions are wrapped by a :class:`VerifierGate` (TRL's public reward contract;
    no private hook), which logs ``rewards/skipped_frac`` (samples no verifier could judge) next
    to each reward's ``rewards/<name>/infra_failure_rate``, and raises
    :class:`RewardInfraFailure` from the reward step when one reward judged no sample for
    ``max_infra_failure_steps`` consecutive training steps (:class:`InfraFailureWatch`). With
    no verifier column and reward models or async rewards among the functions, nothing is
    wrapped and nothing is watched.

    The TRL internals used elsewhere (the TIR ``rollout_func``) are checked before anything
    is built (:func:`verimath.rl.trl_compat.check_trl`).

    Args:
        reward_funcs: (F,) reward functions, as ``trl.GRPOTrainer``.
        verifier_columns: (F,) bool, one per reward function: True for verifiers.
        max_infra_failure_steps: see :class:`verimath.rl.config.GRPOAlgoConfig`; 0 never stops.
        **kwargs: as ``trl.GRPOTrainer`` (keywords only).

    Raises:
        verimath.rl.trl_compat.TrlCompatError: the installed TRL lacks a hook we use.
        ValueError: a reward cannot be gated (see :class:`VerifierGate`), or an environment
            adds its own reward column next to verifier rewards.
    """

    def __init__(self, *, reward_funcs: Sequence[RewardFn], verifier_columns: Sequence[bool],
                 max_infra_failure_steps: int = 0, **kwargs: Any) -> None:
        from verimath.rl.tools import TirRollout

        tir = isinstance(kwargs.get("rollout_func"), TirRollout)
        check_trl(rollout=tir)
        funcs: list[Any] = list(reward_funcs)
        cols = list(verifier_columns)
        if len(cols) != len(funcs):
            raise ValueError(f"{len(funcs)} reward functions but {len(cols)} verifier_columns")
        self._gate = None
        watched = max_infra_failure_steps > 0 and all(map(_is_plain_callable, funcs))
        if any(cols) or watched:
            self._gate = VerifierGate(
                funcs, cols, watch=InfraFailureWatch([_callable_name(f) for f in funcs],
                                                     max_infra_failure_steps),
                training=lambda: bool(getattr(self.model, "training", False)),
                gather=self._gather_rows)
            funcs = self._gate.wrapped()
        super().__init__(reward_funcs=funcs, **kwargs)
        if any(cols) and len(self.reward_funcs) != len(funcs):
            extra = list(self.reward_func_names)[len(funcs):]
            raise ValueError(f"environment reward columns {extra} cannot be skipped with the "
                             "verifier rewards; give the environment no get_reward")
        if tir:
            check_rollout_trainer(self)

    def _gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows`` (N, ...) from every process, concatenated (same on each process)."""
        if self.accelerator.num_processes == 1:
            return rows
        return self.accelerator.gather(rows.to(self.accelerator.device)).cpu()

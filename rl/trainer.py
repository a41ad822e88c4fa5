"""The one trainer subclass: GRPOTrainer with verifier-aware sample skipping (kept thin)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from trl import GRPOTrainer

from verimath.rl.advantages import skip_unjudged


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
        all_nan = torch.isnan(rewards_per_func).all(dim=0).tolist()  # (F,)
        for f, dead in enumerate(all_nan[: len(self.streaks)]):
            self.streaks[f] = self.streaks[f] + 1 if dead else 0
            if self.max_steps and self.streaks[f] >= self.max_steps:
                raise RewardInfraFailure(
                    f"reward {self.names[f]!r} could not judge any sample for "
                    f"{self.streaks[f]} consecutive steps (infra-failure rate 100%): the "
                    "verifier is down (sandbox, grader or Lean errors/timeouts in the log) or "
                    "its dataset column is empty; training stopped so it does not run without "
                    "signal (grpo.max_infra_failure_steps, 0 disables)")


class VerifierGRPOTrainer(GRPOTrainer):  # type: ignore[misc]
    """GRPOTrainer whose verifier rewards' None skips the whole sample, shaping terms included.

    Logs ``rewards/skipped_frac`` (samples no verifier could judge) next to each reward's
    ``rewards/<name>/infra_failure_rate``.

    Raises :class:`RewardInfraFailure` from the reward step when one reward judged no sample
    for ``max_infra_failure_steps`` consecutive steps (:class:`InfraFailureWatch`).

    Args:
        verifier_columns: (F,) bool, one per reward function: True for verifiers.
        max_infra_failure_steps: see :class:`verimath.rl.config.GRPOAlgoConfig`; 0 never stops.
        *args, **kwargs: as ``trl.GRPOTrainer``.
    """

    def __init__(self, *args: Any, verifier_columns: Sequence[bool],
                 max_infra_failure_steps: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cols = list(verifier_columns)
        cols += [False] * (len(self.reward_funcs) - len(cols))  # env-owned get_reward columns
        self._verifier_columns = torch.tensor(cols, dtype=torch.bool)
        self._infra_watch = InfraFailureWatch(list(self.reward_func_names),
                                              max_infra_failure_steps)

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any,
                           completion_ids_list: Any) -> torch.Tensor:
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.model.training:
            self._infra_watch.update(rewards)
        gated, skipped = skip_unjudged(rewards, self._verifier_columns.to(rewards.device))
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["rewards/skipped_frac"].append(skipped)
        return gated

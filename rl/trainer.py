"""The one trainer subclass: GRPOTrainer with verifier-aware sample skipping (kept thin)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from trl import GRPOTrainer

from rl.advantages import skip_unjudged


class VerifierGRPOTrainer(GRPOTrainer):  # type: ignore[misc]
    """GRPOTrainer whose verifier rewards' None skips the whole sample, shaping terms included.

    Logs ``rewards/skipped_frac`` (samples no verifier could judge) next to each reward's
    ``rewards/<name>/infra_failure_rate``.

    Args:
        verifier_columns: (F,) bool, one per reward function: True for verifiers.
        *args, **kwargs: as ``trl.GRPOTrainer``.
    """

    def __init__(self, *args: Any, verifier_columns: Sequence[bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cols = list(verifier_columns)
        cols += [False] * (len(self.reward_funcs) - len(cols))  # env-owned get_reward columns
        self._verifier_columns = torch.tensor(cols, dtype=torch.bool)

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any,
                           completion_ids_list: Any) -> torch.Tensor:
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        gated, skipped = skip_unjudged(rewards, self._verifier_columns.to(rewards.device))
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["rewards/skipped_frac"].append(skipped)
        return gated

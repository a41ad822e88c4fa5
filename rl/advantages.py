"""Pure tensor functions on GRPO rewards (the math stays out of the trainer subclass)."""

from __future__ import annotations

import torch


def unjudged_rows(verifier_rewards: torch.Tensor) -> torch.Tensor:
    """Which samples no verifier judged.

    Args:
        verifier_rewards: (N, V) float; NaN where a verifier returned None (could not judge or
            does not apply). V may be 0.

    Returns:
        (N,) bool: True where every verifier column is NaN (all False when V == 0).
    """
    if verifier_rewards.ndim != 2:
        raise ValueError(f"shape (N, V) expected, got {tuple(verifier_rewards.shape)}")
    if verifier_rewards.shape[1] == 0:
        return torch.zeros(verifier_rewards.shape[0], dtype=torch.bool)
    return torch.isnan(verifier_rewards).all(dim=1)


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


def skip_unjudged(
    rewards_per_func: torch.Tensor, is_verifier: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Skip every sample whose verifiers could not judge it, shaping terms included.

    TRL drops a reward *column* that is NaN (None) for a sample and still scores the sample with
    the other columns. For verifier rewards that would let a format bonus stand in for an answer
    the grader never judged, so a sample is skipped (its whole row set to NaN, which TRL leaves
    out of the group baseline and gives advantage 0) when *every* verifier column is NaN. Rows
    where a verifier does not apply (e.g. the proof reward on an informal problem) keep the
    other verifier's score.

    Args:
        rewards_per_func: (B*G, F) float32; NaN where a reward function returned None.
        is_verifier: (F,) bool; True for verifier columns (answer, proof).

    Returns:
        ``(rewards, skipped_frac)``: (B*G, F) float32 with skipped rows all-NaN, and the fraction
        of rows skipped (0.0 when there is no verifier column).
    """
    if rewards_per_func.ndim != 2 or is_verifier.shape != (rewards_per_func.shape[1],):
        raise ValueError(f"shapes (N, F) and (F,) expected, got {tuple(rewards_per_func.shape)} "
                         f"and {tuple(is_verifier.shape)}")
    if not bool(is_verifier.any()) or rewards_per_func.shape[0] == 0:
        return rewards_per_func, 0.0
    unjudged = unjudged_rows(rewards_per_func[:, is_verifier])  # (B*G,)
    out = rewards_per_func.clone()
    out[unjudged] = torch.nan
    return out, float(unjudged.float().mean().item())

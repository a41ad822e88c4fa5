r"""verl custom reward function: ``compute_score`` (and ``compute_score_async``) over our grader.

verl's contract (``reward.custom_reward_function``; read in verl's
``verl/trainer/ppo/reward.py`` and ``verl/experimental/reward_loop/reward_manager/naive.py``):
the reward manager calls, once per response,
``compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **reward_kwargs)``
with ``ground_truth = row["reward_model"]["ground_truth"]``; a sync function runs in the
event loop's thread pool, an ``async def`` one is awaited. A dict return must hold ``score``
(the scalar placed on the response's last token); every key, ``score`` included, is appended
to ``reward_extra_info`` (one list per key, so every call returns the same keys), stored in
the batch's ``non_tensor_batch``, and averaged per data source in validation metrics
(numeric keys only; strings are skipped). Configure::

    reward:
      custom_reward_function:
        path: pkg://verimath.integrations.verl
        name: compute_score_async          # or compute_score
        reward_kwargs: {strategy: cot, unjudged_score: 0.0, on_unjudged: score}

What verl sees (every call returns exactly these keys):

==========  ==========================================================================
``score``   1.0 correct, 0.0 wrong / no answer (judged); ``unjudged_score`` otherwise
``judged``  1.0 when the verifier judged the response, 0.0 when it could not
``verdict`` the grader's status: ``correct``, ``wrong``, ``no_answer``, ... or for
            could-not-judge ``bad_gold``, ``timeout``, ``error``, ``sandbox_error``
``reason``  a short human-readable reason (the grader's, or the infrastructure error)
==========  ==========================================================================

verl has no "skip this sample" value (a NaN score would poison the group's advantage), so a
response that could not be judged (a dead grader worker, a sandbox failure, an unparseable gold
answer) gets ``score = unjudged_score`` with ``judged = 0.0``, a WARNING log line, and is never
silently a 0.0: ``val-aux/<data_source>/judged/mean@N`` is the judged share, and
``batch.non_tensor_batch["judged"]`` marks the rows. To keep them out of the policy loss call
:func:`mask_unjudged` on the batch before the update (it zeroes their ``response_mask``); to stop
training instead, pass ``on_unjudged: raise`` (:class:`Unjudged`). What the model's own output
causes (its program's timeout, an answer that runs the grader out of its limits) is judged: 0.0.

Strategies (``reward_kwargs.strategy``): ``cot`` grades the answer extracted from the response
(last ``\boxed{}``, "the answer is", ``####``, last number); ``pot`` runs the response's last
```python block in the sandbox and grades what it prints. The grader and sandbox are
:mod:`verimath.rewards`' shared, lazily started per-process ones (set limits with
:func:`verimath.rewards.configure`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from verimath.records import Verdict, VerdictStatus

__all__ = ["KEYS", "Unjudged", "compute_score", "compute_score_async", "judged_mask",
           "mask_unjudged"]

log = logging.getLogger(__name__)

#: the keys of every dict :func:`compute_score` returns (verl needs the same keys each call).
KEYS = ("score", "judged", "verdict", "reason")
_STRATEGIES = ("cot", "pot")
_POLICIES = ("score", "raise")


class Unjudged(RuntimeError):
    """``on_unjudged="raise"``: a response could not be judged (the verifier failed)."""


def _verdict(solution_str: str, ground_truth: Any, strategy: str) -> Verdict:
    """The answer reward's verdict; infrastructure exceptions become an ERROR verdict.

    One rule with TRL's rewards: :meth:`verimath.rl.rewards.AnswerReward.verdict`.
    """
    from verimath.rewards import shared_pool
    from verimath.rl.rewards import AnswerReward, infra_exceptions

    if ground_truth is None:
        return Verdict(VerdictStatus.BAD_GOLD, "no ground truth")
    needs = ("grader", "sandbox") if strategy == "pot" else ("grader",)
    try:
        return AnswerReward(shared_pool(*needs), strategy=strategy).verdict(
            solution_str, str(ground_truth))
    except infra_exceptions() as e:
        return Verdict(VerdictStatus.ERROR, f"{type(e).__name__}: {e}")


def _check(strategy: str, on_unjudged: str, unjudged_score: float) -> None:
    if strategy not in _STRATEGIES:
        raise ValueError(f"reward_kwargs.strategy must be one of {_STRATEGIES}, got {strategy!r}")
    if on_unjudged not in _POLICIES:
        raise ValueError(f"reward_kwargs.on_unjudged must be one of {_POLICIES}, "
                         f"got {on_unjudged!r}")
    if not isinstance(unjudged_score, int | float) or unjudged_score != unjudged_score:
        raise ValueError("reward_kwargs.unjudged_score must be a finite number, got "
                         f"{unjudged_score!r}")


def compute_score(data_source: str, solution_str: str, ground_truth: Any,
                  extra_info: dict[str, Any] | None = None, *, strategy: str = "cot",
                  unjudged_score: float = 0.0, on_unjudged: str = "score",
                  **kwargs: Any) -> dict[str, Any]:
    """Score one response for verl (see the module docstring for the returned keys).

    Args:
        data_source: the row's ``data_source`` (only logged).
        solution_str: the decoded response.
        ground_truth: ``reward_model.ground_truth``: a bare answer or a whole gold solution.
        extra_info: the row's ``extra_info`` (unused; verl adds ``num_turns`` etc.).
        strategy: ``cot`` or ``pot`` (``reward_kwargs``).
        unjudged_score: the ``score`` of a response that could not be judged.
        on_unjudged: ``score`` (return ``unjudged_score`` with ``judged=0.0``) or ``raise``.
        **kwargs: other arguments verl passes (e.g. ``reward_router_address``), ignored.

    Returns:
        ``{"score": float, "judged": float, "verdict": str, "reason": str}``.

    Raises:
        Unjudged: could not judge and ``on_unjudged="raise"``.
        ValueError: a bad ``strategy`` / ``on_unjudged`` / ``unjudged_score``.
        GraderUnavailable / SandboxError: the verifier cannot start at all.
    """
    from verimath.rl.rewards import verdict_reward

    _check(strategy, on_unjudged, unjudged_score)
    verdict = _verdict(solution_str, ground_truth, strategy)
    reward = verdict_reward(verdict)
    reason = verdict.reason or str(verdict.status)
    if reward is not None:
        return {"score": float(reward), "judged": 1.0, "verdict": str(verdict.status),
                "reason": reason}
    status = "sandbox_error" if reason.startswith("sandbox_error") else str(verdict.status)
    if on_unjudged == "raise":
        raise Unjudged(f"{data_source}: could not judge ({status}): {reason}")
    log.warning("verl reward: could not judge a %s response (%s: %s); score=%s, judged=0.0",
                data_source, status, reason, unjudged_score)
    return {"score": float(unjudged_score), "judged": 0.0, "verdict": status, "reason": reason}


async def compute_score_async(data_source: str, solution_str: str, ground_truth: Any,
                              extra_info: dict[str, Any] | None = None,
                              **kwargs: Any) -> dict[str, Any]:
    """:func:`compute_score` as a coroutine (verl awaits ``async def`` reward functions).

    The grading runs in a worker thread, so the reward loop's event loop keeps serving other
    responses while math-verify works in its own processes.
    """
    return await asyncio.to_thread(compute_score, data_source, solution_str, ground_truth,
                                   extra_info, **kwargs)


def judged_mask(batch: Any) -> Any:
    """(B,) bool numpy array: which rows of a verl ``DataProto`` were judged.

    Raises:
        KeyError: the batch has no ``judged`` column (the reward was not this module's).
    """
    import numpy as np

    judged = batch.non_tensor_batch.get("judged")
    if judged is None:
        raise KeyError("batch.non_tensor_batch has no 'judged' column: is the reward function "
                       "verimath.integrations.verl.compute_score?")
    return np.asarray(judged, dtype=float) > 0.5


def mask_unjudged(batch: Any) -> int:
    """Zero the ``response_mask`` of rows that could not be judged; returns how many.

    Call it on the batch after the reward and before the policy update, so such responses
    add nothing to the loss. Note that a group-relative baseline computed before this call
    (GRPO's group mean) still counted their ``unjudged_score``.
    """
    import torch

    bad = ~judged_mask(batch)
    if bad.any():
        mask = batch.batch["response_mask"]
        mask[torch.as_tensor(bad, device=mask.device)] = 0
    return int(bad.sum())

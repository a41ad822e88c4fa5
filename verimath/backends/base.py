"""The backend contract shared by every model backend: sampling parameters, completions, config.

One interface for local and remote generation::

    backend = load_backend(BackendConfig(backend="transformers", model="default"))
    outs = backend.generate(["2+2=", [{"role": "user", "content": "Hi"}]], SamplingParams(n=2))
    outs[1][0].text, outs[1][0].finish_reason, outs[1][0].completion_tokens

Semantics every backend follows (the vLLM / OpenAI conventions):

- ``generate`` returns one list per prompt, in input order, each with ``params.n`` completions.
- A prompt is a raw string (sent as is, no chat template) or chat messages. If the last message
  has role ``"assistant"`` that message is *continued*: the chat template is applied without a
  generation prompt and without closing the assistant turn (``continue_final_message``).
- Generation ends at an end-of-sequence token (``finish_reason="stop"``, ``stop_reason=None``),
  at the first stop string (``"stop"``, ``stop_reason=`` that string, which is *not* part of
  ``text``), or after ``max_tokens`` tokens (``"length"``).
- ``temperature == 0`` is greedy decoding; the ``n`` completions of a prompt are then identical.
- Seeding is per call: the same prompts with the same params give the same completions. Sample
  ``j`` of prompt ``i`` draws from its own random stream, seeded by :func:`derive_seed`
  ``(seed, i, j)``, so duplicate prompts in one call still get different samples.
- Infrastructure failures (server down, timeouts after retries) raise :class:`BackendError`;
  they are never returned as empty completions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: A raw prompt string, or chat messages ``[{"role": ..., "content": ...}, ...]``.
Prompt = str | list[dict[str, str]]

BACKENDS = ("transformers", "vllm", "openai")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class BackendError(RuntimeError):
    """Generation failed for an infrastructure reason (server, network, timeout, OOM).

    Callers must treat this as "could not judge", never as a wrong answer.
    """


@dataclass(frozen=True)
class SamplingParams:
    """How to sample completions.

    Attributes:
        n: completions per prompt (>= 1).
        temperature: softmax temperature; 0 means greedy decoding.
        top_p: nucleus sampling mass in (0, 1]; 1 disables it. Ignored when greedy.
        max_tokens: most new tokens per completion (>= 1).
        stop: stop strings; generation ends at the first one, which is cut from the text.
            A single string is accepted and wrapped into a tuple.
        seed: base seed of the per-completion random streams (see :func:`derive_seed`).
        logprobs: also return ``Completion.cumulative_logprob``.
    """

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int = 0
    logprobs: bool = False

    def __post_init__(self) -> None:
        stop = self.stop
        if isinstance(stop, str):
            stop = (stop,)
        stop = tuple(stop)
        object.__setattr__(self, "stop", stop)
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"SamplingParams.n must be an integer >= 1 (got {self.n!r}); "
                             "ask for at least one completion per prompt")
        if not isinstance(self.temperature, int | float) or self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0 (got {self.temperature!r}); "
                             "use 0 for greedy decoding")
        if not isinstance(self.top_p, int | float) or not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1] (got {self.top_p!r}); "
                             "use 1.0 to disable nucleus sampling")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) \
                or self.max_tokens < 1:
            raise ValueError(f"SamplingParams.max_tokens must be an integer >= 1 "
                             f"(got {self.max_tokens!r})")
        if not all(isinstance(s, str) and s for s in stop):
            raise ValueError(f"SamplingParams.stop must be non-empty strings (got {stop!r}); "
                             "drop empty entries")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"SamplingParams.seed must be an integer (got {self.seed!r})")

    @property
    def greedy(self) -> bool:
        """True when decoding is greedy (``temperature == 0``)."""
        return self.temperature == 0


@dataclass(frozen=True)
class Completion:
    """One generated continuation.

    Attributes:
        text: the generated text, without the stop string or end-of-sequence token.
        finish_reason: ``"stop"`` (EOS token or stop string) or ``"length"`` (max_tokens hit).
        stop_reason: the stop string that ended generation; None for EOS or length.
        prompt_tokens: tokens in the rendered prompt.
        completion_tokens: tokens generated, up to and including the token that completed the
            stop string or the EOS token; padding is never counted.
        cumulative_logprob: sum of the natural-log probabilities of those tokens under the
            model's raw distribution (before temperature / top-p) when
            ``SamplingParams.logprobs``; None otherwise.
    """

    text: str
    finish_reason: str
    stop_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cumulative_logprob: float | None = None


@runtime_checkable
class Backend(Protocol):
    """What every backend provides (see the module docstring for the semantics)."""

    name: str
    model_id: str

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions for each prompt, outer list in input order."""
        ...

    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees for ``prompt`` (chat template applied)."""
        ...

    def close(self) -> None:
        """Release the model / connections. Idempotent."""
        ...


@dataclass(frozen=True)
class BackendConfig:
    """Which backend and model to load.

    Attributes:
        backend: ``"transformers"``, ``"vllm"`` or ``"openai"``.
        model: ``"default"`` / ``"smollm2"`` (the embedded SmolLM2-135M-Instruct), a local
            directory, a ``*.gguf`` file, or a hub id. For ``openai`` it is the served model
            name (``"default"`` asks the server's ``/models`` for its first model).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        dtype: ``"auto"`` (float32 on CPU, bfloat16/float16 on GPU) or a torch dtype name.
        batch_size: sequences per forward batch (transformers).
        base_url: OpenAI-compatible server, e.g. ``http://127.0.0.1:8000/v1``; None uses
            ``$OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
        api_key_env: environment variable holding the API key (unset: no auth header).
        max_concurrency: requests in flight at once (openai).
        request_timeout_s: per-request timeout in seconds (openai).
        max_retries: retries of a request after a transient failure (openai).
        gguf_file: GGUF file name inside the ``model`` directory (transformers).
        extra: backend-specific options, e.g. ``{"num_threads": 1}`` (transformers: torch CPU
            threads, process-wide), ``{"tokenizer": path}`` (openai: render chats locally),
            ``{"gpu_memory_utilization": 0.8}`` (vllm: passed to ``vllm.LLM``).
    """

    backend: str = "transformers"
    model: str = "default"
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 8
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8
    request_timeout_s: float = 120.0
    max_retries: int = 4
    gguf_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"BackendConfig.backend must be one of {list(BACKENDS)} "
                             f"(got {self.backend!r})")
        if self.dtype not in DTYPES:
            raise ValueError(f"BackendConfig.dtype must be one of {list(DTYPES)} "
                             f"(got {self.dtype!r})")
        if not self.model:
            raise ValueError("BackendConfig.model is empty; use 'default' for the embedded model")
        for name in ("batch_size", "max_concurrency"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"BackendConfig.{name} must be an integer >= 1 (got {v!r})")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) \
                or self.max_retries < 0:
            raise ValueError(f"BackendConfig.max_retries must be an integer >= 0 "
                             f"(got {self.max_retries!r}); 0 disables retries")
        if not isinstance(self.request_timeout_s, int | float) or self.request_timeout_s <= 0:
            raise ValueError(f"BackendConfig.request_timeout_s must be > 0 seconds "
                             f"(got {self.request_timeout_s!r})")
        if not isinstance(self.extra, dict):
            raise ValueError(f"BackendConfig.extra must be a mapping (got {self.extra!r})")


def derive_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    """The seed of sample ``sample_index`` of prompt ``prompt_index`` in a call, in [0, 2**31).

    A hash, so nearby ``(seed, i, j)`` give unrelated streams; stable across processes.
    """
    h = hashlib.sha256(f"{seed}:{prompt_index}:{sample_index}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def sample_keys(n_prompts: int, params: SamplingParams) -> list[tuple[int, int]]:
    """The ``(prompt, sample)`` completions to generate, in prompt order.

    ``params.n`` per prompt, or one when greedy (all ``n`` would be identical; :func:`regroup`
    replicates it).
    """
    samples = 1 if params.greedy else params.n
    return [(i, j) for i in range(n_prompts) for j in range(samples)]


def regroup(done: Mapping[tuple[int, int], Completion], n_prompts: int,
            params: SamplingParams) -> list[list[Completion]]:
    """``[prompt][sample]`` lists from completions keyed as by :func:`sample_keys`."""
    return [[done[(i, 0 if params.greedy else j)] for j in range(params.n)]
            for i in range(n_prompts)]


def find_stop(text: str, stop: Sequence[str]) -> tuple[int, str] | None:
    """The stop string that completes first in ``text``, as ``(start index, stop string)``.

    "First" is the smallest end position (where generation would have halted); ties go to the
    earliest start (the longer match). None when no stop string occurs.
    """
    best: tuple[int, int, str] | None = None
    for s in stop:
        i = text.find(s)
        if i == -1:
            continue
        key = (i + len(s), i, s)
        if best is None or key[:2] < best[:2]:
            best = key
    return None if best is None else (best[1], best[2])


def validate_prompt(prompt: object, index: int) -> Prompt:
    """Check one prompt's shape; raises ValueError naming the prompt index and the field."""
    if isinstance(prompt, str):
        return prompt
    if not isinstance(prompt, list) or not prompt:
        raise ValueError(f"prompt {index}: must be a string or a non-empty list of chat messages "
                         f"(got {type(prompt).__name__})")
    for k, m in enumerate(prompt):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) \
                or not isinstance(m.get("content"), str):
            raise ValueError(f"prompt {index}: message {k} must be a dict with string 'role' and "
                             f"'content' (got {m!r:.120})")
    return prompt


def is_continuation(prompt: Prompt) -> bool:
    """True when ``prompt`` is a chat whose last message is an assistant message to continue."""
    return isinstance(prompt, list) and bool(prompt) and prompt[-1].get("role") == "assistant"


def render_with_tokenizer(tokenizer: Any, prompt: Prompt, model_id: str) -> str:
    """``prompt`` as text for a model with a (transformers) ``tokenizer``.

    A raw string is returned as is. Chat messages go through the tokenizer's chat template with
    a generation prompt, or, when the last message is the assistant's, with
    ``continue_final_message`` (the assistant turn is left open so generation continues it).

    Raises:
        ValueError: malformed prompt, or a chat prompt and the tokenizer has no chat template.
    """
    prompt = validate_prompt(prompt, 0)
    if isinstance(prompt, str):
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"model {model_id} has no chat template: pass raw string prompts")
    cont = is_continuation(prompt)
    return str(tokenizer.apply_chat_template(
        prompt, tokenize=False, add_generation_prompt=not cont, continue_final_message=cont))

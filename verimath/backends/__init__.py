"""Model backends behind one interface: transformers (CPU/GPU, GGUF), vLLM, OpenAI-compatible HTTP.

Importing this package is cheap: torch / transformers / httpx / vllm are imported only when a
backend of that kind is loaded. See :mod:`verimath.backends.base` for the contract.
"""

from __future__ import annotations

from verimath.backends.base import (
    Backend,
    BackendConfig,
    BackendError,
    Completion,
    Prompt,
    SamplingParams,
    derive_seed,
)
from verimath.backends.default_model import resolve_model

__all__ = [
    "Backend",
    "BackendConfig",
    "BackendError",
    "Completion",
    "Prompt",
    "SamplingParams",
    "derive_seed",
    "load_backend",
    "resolve_model",
]


def load_backend(config: BackendConfig) -> Backend:
    """Build the backend ``config.backend`` names, loading its model.

    Raises:
        ValueError: unknown backend name (already rejected by ``BackendConfig``).
        ImportError: ``vllm`` chosen but not installed (message says how to install it).
        FileNotFoundError: a local model path that does not exist.
        BackendError: the OpenAI-compatible server cannot be reached when its model is "default".
    """
    if config.backend == "transformers":
        from verimath.backends.hf import TransformersBackend

        return TransformersBackend(config)
    if config.backend == "vllm":
        from verimath.backends.vllm_backend import VLLMBackend

        return VLLMBackend(config)
    if config.backend == "openai":
        from verimath.backends.openai_http import OpenAIBackend

        return OpenAIBackend(config)
    raise ValueError(f"unknown backend {config.backend!r}: use transformers, vllm or openai")

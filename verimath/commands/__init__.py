"""Subcommands of the ``verimath`` CLI (see :mod:`verimath.cli`).

Shared argument groups live here; like the command modules, this imports only ``argparse``.
"""

from __future__ import annotations

import argparse

#: model flags -> dotted config keys (every job's config has a ``backend: BackendConfig``)
MODEL_FLAGS = {"model": "backend.model", "backend": "backend.backend",
               "base_url": "backend.base_url"}


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend`` and ``--base-url``, mapped to config keys by MODEL_FLAGS."""
    p.add_argument("--model", help="'default' (embedded SmolLM2-135M-Instruct), a dir, a .gguf, "
                   "or a hub id")
    p.add_argument("--backend", choices=["transformers", "vllm", "openai"])
    p.add_argument("--base-url", dest="base_url", help="OpenAI-compatible server URL")

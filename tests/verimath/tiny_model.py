"""A tiny random causal LM for tests: 2-layer Qwen2 (hidden 64) + an in-process BPE tokenizer.

``tiny_model_dir()`` builds it once per process (about a second) into a temporary directory that
is removed at exit, and returns the same path afterwards. Any test can load it with
``BackendConfig(model=str(tiny_model_dir()))`` or ``AutoModelForCausalLM.from_pretrained``.

The tokenizer is a byte-level BPE trained with ``tokenizers`` on generated math-flavoured lines,
wrapped as a ``PreTrainedTokenizerFast`` with a ChatML chat template; ``<|im_end|>`` is the EOS
token and ``<|endoftext|>`` the padding token. The weights are random (seeded), so the text is
gibberish but deterministic.
"""

from __future__ import annotations

import atexit
import functools
import random
import shutil
import tempfile
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def corpus(lines: int = 400, seed: int = 0) -> list[str]:
    """Deterministic training text: arithmetic, short code and prose."""
    rng = random.Random(seed)
    words = ("the answer is so we get then compute total each number sum product of and "
             "python print result def return solve problem step first next finally").split()
    out = []
    for k in range(lines):
        a, b = rng.randint(0, 999), rng.randint(1, 99)
        kind = k % 4
        if kind == 0:
            out.append(f"{a} + {b} = {a + b}")
        elif kind == 1:
            out.append(f"```python\nx = {a} * {b}\nprint(x)\n```\n```output\n{a * b}\n```")
        elif kind == 2:
            out.append(" ".join(rng.choice(words) for _ in range(12)) + ".")
        else:
            out.append(f"The answer is \\boxed{{{a - b}}}.")
    return out


def build_tiny_model(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny model (config, safetensors weights, tokenizer) to ``out_dir``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                     pad_token="<|endoftext|>", bos_token=None,
                                     chat_template=CHAT_TEMPLATE)
    config = Qwen2Config(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, tie_word_embeddings=True,
        eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id, bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    hf_tok.save_pretrained(str(out_dir))
    return out_dir


@functools.cache
def tiny_model_dir() -> Path:
    """The tiny model's directory, built on the first call of this process (removed at exit)."""
    root = Path(tempfile.mkdtemp(prefix="verimath-tiny-"))
    atexit.register(shutil.rmtree, root, True)
    return build_tiny_model(root / "tiny-qwen2")

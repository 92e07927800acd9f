"""Tiny random-weight chat models for tests, built locally (no hub).

A byte-level BPE tokenizer trained on the given texts with Qwen's special
tokens and chat template, and a 2-layer Qwen3 with hidden size 64. It trains
with LLaMA-Factory's `qwen`, `qwen3`, `qwen3_nothink` and `chatml` templates.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_tokenizer(texts: Iterable[str], out: Path, vocab_size: int = 2000):
    """Train a byte-level BPE tokenizer on `texts` and save it to `out`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_input_names=["input_ids", "attention_mask"],
        chat_template=CHAT_TEMPLATE,
    )
    fast.save_pretrained(str(out))
    return fast


# The size of every tiny random model the tests build: 2 layers, hidden 64, 4 heads (2 key/value heads).
TINY_SIZES = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}


def build_tiny_qwen3(out: Path, texts: Iterable[str], seed: int = 0) -> Path:
    """A random 2-layer Qwen3 and its tokenizer in `out` (about 1 MB)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tokenizer(texts, out)
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        **TINY_SIZES,
        head_dim=16,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(out))
    return out


def tiny_windowed_mistral(vocab_size: int, window: int = 16, seed: int = 0):
    """A random tiny Mistral whose attention sees only the last `window` tokens (in memory, not saved)."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    return MistralForCausalLM(MistralConfig(vocab_size=vocab_size, sliding_window=window, **TINY_SIZES)).eval()


def build_tiny_llama(out: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A random 2-layer Llama with SmolLM2's tokenizer in `out`: llama.cpp's converter recognises it.

    The tiny Qwen3's fixture-trained tokenizer is refused by llama.cpp's converter (an unknown
    pre-tokenizer); SmolLM2's is the "smollm" one it knows. Hidden size 256, so its weight rows are
    multiples of llama.cpp's K-quant block and Q4_K_M really quantizes them (about 14 MB at F16).
    """
    import shutil

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if (tokenizer_dir / name).is_file():
            shutil.copy2(tokenizer_dir / name, out / name)
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(out))
    return out


def build_tiny_of_architecture(out: Path, architecture: str, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A random 2-layer model of a transformers architecture (by class name) with the tokenizer of `tokenizer_dir`."""
    import shutil

    import torch
    import transformers
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if (tokenizer_dir / name).is_file():
            shutil.copy2(tokenizer_dir / name, out / name)
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    model_class = getattr(transformers, architecture)
    sizes = {
        "vocab_size": len(tokenizer),
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "max_position_embeddings": 4096,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    torch.manual_seed(seed)
    model_class(model_class.config_class(**sizes)).save_pretrained(str(out))
    return out

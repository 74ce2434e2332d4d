"""Tiny Hugging Face model directories built locally (no hub downloads).

`build_tiny_model(path, arch="llama")` writes config.json, safetensors weights
with random values, and a byte-level BPE tokenizer trained on a built-in
corpus, so tests, the demo and benchmarks have a real model directory to load.
Weights use a large standard deviation so greedy decoding does not collapse to
one repeated token, which keeps parity tests meaningful.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ARCHITECTURES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "mistral": ("MistralConfig", "MistralForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
}

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Kubernetes schedules pods onto nodes that have free GPUs.",
    "A language model predicts the next token from the previous ones.",
    "Paged attention stores keys and values in fixed-size blocks.",
    "Spot instances are cheaper but can be interrupted with short notice.",
    "Hello world! How are you today? I am fine, thank you.",
    "Continuous batching lets new requests join a running batch.",
    "Latency objectives: time to first token and inter-token latency.",
    "0123456789 + - * / = ( ) [ ] { } < > , . ; : ' \" ! ? @ # $ % ^ & _",
    "Émile a mangé une crème brûlée à Zürich — naïve café déjà vu.",
    "日本語のテキストも少し含めます。 中文文本。 한국어 문장.",
    "Emoji test: 🚀🔥✨ done.",
]


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of a tiny model. `num_heads` must divide `hidden_size`;
    `num_kv_heads` must divide `num_heads` (GQA when smaller)."""

    arch: str = "llama"
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    vocab_size: int = 384
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = False
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    init_std: float = 0.15
    seed: int = 0
    extra: dict = field(default_factory=dict)


def train_tokenizer(vocab_size: int):
    """A byte-level BPE tokenizer trained on the built-in corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _config(spec: TinyModelSpec, tokenizer):
    import transformers

    config_cls = getattr(transformers, ARCHITECTURES[spec.arch][0])
    kwargs = dict(
        vocab_size=spec.vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        rope_theta=spec.rope_theta,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        torch_dtype="float32",
        **spec.extra,
    )
    if spec.rope_scaling is not None:
        kwargs["rope_scaling"] = spec.rope_scaling
    return config_cls(**kwargs)


def build_tiny_model(path: str | Path, spec: TinyModelSpec | None = None, **overrides) -> Path:
    """Write a loadable model directory at `path` and return it."""
    import torch
    import transformers

    spec = spec or TinyModelSpec(**overrides)
    if spec.arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {spec.arch!r}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(min(spec.vocab_size, 384))
    if len(tokenizer) > spec.vocab_size:
        raise ValueError(f"vocab_size {spec.vocab_size} < tokenizer size {len(tokenizer)}")
    config = _config(spec, tokenizer)
    torch.manual_seed(spec.seed)
    model = getattr(transformers, ARCHITECTURES[spec.arch][1])(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2:
                param.normal_(0.0, spec.init_std)
            elif "bias" in name:
                param.normal_(0.0, 0.1)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path

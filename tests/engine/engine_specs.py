"""Prompts and tiny model shapes shared by the engine tests."""

PROMPTS = [
    "The quick brown fox",
    "Hello world! How are you today? I am fine,",
    "Paged attention stores keys and values in fixed-size blocks. Continuous batching lets",
    "日本語",
    "Kubernetes schedules pods onto nodes that have free GPUs. Spot instances are cheaper but "
    "can be interrupted with short notice. A language model predicts",
]

# tiny model shapes covering what the engine must get right
ARCH_SPECS = {
    "llama-gqa": dict(arch="llama"),
    "llama3-odd-heads-tied": dict(
        arch="llama", hidden_size=48, num_heads=3, num_kv_heads=1, tie_word_embeddings=True,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
    "mistral": dict(arch="mistral", num_heads=4, num_kv_heads=1),
    "qwen2-bias-tied": dict(arch="qwen2", tie_word_embeddings=True, num_heads=4, num_kv_heads=2),
}

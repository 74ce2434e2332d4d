"""Real-model fixtures: a live `halyard-worker serve` on SmolLM2's GGUF file and
transformers greedy references on the same file dequantized."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def reference_tokenizer(smollm2_hf_dir):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(smollm2_hf_dir)


@pytest.fixture(scope="session")
def hf_reference_greedy(smollm2_hf_dir):
    """greedy(prompt_ids, n) -> n token ids from transformers `generate`
    (float32, EOS suppressed for n tokens) on the dequantized GGUF."""
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(smollm2_hf_dir, dtype=torch.float32).eval()

    def greedy(prompt_ids: list[int], n: int) -> list[int]:
        ids = torch.tensor([prompt_ids])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=n, min_new_tokens=n, pad_token_id=2)
        return out[0, len(prompt_ids):].tolist()

    return greedy


@pytest.fixture(scope="module")
def gguf_server(smollm2_gguf, tmp_path_factory):
    """`halyard-worker serve --model <the .gguf file>` on a free local port; yields its URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("gguf-server") / "server.log"
    cmd = [sys.executable, "-m", "halyard_worker.cli", "serve", "--model", str(smollm2_gguf),
           "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port),
           "--device", "cpu", "--dtype", "float32", "--max-model-len", "1024"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def hf_greedy_any():
    """hf_greedy_any(model_dir, prompt_ids, n) -> n greedy token ids from transformers."""
    import torch
    import transformers

    models: dict = {}

    def run(path, prompt_ids: list[int], n: int) -> list[int]:
        if str(path) not in models:
            models[str(path)] = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        ids = torch.tensor([prompt_ids])
        with torch.no_grad():
            out = models[str(path)].generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                             max_new_tokens=n, min_new_tokens=n, pad_token_id=0)
        return out[0, len(prompt_ids):].tolist()

    return run

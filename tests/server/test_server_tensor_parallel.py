"""`halyard-worker serve --tensor-parallel-size 2` on CPU: two processes (gloo),
rank 0 serving the OpenAI API; a rank that dies takes the server down."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from openai import OpenAI

from halyard_worker import LLM, SamplingParams

from server_helpers import MODEL

pytestmark = pytest.mark.slow


def ranks_of(server) -> list[int]:
    """Process ids of the server's follower ranks."""
    out = subprocess.run(["pgrep", "-P", str(server.proc.pid), "-f", "halyard_worker.engine.tp_ranks"],
                         capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


@pytest.fixture(scope="module")
def tp_server(server_factory):
    return server_factory("--tensor-parallel-size", "2", "--max-model-len", "128")


def test_two_ranks_serve_the_openai_client_like_one(tp_server, tiny_model):
    assert len(ranks_of(tp_server)) == 1  # rank 0 is the server itself
    client = OpenAI(base_url=f"{tp_server.url}/v1", api_key="unused")
    reply = client.completions.create(model=MODEL, prompt="The quick brown fox", max_tokens=8,
                                      temperature=0, extra_body={"min_tokens": 8})
    with LLM(str(tiny_model), dtype="float32", max_model_len=128) as llm:
        [expected] = llm.generate("The quick brown fox", SamplingParams(temperature=0, max_tokens=8, min_tokens=8))
    assert reply.choices[0].text == expected.text
    chat = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}],
                                          max_tokens=4, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chat if c.choices)


def test_a_rank_that_dies_takes_the_server_down(server_factory):
    server = server_factory("--tensor-parallel-size", "2", "--max-model-len", "128")
    [rank1] = ranks_of(server)
    subprocess.run(["kill", "-9", str(rank1)], check=True)
    code = server.proc.wait(60)
    assert code == 70
    assert "tensor-parallel rank 1 exited" in server.output()


def test_a_size_that_does_not_split_the_heads_is_refused_at_start_up(tiny_model_factory):
    model = tiny_model_factory(arch="llama", hidden_size=48, num_heads=3, num_kv_heads=1)
    out = subprocess.run([sys.executable, "-m", "halyard_worker.cli", "serve", "--model", str(model),
                          "--tensor-parallel-size", "2", "--device", "cpu"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "--tensor-parallel-size (spec.resources.gpus) is 2" in out.stderr
    assert "3 attention heads" in out.stderr

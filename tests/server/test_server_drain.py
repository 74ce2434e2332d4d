"""SIGTERM drains: in-flight requests finish, new ones get 503, exit code 0."""
from __future__ import annotations

import json
import signal
import threading

import httpx
import pytest

from server_helpers import MODEL

pytestmark = pytest.mark.slow


class StreamReader(threading.Thread):
    """Reads one SSE completion stream in the background."""

    def __init__(self, url: str, max_tokens: int):
        super().__init__(daemon=True)
        self.url, self.max_tokens = url, max_tokens
        self.started = threading.Event()
        self.payloads: list[dict] = []
        self.done_marker = False
        self.error: Exception | None = None

    def run(self):
        body = {"model": MODEL, "prompt": "Hello", "max_tokens": self.max_tokens, "ignore_eos": True,
                "stream": True, "stream_options": {"include_usage": True}}
        try:
            with httpx.stream("POST", f"{self.url}/v1/completions", json=body, timeout=120) as resp:
                for line in resp.iter_lines():
                    if line == "data: [DONE]":
                        self.done_marker = True
                    elif line.startswith("data: "):
                        self.payloads.append(json.loads(line[6:]))
                        self.started.set()
        except Exception as err:  # reported by the test
            self.error = err
        finally:
            self.started.set()

    def finish_reason(self):
        reasons = [p["choices"][0]["finish_reason"] for p in self.payloads
                   if p.get("choices") and p["choices"][0]["finish_reason"]]
        return reasons[-1] if reasons else None

    def usage(self):
        return self.payloads[-1].get("usage") if self.payloads else None


@pytest.fixture(scope="module")
def long_model(tiny_model_factory):
    """A context long enough that the streams are still decoding when the test looks:
    the default tiny model's outputs finish in well under a second on a quiet machine."""
    return tiny_model_factory(max_position_embeddings=4096)


LONG = 3000  # tokens a stream asks for: seconds of decoding on CPU


def _start_streams(url, n, max_tokens):
    readers = [StreamReader(url, max_tokens) for _ in range(n)]
    for reader in readers:
        reader.start()
    for reader in readers:
        assert reader.started.wait(60)
    return readers


def test_sigterm_lets_in_flight_streams_finish_and_refuses_new_work(server_factory, long_model):
    server = server_factory("--drain-timeout", "60", model=long_model)
    readers = _start_streams(server.url, 3, LONG)
    server.proc.send_signal(signal.SIGTERM)
    # while draining: not ready, new requests refused with 503, probes still answer
    ready = httpx.get(f"{server.url}/ready", timeout=10)
    assert ready.status_code == 503 and ready.json()["reason"] == "draining"
    refused = httpx.post(f"{server.url}/v1/completions", json={"model": MODEL, "prompt": "Hi"}, timeout=10)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "draining"
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert f'halyard:draining{{model_name="{MODEL}"}} 1.0' in metrics
    for reader in readers:
        reader.join(120)
        assert reader.error is None, reader.error
        assert reader.done_marker
        assert reader.finish_reason() == "length"
        assert reader.usage()["completion_tokens"] == LONG
    assert server.proc.wait(60) == 0
    assert "drained" in server.output()


def test_requests_still_running_at_the_deadline_end_with_drain(server_factory, long_model):
    # The tiny model decodes hundreds of tokens a second on CPU: a short
    # deadline and long outputs make sure the deadline comes first.
    server = server_factory("--drain-timeout", "0.2", model=long_model)
    readers = _start_streams(server.url, 2, LONG)
    server.proc.send_signal(signal.SIGTERM)
    for reader in readers:
        reader.join(120)
        assert reader.error is None, reader.error
        assert reader.finish_reason() == "drain"
        assert reader.done_marker
        assert 0 < reader.usage()["completion_tokens"] < LONG  # partial output was kept
    assert server.proc.wait(60) == 0

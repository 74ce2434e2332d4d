"""Pure pieces: flag parsing, metric buckets, benchmark statistics and workload."""
from __future__ import annotations

import argparse
import math

import pytest

from halyard.bench.serve_data import arrival_times, build_workload
from halyard.bench.serve_stats import RequestResult, meets_slo, percentile, summarize
from halyard_worker.server.config import add_serve_arguments, config_from_args, parse_bytes
from halyard_worker.server.metrics import buckets_1_2_5


def _parse(*argv):
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


def _model_dir(path):
    """What `serve` checks a local model directory for at parse time (config.json, weights)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"")
    return path


def test_config_is_frozen_and_names_default_to_the_directory(tmp_path):
    model = _model_dir(tmp_path / "chat-8b")
    config = config_from_args(_parse("--model", str(model), "--host", "127.0.0.5", "--port", "9000",
                                     "--quantization", "int8", "--no-prefix-caching",
                                     "--kv-cache-memory", "64Mi"))
    assert config.served_model_name == "chat-8b"
    assert (config.host, config.port, config.quantization) == ("127.0.0.5", 9000, "int8")
    assert config.prefix_caching is False and config.kv_cache_memory == 64 * 2**20
    assert config.kernels == "auto"
    with pytest.raises(Exception):
        config.port = 1  # frozen


@pytest.mark.parametrize("argv", [
    ("--port", "70000"), ("--max-num-seqs", "0"), ("--max-queue", "-1"),
    ("--drain-timeout", "-5"), ("--gpu-memory-utilization", "1.5"),
    ("--gpu-memory-utilization", "0.5", "--kv-cache-memory", "1Gi"), ("--kv-cache-memory", "lots"),
    ("--kernels", "triton"),
])
def test_bad_flags_are_refused(tmp_path, argv):
    with pytest.raises(SystemExit):
        _parse("--model", str(tmp_path), *argv)


def test_missing_model_directory_and_template_name_the_flag(tmp_path):
    with pytest.raises(ValueError, match="--model"):
        config_from_args(_parse("--model", str(tmp_path / "nope")))
    with pytest.raises(ValueError, match="--chat-template"):
        config_from_args(_parse("--model", str(_model_dir(tmp_path)), "--chat-template", str(tmp_path / "t.jinja")))


def test_parse_bytes_units():
    assert parse_bytes("1024") == 1024
    assert parse_bytes("2Gi") == 2 * 2**30
    assert parse_bytes("500M") == 500 * 10**6


def test_token_buckets_follow_1_2_5_up_to_the_context():
    assert buckets_1_2_5(512) == [1, 2, 5, 10, 20, 50, 100, 200, 500]
    assert buckets_1_2_5(8192)[-1] == 5000


def test_percentile_matches_linear_interpolation():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile([], 50) == 0.0


def test_summary_uses_vllm_definitions():
    a = RequestResult(success=True, prompt_tokens=10, output_tokens=5, ttft=0.1, e2e=0.5,
                      itl=[0.1, 0.1, 0.1, 0.1])
    b = RequestResult(success=True, prompt_tokens=10, output_tokens=1, ttft=0.2, e2e=0.2)
    failed = RequestResult(error="HTTP 429")
    s = summarize([a, b, failed], duration=2.0, goodput={"ttft": 150})
    assert (s["completed"], s["failed"]) == (2, 1)
    assert s["output_throughput"] == 3.0 and s["request_throughput"] == 1.0
    assert math.isclose(s["tpot"]["mean_ms"], 100.0)  # (0.5-0.1)/(5-1); b has one token: no TPOT
    assert math.isclose(s["ttft"]["mean_ms"], 150.0)
    assert s["goodput"] == 0.5  # only `a` meets TTFT <= 150 ms
    assert s["errors"] == ["HTTP 429"]
    assert meets_slo(a, {"tpot": 100.0}) and not meets_slo(a, {"tpot": 99.0})


def _bench_args(**kw):
    base = dict(dataset="sharegpt", input_len=8, output_len=8, max_input_len=1024, max_output_len=512,
                num_prompts=200, request_rate=4.0, burstiness=1.0, seed=3)
    base.update(kw)
    return argparse.Namespace(**base)


def test_workload_is_seeded_and_shaped():
    one, two = build_workload(_bench_args()), build_workload(_bench_args())
    assert one == two
    inputs = sorted(r.input_len for r in one)
    assert 4 <= inputs[0] and inputs[-1] <= 1024
    assert inputs[len(inputs) // 2] < sum(inputs) / len(inputs)  # long right tail
    fixed = build_workload(_bench_args(dataset="fixed"))
    assert {(r.input_len, r.output_len) for r in fixed} == {(8, 8)}
    assert all(len(r.prompt.split()) == 8 for r in fixed)


def test_arrivals_have_the_requested_rate():
    import random

    times = arrival_times(random.Random(0), 4000, rate=10.0, burstiness=1.0)
    assert times == sorted(times)
    assert 9.0 < 4000 / times[-1] < 11.0
    assert arrival_times(random.Random(0), 3, float("inf"), 1.0) == [0.0, 0.0, 0.0]


def test_chat_template_file_overrides_the_tokenizers(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    from halyard_worker.server.runtime import ModelRuntime

    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}")
    config = config_from_args(_parse("--model", str(tiny_model), "--chat-template", str(template)))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    runtime = ModelRuntime(engine=None, tokenizer=tok, max_model_len=512,
                           chat_template=config.chat_template)
    ids = runtime.render_chat([{"role": "user", "content": "Hello"}])
    assert tok.decode(ids) == "[user] Hello\n"
    default = ModelRuntime(engine=None, tokenizer=tok, max_model_len=512)
    assert "<|assistant|>" in tok.decode(default.render_chat([{"role": "user", "content": "Hello"}]))


def test_bench_serve_client_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; import halyard.cli.main, halyard.bench.serve, "
            "halyard.bench.serve_client, halyard.bench.serve_stats; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _admit(gate, n):
    from halyard_worker.server.request import ServedRequest

    return gate.admit(ServedRequest(gate, None, n, None))


def test_gate_bounds_waiting_and_refuses_while_draining():
    from halyard_worker.server.admission import Gate
    from halyard_worker.server.errors import APIError

    rejected = []
    gate = Gate(max_running=2, max_queue=1, engine_waiting=lambda: 0, on_reject=rejected.append)
    _admit(gate, 2)
    third = _admit(gate, 1)  # waits: 1 of 1 allowed
    with pytest.raises(APIError) as full:
        _admit(gate, 1)
    assert full.value.status == 429
    third.cancel()  # never started: its slot comes back at once
    third.cancel()  # and only once
    assert gate.in_flight == 2
    _admit(gate, 1)
    gate.draining = True
    with pytest.raises(APIError) as draining:
        _admit(gate, 1)
    assert draining.value.status == 503
    assert rejected == ["queue_full", "draining"]


def test_request_beyond_running_plus_queue_is_400_naming_the_limit():
    from halyard_worker.server.admission import Gate
    from halyard_worker.server.errors import APIError

    gate = Gate(max_running=2, max_queue=1, engine_waiting=lambda: 0)
    gate.check_possible(3, "prompt")
    with pytest.raises(APIError) as impossible:
        gate.check_possible(4, "prompt")
    assert impossible.value.status == 400 and impossible.value.param == "prompt"
    assert "--max-num-seqs + --max-queue = 3" in impossible.value.message


def test_gate_counts_engine_waiting_once_the_batch_is_full():
    from halyard_worker.server.admission import Gate
    from halyard_worker.server.errors import APIError

    gate = Gate(max_running=4, max_queue=2, engine_waiting=lambda: 2)
    _admit(gate, 4)  # fills the batch: engine waiting not consulted
    with pytest.raises(APIError):
        _admit(gate, 1)  # the engine already has 2 waiting (KV-limited)


async def test_drainer_waits_for_in_flight_then_aborts_at_the_deadline():
    import asyncio

    from halyard_worker.server.admission import Gate
    from halyard_worker.server.drain import Drainer

    gate = Gate(max_running=4, max_queue=0, engine_waiting=lambda: 0)
    request = _admit(gate, 1)
    asyncio.get_running_loop().call_later(0.05, request.cancel)
    drainer = Drainer(gate, timeout=5.0)
    await drainer.start()
    assert drainer.state == "stopped" and not gate.drain_expired

    gate = Gate(max_running=4, max_queue=0, engine_waiting=lambda: 0)
    request = _admit(gate, 1)
    request.abort = request.cancel  # an engine abort ends the request
    drainer = Drainer(gate, timeout=0.05)
    await drainer.start()
    assert drainer.state == "stopped" and gate.drain_expired and gate.in_flight == 0


def test_model_may_be_a_file_uri(tmp_path):
    model = _model_dir(tmp_path / "m1")
    config = config_from_args(_parse("--model", f"file://{model}"))
    assert config.model == str(model) and config.served_model_name == "m1"


def test_kernels_flag_reaches_the_engine_config(tmp_path):
    from halyard_worker.server.runtime import engine_config

    config = config_from_args(_parse("--model", str(_model_dir(tmp_path)), "--device", "cpu", "--kernels", "torch"))
    assert engine_config(config).kernels == "torch"


def test_engine_waiting_counts_as_queued_only_when_the_kv_cache_binds(tmp_path):
    """A burst waits between engine steps while the cache has room: not a queue.
    With the cache nearly full, the engine's waiting requests are held back."""
    import dataclasses

    from halyard_worker.server.metrics import EngineGauges
    from halyard_worker.server.state import AppState

    class Runtime:
        def __init__(self, kv):
            self.kv = kv

        def gauges(self):
            return EngineGauges(running=1, waiting=3, kv_usage=self.kv, kv_capacity_tokens=1000,
                                preemptions=0, prefix_queries=0, prefix_hits=0)

    config = dataclasses.make_dataclass("C", [("served_model_name", str), ("max_num_seqs", int),
                                              ("max_queue", int), ("drain_timeout", float)])("m", 4, 2, 1.0)
    roomy, full = AppState(config, 128, Runtime(0.3)), AppState(config, 128, Runtime(0.95))
    _admit(roomy.gate, 4)
    _admit(roomy.gate, 2)  # 2 waiting by count: allowed although the engine reports 3 waiting
    _admit(full.gate, 4)
    with pytest.raises(Exception, match="admission queue is full"):
        _admit(full.gate, 1)  # 3 held back by memory + 1 > 2


def test_an_unexpected_error_is_a_500_with_a_request_id_and_no_internals(caplog):
    import asyncio

    import httpx
    from fastapi import FastAPI

    from halyard_worker.server.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret path /srv/models/x and a stack detail")

    async def call():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
            return await http.get("/boom", headers={"x-request-id": "req-42"})

    resp = asyncio.run(call())
    assert resp.status_code == 500
    error = resp.json()["error"]
    assert error["code"] == "internal_error" and "req-42" in error["message"]
    assert "secret" not in resp.text and "RuntimeError" not in resp.text
    assert "secret path" in caplog.text  # the details go to the log

"""/metrics: vLLM names, consistent histograms, monotonic counters, valid exposition."""
from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from server_helpers import MODEL, metric, scrape

pytestmark = pytest.mark.slow
MAX_TOKENS = 4
VLLM_NAMES = [
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:time_to_first_token_seconds_bucket", "vllm:time_to_first_token_seconds_count",
    "vllm:inter_token_latency_seconds_sum", "vllm:e2e_request_latency_seconds_count",
    "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:num_preemptions_total",
    "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
    "vllm:request_success_total", "vllm:request_prompt_tokens_count",
    "vllm:request_generation_tokens_sum",
    "halyard:draining", "halyard:kv_cache_capacity_tokens", "halyard:admission_queue_limit",
    "halyard:prefill_tokens_total", "halyard:prefill_budget_tokens_total",
]


@pytest.fixture(scope="module")
def server(server_factory):
    return server_factory("--max-queue", "7")


def _complete(server, prompt, stream=False):
    body = {"model": MODEL, "prompt": prompt, "max_tokens": MAX_TOKENS, "ignore_eos": True,
            "temperature": 0, "stream": stream, "stream_options": {"include_usage": True} if stream else None}
    if not stream:
        return httpx.post(f"{server.url}/v1/completions", json=body, timeout=60).json()["usage"]
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=60) as resp:
        lines = [line for line in resp.iter_lines() if line.startswith("data: {")]
    import json
    return json.loads(lines[-1][6:])["usage"]


@pytest.fixture(scope="module")
def after_four(server):
    """Samples after exactly four requests (three plain, one streamed)."""
    usages = [_complete(server, p) for p in ("Hello world", "Paged attention stores", "Spot")]
    usages.append(_complete(server, "Kubernetes schedules pods", stream=True))
    return usages, scrape(server.url)


def test_vllm_names_are_exposed_exactly(server, after_four):
    _, samples = after_four
    names = {key.partition("{")[0] for key in samples}
    missing = [n for n in VLLM_NAMES if n not in names]
    assert not missing
    assert not any(n.endswith("_total_total") or n.endswith("_created") for n in names)
    assert all(f'model_name="{MODEL}"' in key for key in samples if key.startswith("vllm:"))


def test_histograms_match_the_requests_made(after_four):
    usages, s = after_four
    n = len(usages)
    assert metric(s, "vllm:time_to_first_token_seconds_count") == n
    assert metric(s, "vllm:e2e_request_latency_seconds_count") == n
    assert metric(s, "vllm:request_prompt_tokens_count") == n
    assert metric(s, "vllm:request_generation_tokens_sum") == n * MAX_TOKENS
    assert metric(s, "vllm:inter_token_latency_seconds_count") == n * (MAX_TOKENS - 1)
    assert metric(s, "vllm:time_to_first_token_seconds_bucket", le="+Inf") == n
    assert metric(s, "vllm:request_prompt_tokens_sum") == sum(u["prompt_tokens"] for u in usages)
    assert metric(s, "vllm:prompt_tokens_total") == sum(u["prompt_tokens"] for u in usages)
    assert metric(s, "vllm:generation_tokens_total") == n * MAX_TOKENS
    assert metric(s, "vllm:request_success_total", finished_reason="length") == n


def test_prefill_budget_counts_the_prompts_computed_within_the_steps_budget(after_four):
    usages, s = after_four
    prefill, budget = metric(s, "halyard:prefill_tokens_total"), metric(s, "halyard:prefill_budget_tokens_total")
    assert 0 < prefill <= sum(u["prompt_tokens"] for u in usages)  # prefix-cache hits are not computed
    assert prefill < budget  # four short prompts, one at a time: most of each step's budget unused


def test_gauges_are_in_range_when_idle(after_four):
    _, s = after_four
    assert metric(s, "vllm:num_requests_running") == 0
    assert metric(s, "vllm:num_requests_waiting") == 0
    assert metric(s, "vllm:kv_cache_usage_perc") == 0
    assert metric(s, "halyard:kv_cache_capacity_tokens") > 0
    assert metric(s, "halyard:admission_queue_limit") == 7
    assert metric(s, "halyard:draining") == 0


def test_counters_are_monotonic_and_prefix_cache_counts_hits(server, after_four):
    _, before = after_four
    prompt = "Paged attention stores keys and values in fixed-size blocks. " * 3
    _complete(server, prompt)
    _complete(server, prompt)  # the second run finds the first one's full blocks cached
    after = scrape(server.url)
    for name in ("vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                 "vllm:request_success_total", "vllm:prefix_cache_queries_total",
                 "vllm:time_to_first_token_seconds_count", "halyard:prefill_tokens_total",
                 "halyard:prefill_budget_tokens_total"):
        assert metric(after, name) > metric(before, name), name
    assert metric(after, "vllm:prefix_cache_hits_total") > metric(before, "vllm:prefix_cache_hits_total")
    assert metric(after, "vllm:num_preemptions_total") >= metric(before, "vllm:num_preemptions_total")


def test_rejections_are_counted(server):
    before = metric(scrape(server.url), "halyard:requests_rejected_total")
    # a bad request is a client error, not an admission rejection
    httpx.post(f"{server.url}/v1/completions", json={"model": MODEL, "prompt": ""})
    assert metric(scrape(server.url), "halyard:requests_rejected_total") == before


def test_promtool_accepts_the_exposition(server, after_four):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`)")
    text = httpx.get(f"{server.url}/metrics").text
    result = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                            capture_output=True, timeout=60)
    # Exit 1 is a parse error; 3 means lint findings. The only finding allowed
    # is the colon in names, which the vLLM naming contract requires.
    output = (result.stdout + result.stderr).strip()
    assert result.returncode in (0, 3), output
    findings = [line for line in output.splitlines() if line.strip()]
    assert all("should not contain ':'" in line for line in findings), output

"""The router in front of real workers on the real control plane.

Three worker pods behind `<name>-router`: shared-prefix requests land on one
worker and hit its prefix cache more than round robin over the same pods; a
spot node deleted under load loses no request; when every worker is
saturated a batch-tier request is shed while critical ones wait in the
router's admission queue and succeed; requests waiting in the router's
queue scale a deployment up although its worker reports no queue; a
`minReplicas: 0` deployment serves its first request after scaling up (held,
not failed) and returns to zero once idle.
"""
from __future__ import annotations

import contextlib
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from e2e_kube import DEPLOYMENT_LABEL, condition, is_ready, llmd, pool_of, wait_for

pytestmark = pytest.mark.e2e
LOAD_TIMEOUT = 300
ENGINE = {"dtype": "float32", "maxModelLen": 512, "maxNumSeqs": 2}
LONG_ENGINE = {**ENGINE, "maxModelLen": 8192}
QUEUED_CRITICAL = 'halyard:router_requests_queued{tier="critical"}'
SHED_BATCH = 'halyard:router_shed_total{reason="timeout",tier="batch"}'
SHARED = "You answer questions for the support team of tenant {0}. Keep every answer short and kind. " * 3


def _workers(kubectl, ns, name):
    return [p for p in kubectl.items("pods", "-n", ns, "-l", f"{DEPLOYMENT_LABEL}={name}")
            if not p["metadata"].get("deletionTimestamp")]


def _routers(kubectl, ns, name, count=2):
    pods = [p for p in kubectl.items("pods", "-n", ns, "-l", f"halyard.dev/router={name}")
            if not p["metadata"].get("deletionTimestamp") and is_ready(p)]
    return pods if len(pods) >= count else None


def _url(pod) -> str:
    return f"http://{pod['status']['podIP']}:8000"


def _complete(url, name, prompt, headers=None, max_tokens=4, timeout=120.0):
    body = {"model": name, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
    return httpx.post(f"{url}/v1/completions", json=body, headers=headers, timeout=timeout)


def _hold_stream(url, name, prompt, max_tokens) -> socket.socket:
    """A streaming completion on a bare connection that the caller never reads and closes when it likes."""
    where = urlparse(url)
    body = json.dumps({"model": name, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                       "ignore_eos": True, "stream": True}).encode()
    sock = socket.create_connection((where.hostname, where.port), timeout=10)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (where.netloc.encode(), len(body), body))
    return sock


def _metric(url, series) -> float:
    """The value of one series (name and labels as Prometheus prints them) at url/metrics; 0 when absent."""
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(series + " ") or line.startswith(series + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _engine_load(worker_url) -> tuple[float, float]:
    return _metric(worker_url, "vllm:num_requests_running"), _metric(worker_url, "vllm:num_requests_waiting")


def _prefix_counters(pods) -> tuple[float, float]:
    hits = queries = 0.0
    for pod in pods:
        for line in httpx.get(f"{_url(pod)}/metrics", timeout=10).text.splitlines():
            if line.startswith("vllm:prefix_cache_hits_total"):
                hits += float(line.rsplit(" ", 1)[1])
            elif line.startswith("vllm:prefix_cache_queries_total"):
                queries += float(line.rsplit(" ", 1)[1])
    return hits, queries


def _ready_deployment(kubectl, ns, name, model_uri, replicas=3, engine=ENGINE, **spec):
    kubectl.apply(llmd(name, ns, model_uri, replicas=replicas, engine=engine, **spec))
    workers = wait_for(lambda: (ws := _workers(kubectl, ns, name)) and len(ws) == replicas
                       and all(map(is_ready, ws)) and ws, LOAD_TIMEOUT, f"{replicas} Ready workers")
    routers = wait_for(lambda: _routers(kubectl, ns, name), 120, "2 Ready routers")
    return workers, routers


def test_shared_prefixes_land_on_one_worker_and_beat_round_robin(kubectl, operator, namespace, model_uri):
    name = "routed"
    workers, routers = _ready_deployment(kubectl, namespace, name, model_uri)
    router = _url(routers[0])
    wait_for(lambda: httpx.get(f"{router}/ready", timeout=5).json().get("backends") == 3, 60, "3 backends")
    start = _prefix_counters(workers)
    served = [_complete(router, name, SHARED.format(1) + f"Question {i}?") for i in range(9)]
    assert all(r.status_code == 200 for r in served), [r.text for r in served if r.status_code != 200]
    assert len({r.headers["X-Halyard-Backend"] for r in served}) == 1
    middle = _prefix_counters(workers)
    for i in range(9):  # what a ClusterIP Service does: round robin over the same pods
        assert _complete(_url(workers[i % 3]), name, SHARED.format(2) + f"Question {i}?").status_code == 200
    end = _prefix_counters(workers)
    routed_rate = (middle[0] - start[0]) / (middle[1] - start[1])
    round_robin_rate = (end[0] - middle[0]) / (end[1] - middle[1])
    assert routed_rate > round_robin_rate, (routed_rate, round_robin_rate)


def test_spot_node_deleted_under_load_loses_no_request(kubectl, operator, namespace, model_uri, nodes):
    name = "spotty"
    workers, routers = _ready_deployment(kubectl, namespace, name, model_uri,
                                         capacity={"spot": {"enabled": True, "onDemandFloor": 1}})
    router = _url(routers[0])
    victim = next(p for p in workers if pool_of(p, nodes()) == "spot")
    node = kubectl.get_json("node", victim["spec"]["nodeName"])
    results, stop = [], [time.monotonic() + 600]
    pool = ThreadPoolExecutor(4)

    def loop(i):
        while time.monotonic() < stop[0]:
            results.append(_complete(router, name, f"Request {i} {len(results)}", max_tokens=16, timeout=300))

    try:
        loops = [pool.submit(loop, i) for i in range(4)]
        time.sleep(5)
        kubectl.run("delete", "node", node["metadata"]["name"], "--wait=false")
        wait_for(lambda: victim["metadata"]["name"] not in {p["metadata"]["name"] for p in _workers(kubectl, namespace, name)},
                 180, "the pod on the deleted node gone")
        time.sleep(5)  # requests keep coming while its process drains and stops
        stop[0] = 0.0
        for f in loops:
            f.result(timeout=400)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
            node["metadata"].pop(key, None)
        status = node.pop("status", {})
        node["status"] = {k: status[k] for k in ("capacity", "allocatable") if k in status}
        kubectl.apply(node)  # the spot node comes back, GPUs and all, for the next tests
    failed = [r.text for r in results if r.status_code != 200]
    assert results and not failed, failed[:3]
    served_by = {r.headers["X-Halyard-Backend"] for r in results}
    assert len(served_by) >= 2


@pytest.fixture(scope="module")
def long_model_uri(tmp_path_factory):
    """The tiny model with room for 8192 positions: a stream of 8000 tokens keeps a worker busy for minutes."""
    from halyard.testing.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("long-model"), max_position_embeddings=8192)
    return f"file://{Path(path).resolve()}"


def test_batch_is_shed_before_critical_when_the_worker_is_saturated(kubectl, operator, namespace, long_model_uri):
    name = "tiered"
    # saturation 2 (maxNumSeqs): on the one worker critical requests may have 4 in flight, batch ones 2
    waits = {"batch": "2s", "standard": "2s", "critical": "280s"}
    workers, routers = _ready_deployment(kubectl, namespace, name, long_model_uri, replicas=1, tier="critical",
                                         engine=LONG_ENGINE, router={"queue": {"maxWait": waits}})
    router, worker = _url(routers[0]), _url(workers[0])
    wait_for(lambda: httpx.get(f"{router}/ready", timeout=5).json().get("backends") == 1, 60, "1 backend")
    pool = ThreadPoolExecutor(1)
    try:
        with contextlib.ExitStack() as held:
            # four 8000-token streams nobody reads or ends: 2 run and 2 wait in the engine until closed
            for i in range(4):
                held.callback(_hold_stream(router, name, f"Long story {i}", 8000).close)
            wait_for(lambda: _engine_load(worker) == (2.0, 2.0), 120, "2 running + 2 waiting on the worker")
            critical = pool.submit(_complete, router, name, "Critical question", timeout=300)
            wait_for(lambda: _metric(router, QUEUED_CRITICAL) == 1, 60, "the critical request in the admission queue")
            shed = _complete(router, name, "Batch question", headers={"X-Halyard-Tier": "batch"}, timeout=60)
            still = _engine_load(worker), _metric(router, QUEUED_CRITICAL), critical.done()
        # the streams are closed: the router ends them upstream and the queued critical request takes a slot
        answer = critical.result(timeout=300)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    assert shed.status_code == 429, shed.text
    message = shed.json()["error"]["message"]
    assert "batch-tier" in message and "--queue-wait-batch" in message and shed.headers["Retry-After"]
    assert _metric(router, SHED_BATCH) == 1
    assert still == ((2.0, 2.0), 1, False), "the worker stayed saturated and the critical request waited"
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Halyard-Backend"] == workers[0]["metadata"]["name"]
    assert 'halyard:router_shed_total{reason="timeout",tier="critical"}' not in httpx.get(f"{router}/metrics").text


def _events(kubectl, ns, reason):
    return [e["message"] for e in kubectl.items("events", "-n", ns, "--field-selector", f"reason={reason}")]


def test_requests_waiting_in_the_router_scale_the_deployment_up(kubectl, operator, namespace, long_model_uri):
    name = "queued"
    # batch tier, maxNumSeqs 2: the router sends the worker at most 2 requests, so the worker's own queue
    # stays <= 2 and never passes targetQueuePerReplica 2; only the router's queue can
    waits = {"batch": "280s", "standard": "280s", "critical": "280s"}
    kubectl.apply(llmd(name, namespace, long_model_uri, engine=LONG_ENGINE, tier="batch",
                       router={"queue": {"maxWait": waits}},
                       scaling={"minReplicas": 1, "maxReplicas": 2, "targetQueuePerReplica": 2,
                                "behavior": {"scaleUp": {"stabilizationWindow": "0s"}}}))
    workers = wait_for(lambda: (ws := _workers(kubectl, namespace, name)) and all(map(is_ready, ws)) and ws,
                       LOAD_TIMEOUT, "1 Ready worker")
    routers = wait_for(lambda: _routers(kubectl, namespace, name), 120, "2 Ready routers")
    router, worker = _url(routers[0]), _url(workers[0])
    wait_for(lambda: httpx.get(f"{router}/ready", timeout=5).json().get("backends") == 1, 60, "1 backend")
    wait_for(lambda: (c := condition(kubectl.get_json("llmd", name, "-n", namespace), "ScalingActive"))
             and c["status"] == "True", 60, "ScalingActive=True from scraped metrics")
    with contextlib.ExitStack() as held:
        for i in range(5):  # 2 run on the worker, 3 wait in the router's admission queue
            held.callback(_hold_stream(router, name, f"Long story {i}", 8000).close)
        wait_for(lambda: _engine_load(worker) == (2.0, 0.0), 120, "2 running and none waiting on the worker")
        wait_for(lambda: _metric(router, 'halyard:router_requests_queued{tier="batch"}') == 3, 60,
                 "3 requests in the router's queue")
        obj = wait_for(lambda: (o := kubectl.get_json("llmd", name, "-n", namespace))
                       and o["status"].get("desiredReplicas") == 2 and o, 120, "scale-up to 2")
    assert obj["status"]["metrics"]["queue"] >= 3, obj["status"]["metrics"]
    scaled = [m for m in _events(kubectl, namespace, "Scaled") if "1 -> 2" in m]
    assert scaled and "queue" in scaled[0], scaled


def test_scale_from_zero_holds_the_first_request_and_returns_to_zero(kubectl, operator, namespace, model_uri):
    name = "cold"
    kubectl.apply(llmd(name, namespace, model_uri, engine=ENGINE, router={"holdTimeout": "280s"},
                       scaling={"minReplicas": 0, "maxReplicas": 1,
                                "behavior": {"scaleDown": {"stabilizationWindow": "20s"}}}))
    routers = wait_for(lambda: _routers(kubectl, namespace, name), 120, "2 Ready routers")
    assert not _workers(kubectl, namespace, name)
    started = time.monotonic()
    answer = _complete(_url(routers[0]), name, "Hello", timeout=300)
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - started > 1.0  # it waited for a worker to start
    assert answer.headers["X-Halyard-Backend"] in {p["metadata"]["name"] for p in _workers(kubectl, namespace, name)}
    idle = time.monotonic()
    wait_for(lambda: not _workers(kubectl, namespace, name), 180, "back to zero workers once idle")
    assert time.monotonic() - idle >= 15, "scaled to zero before the 20s scale-down window"

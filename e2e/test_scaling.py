"""The scaling brain on the real control plane.

Rising load scales an autoscaled deployment up and falling load scales it
down after its stabilization window (real workers, real /metrics scrapes); an
interruption taint on a spot node starts the replacement and drains the pod
while its in-flight requests complete; a full spot pool falls back to
on-demand and returns.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from e2e_kube import DEPLOYMENT_LABEL, condition, is_ready, llmd, pool_of, wait_for

pytestmark = pytest.mark.e2e
PLACEHOLDER = {"env": [{"name": "HALYARD_DEV_RUNNER", "value": "skip"}]}
LOAD_TIMEOUT = 300  # model load on a shared CPU
INTERRUPTION_TAINT = "halyard.dev/interruption"
INFLIGHT = 16  # streams of 480 tokens, one at a time (maxNumSeqs 1): several seconds of work in flight


def _live_pods(kubectl, ns, name):
    return [p for p in kubectl.items("pods", "-n", ns, "-l", f"{DEPLOYMENT_LABEL}={name}")
            if not p["metadata"].get("deletionTimestamp")]


def _ready_pods(kubectl, ns, name, count):
    pods = [p for p in _live_pods(kubectl, ns, name) if is_ready(p)]
    return pods if len(pods) == count else None


def _events(kubectl, ns, reason):
    return [e["message"] for e in kubectl.items("events", "-n", ns, "--field-selector", f"reason={reason}")]


def _client(pod, timeout=120):
    from openai import OpenAI

    port = pod["spec"]["containers"][0]["ports"][0]["containerPort"]
    return OpenAI(base_url=f"http://{pod['status']['podIP']}:{port}/v1", api_key="e2e", timeout=timeout,
                  max_retries=0)


class Load:
    """`streams` clients sending streaming completions back to back until stopped."""

    def __init__(self, pod, name, streams, max_tokens):
        self.client, self.name, self.max_tokens = _client(pod), name, max_tokens
        self.stop, self.finished, self.errors = threading.Event(), [], []
        self.pool = ThreadPoolExecutor(streams)
        self.futures = [self.pool.submit(self._loop) for _ in range(streams)]

    def _loop(self):
        while not self.stop.is_set():
            try:
                self.finished.append(_stream(self.client, self.name, self.max_tokens))
            except Exception as exc:  # noqa: BLE001 - recorded and asserted on by the test
                self.errors.append(repr(exc))
                time.sleep(0.5)

    def close(self):
        self.stop.set()
        self.pool.shutdown(wait=True)


def _stream(client, model, max_tokens):
    """One streamed completion -> (finish_reason, number of content chunks)."""
    chunks, reason = 0, None
    for chunk in client.completions.create(model=model, prompt="Kubernetes schedules", max_tokens=max_tokens,
                                           temperature=0, stream=True, extra_body={"ignore_eos": True}):
        choice = chunk.choices[0] if chunk.choices else None
        if choice is not None:
            chunks += bool(choice.text)
            reason = choice.finish_reason or reason
    return reason, chunks


def test_rising_load_scales_up_and_falling_load_scales_down(kubectl, operator, namespace, model_uri):
    name = "auto"
    kubectl.apply(llmd(name, namespace, model_uri, engine={"dtype": "float32", "maxModelLen": 256, "maxNumSeqs": 2},
                       scaling={"minReplicas": 1, "maxReplicas": 2, "targetQueuePerReplica": 1,
                                "behavior": {"scaleUp": {"stabilizationWindow": "0s"},
                                             "scaleDown": {"stabilizationWindow": "20s"}}}))
    pod = wait_for(lambda: _ready_pods(kubectl, namespace, name, 1), LOAD_TIMEOUT, "1 Ready replica")[0]
    wait_for(lambda: (c := condition(kubectl.get_json("llmd", name, "-n", namespace), "ScalingActive"))
             and c["status"] == "True", 60, "ScalingActive=True from scraped metrics")

    load = Load(pod, name, streams=8, max_tokens=64)
    try:
        obj = wait_for(lambda: (o := kubectl.get_json("llmd", name, "-n", namespace))
                       and o["status"].get("desiredReplicas") == 2 and o, 90, "scale-up to 2 under load")
        assert obj["status"]["metrics"]["queue"] >= 1, obj["status"]["metrics"]
        wait_for(lambda: _ready_pods(kubectl, namespace, name, 2), LOAD_TIMEOUT, "2 Ready replicas")
    finally:
        load.close()
    assert not load.errors, load.errors[:3]
    assert load.finished and all(reason == "length" for reason, _ in load.finished)
    scaled_up = [m for m in _events(kubectl, namespace, "Scaled") if "1 -> 2" in m]
    assert scaled_up and scaled_up[0].startswith(f"Scaled {namespace}/{name} 1 -> 2: "), scaled_up

    went_idle = time.monotonic()
    wait_for(lambda: kubectl.get_json("llmd", name, "-n", namespace)["status"].get("desiredReplicas") == 1,
             120, "scale-down to 1 once idle")
    assert time.monotonic() - went_idle >= 15, "scaled down before the 20s stabilization window"
    wait_for(lambda: len(_live_pods(kubectl, namespace, name)) == 1, 90, "1 worker pod left")
    assert [m for m in _events(kubectl, namespace, "Scaled") if "2 -> 1" in m]


def _set_taint(kubectl, node, on: bool):
    if on:
        kubectl.run("taint", "node", node, f"{INTERRUPTION_TAINT}=true:NoSchedule", "--overwrite")
    else:
        kubectl.run("taint", "node", node, f"{INTERRUPTION_TAINT}:NoSchedule-", check=False)


def test_interruption_drains_the_spot_pod_after_starting_its_replacement(kubectl, operator, namespace,
                                                                          model_uri, nodes):
    name = "hedged"
    kubectl.apply(llmd(name, namespace, model_uri, replicas=2,
                       engine={"dtype": "float32", "maxModelLen": 512, "maxNumSeqs": 1, "drainTimeout": "600s"},
                       capacity={"spot": {"enabled": True, "onDemandFloor": 1}}))
    pods = wait_for(lambda: _ready_pods(kubectl, namespace, name, 2), LOAD_TIMEOUT, "2 Ready replicas")
    victim = next(p for p in pods if pool_of(p, nodes()) == "spot")
    node, victim_name = victim["spec"]["nodeName"], victim["metadata"]["name"]
    before = {p["metadata"]["uid"] for p in pods}

    requests = ThreadPoolExecutor(INFLIGHT)
    inflight = [requests.submit(_stream, _client(victim, timeout=600), name, 480) for _ in range(INFLIGHT)]
    time.sleep(1.0)  # admitted; one runs, the rest wait in the engine's queue
    _set_taint(kubectl, node, True)
    try:
        def replacement_and_drain():
            live = kubectl.items("pods", "-n", namespace, "-l", f"{DEPLOYMENT_LABEL}={name}")
            gone = next((p for p in live if p["metadata"]["name"] == victim_name), None)
            fresh = [p for p in live if p["metadata"]["uid"] not in before]
            draining = gone is None or gone["metadata"].get("deletionTimestamp")
            return fresh and draining and (fresh, gone)

        fresh, gone = wait_for(replacement_and_drain, 60, "a replacement pod and the spot pod draining")
        if gone is not None:  # the replacement was created no later than the drain began
            assert min(p["metadata"]["creationTimestamp"] for p in fresh) <= gone["metadata"]["deletionTimestamp"]
        assert not all(f.done() for f in inflight), "requests ended before the drain: nothing was in flight"
        # The drain lets every admitted stream finish (16 x 306 tokens one at a time: minutes
        # on a loaded CPU), so the timeout is generous; the worker exits as soon as it is empty.
        results = [f.result(timeout=600) for f in inflight]
        assert all(reason == "length" and chunks > 0 for reason, chunks in results), results
        drained = [m for m in _events(kubectl, namespace, "Draining") if victim_name in m]
        assert drained and node in drained[0] and INTERRUPTION_TAINT in drained[0]
        wait_for(lambda: _ready_pods(kubectl, namespace, name, 2), LOAD_TIMEOUT, "2 Ready replicas again")
        assert not any(p["spec"].get("nodeName") == node for p in _live_pods(kubectl, namespace, name))
    finally:
        requests.shutdown(wait=False, cancel_futures=True)
        _set_taint(kubectl, node, False)


def _filler(namespace, replicas, gpus):
    """Pods outside Halyard that take every spot GPU (placeholders: no process). Their
    priority is above Halyard's standard tier, so the scheduler does not preempt them."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "filler", "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "filler"}},
                     "template": {"metadata": {"labels": {"app": "filler"}}, "spec": {
                         "nodeSelector": {"halyard.dev/dev-pool": "spot"},
                         "priorityClassName": "halyard-critical",
                         "tolerations": [{"operator": "Exists"}],
                         "containers": [{"name": "c", "image": "pause", "env": PLACEHOLDER["env"],
                                         "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}}}}


def _pool_replicas(kubectl, ns, name):
    obj = kubectl.get_json("llmd", name, "-n", ns)
    fallback = condition(obj, "SpotFallbackActive") or {}
    status = obj.get("status") or {}
    return status.get("onDemandReplicas"), status.get("spotReplicas"), fallback.get("status")


def _wait_pools(kubectl, ns, name, expected, timeout, what):
    """Wait until (on-demand, spot, SpotFallbackActive) == expected; on timeout show them and the pods."""
    seen = []

    def check():
        seen.append(_pool_replicas(kubectl, ns, name))
        return seen[-1] == expected

    try:
        wait_for(check, timeout, what)
    except AssertionError as exc:
        pods = [(p["metadata"]["name"], p["spec"].get("nodeName"), p["status"].get("phase"), is_ready(p))
                for p in kubectl.items("pods", "-n", ns)]
        raise AssertionError(f"{exc}; (on-demand, spot, fallback) = {seen[-1] if seen else None}; pods {pods}")


def test_full_spot_pool_falls_back_to_on_demand_and_returns(kubectl, operator, namespace, model_uri, nodes):
    spot_nodes = [n for n in nodes().values() if n["metadata"]["labels"].get("halyard.dev/dev-pool") == "spot"]
    per_node = int(spot_nodes[0]["status"]["allocatable"]["nvidia.com/gpu"])
    kubectl.apply(_filler(namespace, len(spot_nodes), per_node))
    wait_for(lambda: len([p for p in kubectl.items("pods", "-n", namespace, "-l", "app=filler")
                          if p["spec"].get("nodeName")]) == len(spot_nodes), 120, "the spot pool filled")
    name = "hedge"
    kubectl.apply(llmd(name, namespace, model_uri, replicas=3,
                       capacity={"spot": {"enabled": True, "onDemandFloor": 1, "pendingTimeout": "5s"}}))
    _wait_pools(kubectl, namespace, name, (3, 2, "True"), 120, "fallback: 3 on-demand pods while 2 spot pods pend")
    wait_for(lambda: len([p for p in _live_pods(kubectl, namespace, name)
                          if is_ready(p) and pool_of(p, nodes()) == "on-demand"]) == 3, LOAD_TIMEOUT,
             "3 Ready on-demand replicas serve while spot is full")
    obj = kubectl.get_json("llmd", name, "-n", namespace)
    assert "Pending longer than 5s" in condition(obj, "SpotFallbackActive")["message"]

    kubectl.run("delete", "deployment", "filler", "-n", namespace)
    _wait_pools(kubectl, namespace, name, (1, 2, "False"), LOAD_TIMEOUT, "spot Ready again: back to the on-demand floor")
    wait_for(lambda: _ready_pods(kubectl, namespace, name, 3), LOAD_TIMEOUT, "3 Ready pods: 1 on-demand + 2 spot")
    assert sorted(pool_of(p, nodes()) for p in _live_pods(kubectl, namespace, name)) == ["on-demand", "spot", "spot"]

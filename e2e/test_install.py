"""The documented install (`kubectl apply -k manifests/`, the operator running from
the base's Deployment on the dev cluster's CPU node, system-0) and what a user then sees in
`kubectl get llmd`, `kubectl describe llmd` and `kubectl events` -- for a healthy
deployment and for each failure class: a model the worker cannot load, a GPU
product no node has, a worker that rejects its command line at start-up.

The session's local operator is stopped while this module runs (two operators
must never reconcile at once) and started again afterwards.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e_kube import condition, llmd, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "halyard-system"
TIMEOUT = 240


@pytest.fixture(scope="module")
def installed(kubectl, operator):
    operator.stop()
    kubectl.run("apply", "-k", str(ROOT / "manifests"), "--server-side", "--force-conflicts")
    kubectl.run("rollout", "status", "deployment/halyard-operator", "-n", SYSTEM, "--timeout=120s", timeout=150)
    yield
    kubectl.run("delete", "deployment", "halyard-operator", "-n", SYSTEM, "--wait=true", "--timeout=60s",
                check=False, timeout=90)
    wait_for(lambda: not kubectl.items("pods", "-n", SYSTEM), 60, "the operator pod to be gone")
    operator.start()


def _events(kubectl, namespace: str, name: str) -> list[dict]:
    """`kubectl events --for llmdeployment/NAME` as JSON."""
    out = kubectl.run("events", "-n", namespace, "--for", f"llmdeployment/{name}", "-o", "json")
    return json.loads(out).get("items", []) if out.strip() else []


def _degraded_with(kubectl, namespace: str, name: str, reason: str):
    def check():
        obj = kubectl.get_json("llmd", name, "-n", namespace)
        cond = condition(obj, "Degraded")
        return cond and cond["status"] == "True" and cond["reason"] == reason and obj
    return wait_for(check, TIMEOUT, f"Degraded=True reason {reason} on {name}")


def _shown_to_the_user(kubectl, namespace: str, name: str, reason: str, quote: str, fix: str) -> None:
    """get llmd's Reason column, describe's condition and Events, and `kubectl events --for`."""
    table = kubectl.run("get", "llmd", name, "-n", namespace)
    header, row = table.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "READY", "REASON"] and row.split()[1:3] == ["False", reason], table
    described = kubectl.run("describe", "llmd", name, "-n", namespace)
    assert quote in described and fix in described
    assert f"Warning  {reason}" in described and "halyard-operator" in described, described
    warnings = wait_for(lambda: [e for e in _events(kubectl, namespace, name) if e["reason"] == reason], 30,
                        f"a {reason} Event")
    assert len(warnings) == 1 and quote in warnings[0]["message"] and warnings[0]["type"] == "Warning"
    assert warnings[0]["reportingComponent"] == "halyard-operator"


def test_the_operator_runs_from_the_kustomize_base_on_a_cpu_node(kubectl, installed):
    pods = kubectl.items("pods", "-n", SYSTEM, "-l", "app.kubernetes.io/name=halyard-operator")
    assert len(pods) == 2  # leader and standby, each at its own pod IP
    for pod in pods:
        node = kubectl.get_json("node", pod["spec"]["nodeName"])
        assert node["metadata"]["labels"]["halyard.dev/dev-pool"] == "system"  # the GPU nodes are tainted
    # One replica leads (and runs kopf); `kubectl logs` shows each; the standby only waits for the Lease.
    logs = wait_for(lambda: (ls := [kubectl.run("logs", "-n", SYSTEM, p["metadata"]["name"]) for p in pods])
                    and any("kopf" in log for log in ls) and ls, 60, "the leader's kopf log lines")
    assert sum("kopf" in log for log in logs) == 1, logs  # never two operators reconciling


def test_a_healthy_deployment_is_ready_with_events_where_kubectl_looks(kubectl, installed, namespace, model_uri):
    kubectl.apply(llmd("ok", namespace, model_uri))

    def ready():
        obj = kubectl.get_json("llmd", "ok", "-n", namespace)
        cond = condition(obj, "Ready")
        return cond and cond["status"] == "True" and obj
    obj = wait_for(ready, TIMEOUT, "Ready=True")
    assert all(c["message"] for c in obj["status"]["conditions"]), obj["status"]["conditions"]
    assert obj["status"].get("reason", "") == ""
    events = wait_for(lambda: [e for e in _events(kubectl, namespace, "ok") if e["reason"] == "Created"], 30,
                      "Created events")
    ref = events[0]["involvedObject"]
    assert (ref["apiVersion"], ref["kind"], ref["name"], ref["uid"]) == (
        "halyard.dev/v1alpha1", "LLMDeployment", "ok", obj["metadata"]["uid"])
    assert {e["reportingComponent"] for e in events} == {"halyard-operator"}
    described = kubectl.run("describe", "llmd", "ok", "-n", namespace)
    assert f"Created Deployment {namespace}/ok-ondemand" in described


def test_a_model_the_worker_cannot_load(kubectl, installed, namespace):
    kubectl.apply(llmd("badmodel", namespace, "file:///models/does-not-exist"))
    obj = _degraded_with(kubectl, namespace, "badmodel", "ModelLoadFailed")
    message = condition(obj, "Degraded")["message"]
    assert "'/models/does-not-exist' does not exist" in message and "check spec.model.uri" in message
    assert "ModelLoadFailed" in condition(obj, "Ready")["message"]
    _shown_to_the_user(kubectl, namespace, "badmodel", "ModelLoadFailed", "does not exist", "spec.model.uri")
    # the worker keeps crash-looping: still one Event, not one per restart
    pod = wait_for(lambda: [p for p in kubectl.items("pods", "-n", namespace)
                            if p["status"].get("containerStatuses", [{}])[0].get("restartCount", 0) >= 3],
                   TIMEOUT, "3 restarts")[0]
    assert pod["spec"]["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert len([e for e in _events(kubectl, namespace, "badmodel") if e["reason"] == "ModelLoadFailed"]) == 1


def test_a_gpu_product_no_node_has(kubectl, installed, namespace, model_uri):
    kubectl.apply(llmd("nogpu", namespace, model_uri, resources={"gpus": 1, "gpuProduct": "NVIDIA-B200"}))
    obj = _degraded_with(kubectl, namespace, "nogpu", "Unschedulable")
    message = condition(obj, "Degraded")["message"]
    assert "the scheduler says: 0/5 nodes are available" in message and "spec.resources.gpuProduct" in message
    _shown_to_the_user(kubectl, namespace, "nogpu", "Unschedulable", "nodes are available", "gpuProduct")


def test_a_worker_that_rejects_its_command_line_at_start_up(kubectl, installed, namespace, model_uri):
    engine = {"dtype": "float32", "maxModelLen": 256, "maxNumSeqs": 8, "extraArgs": ["--halyard-no-such-flag"]}
    kubectl.apply(llmd("badflag", namespace, model_uri, engine=engine))
    obj = _degraded_with(kubectl, namespace, "badflag", "WorkerArgsRejected")
    message = condition(obj, "Degraded")["message"]
    assert "InvalidArguments: unrecognized arguments: --halyard-no-such-flag" in message
    assert "spec.engine.extraArgs" in message
    _shown_to_the_user(kubectl, namespace, "badflag", "WorkerArgsRejected", "unrecognized arguments",
                       "spec.engine")

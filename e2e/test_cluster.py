"""The dev environment itself: control plane, GPU pools, and pods as real processes."""
from __future__ import annotations

import json
import urllib.request

import pytest

from e2e_kube import is_ready, wait_for

pytestmark = pytest.mark.e2e


def http_pod(name: str, namespace: str, pool: str, probe_path: str = "/") -> dict:
    """A pod whose container is a real HTTP server bound to its pod IP."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeSelector": {"halyard.dev/dev-pool": pool},
            "terminationGracePeriodSeconds": 5,
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{
                "name": "web", "image": "python:3", "command": ["python3"],
                "args": ["-m", "http.server", "--bind", "$(POD_IP)", "$(PORT)"],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "PORT", "value": "8000"}],
                "ports": [{"name": "http", "containerPort": 8000}],
                "readinessProbe": {"httpGet": {"path": probe_path, "port": "http"}, "periodSeconds": 1},
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
            }],
        },
    }


def test_gpu_pools_are_labelled_and_allocatable(kubectl, nodes):
    by_pool: dict[str, list] = {}
    for node in nodes().values():
        labels = node["metadata"]["labels"]
        by_pool.setdefault(labels["halyard.dev/dev-pool"], []).append(node)
        if labels["halyard.dev/dev-pool"] == "system":  # CPU node for routers: no GPU, no taint
            assert not node["spec"].get("taints") and "nvidia.com/gpu" not in node["status"]["allocatable"]
            continue
        assert labels["karpenter.sh/capacity-type"] == labels["halyard.dev/dev-pool"]
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2"
        assert node["spec"]["podCIDR"].startswith("127.")
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in node["spec"]["taints"]
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["metadata"]["name"]
    assert sorted(by_pool) == ["on-demand", "spot", "system"]
    assert len(by_pool["on-demand"]) == 2 and len(by_pool["spot"]) == 2


def test_pod_command_runs_as_a_process_at_the_pod_ip(kubectl, namespace, dev_env):
    kubectl.apply(http_pod("web", namespace, "spot"))
    pod = wait_for(lambda: (p := kubectl.get_json("pod", "web", "-n", namespace)) and is_ready(p) and p,
                   60, "pod web Ready")
    ip = pod["status"]["podIP"]
    assert ip.startswith("127.2."), ip  # a spot node's loopback pod CIDR
    node = kubectl.get_json("node", pod["spec"]["nodeName"])
    assert node["metadata"]["labels"]["halyard.dev/dev-pool"] == "spot"
    with urllib.request.urlopen(f"http://{ip}:8000/", timeout=5) as resp:
        assert resp.status == 200
    # kubectl logs reaches the process's output through the kwok node's log endpoint
    assert '"GET / HTTP/1.1" 200' in kubectl.run("logs", "web", "-n", namespace)

    kubectl.run("delete", "pod", "web", "-n", namespace, "--wait=true", "--timeout=30s")

    def stopped() -> bool:
        try:
            urllib.request.urlopen(f"http://{ip}:8000/", timeout=1)
        except OSError:
            return True
        return False

    wait_for(stopped, 15, "the pod's process to stop after the pod was deleted")


def test_readiness_follows_the_process_probe(kubectl, namespace):
    """A pod whose readiness path 404s stays Running but not Ready."""
    kubectl.apply(http_pod("notready", namespace, "on-demand", probe_path="/missing"))
    pod = wait_for(lambda: (p := kubectl.get_json("pod", "notready", "-n", namespace))
                   and p["status"].get("phase") == "Running" and p, 60, "pod Running")
    ip = pod["status"]["podIP"]
    wait_for(lambda: _serves(ip), 30, "the process to serve")
    pod = kubectl.get_json("pod", "notready", "-n", namespace)
    assert not is_ready(pod), json.dumps(pod["status"]["conditions"])


def test_pod_without_gpu_toleration_stays_pending(kubectl, namespace):
    pod = http_pod("untolerated", namespace, "on-demand")
    del pod["spec"]["tolerations"]
    kubectl.apply(pod)

    def unschedulable():
        cond = [c for c in kubectl.get_json("pod", "untolerated", "-n", namespace)["status"].get("conditions") or []
                if c["type"] == "PodScheduled"]
        return cond and cond[0]["status"] == "False" and cond[0]

    cond = wait_for(unschedulable, 30, "the scheduler to report the pod unschedulable")
    assert "taint" in cond["message"] and "nvidia.com/gpu" in cond["message"], cond


def test_wrong_command_is_reported_not_ready(kubectl, namespace):
    pod = http_pod("badcmd", namespace, "on-demand")
    pod["spec"]["containers"][0]["command"] = ["no-such-binary-halyard"]
    kubectl.apply(pod)

    def crashed():
        p = kubectl.get_json("pod", "badcmd", "-n", namespace)
        status = (p["status"].get("containerStatuses") or [{}])[0]
        return status.get("lastState", {}).get("terminated", {}).get("exitCode") == 127 and p

    pod = wait_for(crashed, 60, "the start error to be reported")
    assert not is_ready(pod)


def test_a_crash_is_reported_as_the_kubelet_does(kubectl, namespace):
    """restartCount, lastState.terminated (exit code, reason, termination message), CrashLoopBackOff."""
    pod = http_pod("crash", namespace, "on-demand")
    pod["spec"]["containers"][0].update(
        command=["sh"], args=["-c", "echo starting; echo 'disk on fire' > $MESSAGE_FILE; exit 3"],
        terminationMessagePolicy="FallbackToLogsOnError")
    pod["spec"]["containers"][0]["env"].append({"name": "MESSAGE_FILE", "value": "/dev/termination-log"})
    kubectl.apply(pod)

    def restarted():
        p = kubectl.get_json("pod", "crash", "-n", namespace)
        status = (p["status"].get("containerStatuses") or [{}])[0]
        return status.get("restartCount", 0) >= 1 and "waiting" in status.get("state", {}) and status

    status = wait_for(restarted, 60, "a restart in CrashLoopBackOff")
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    terminated = status["lastState"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (3, "Error", "disk on fire")
    assert "starting" in kubectl.run("logs", "crash", "-n", namespace, "--previous")


def _serves(ip: str) -> bool:
    try:
        urllib.request.urlopen(f"http://{ip}:8000/", timeout=1)
        return True
    except OSError:
        return False

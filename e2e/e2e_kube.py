"""Helpers shared by the e2e tests: polling, LLMDeployment manifests, pod queries."""
from __future__ import annotations

import copy
import time
from typing import Callable, TypeVar

T = TypeVar("T")
GROUP_VERSION = "halyard.dev/v1alpha1"
DEPLOYMENT_LABEL = "halyard.dev/deployment"


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll `check` until it returns a truthy value; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last observed: {last!r}")


def llmd(name: str, namespace: str, model_uri: str, **spec_overrides) -> dict:
    """A minimal valid LLMDeployment (fixed 1 replica, 1 GPU, on-demand) with overrides merged in."""
    spec = {
        "model": {"name": name, "uri": model_uri},
        "engine": {"dtype": "float32", "maxModelLen": 256, "maxNumSeqs": 8},
        "resources": {"gpus": 1},
        "replicas": 1,
        "tier": "standard",
    }
    for key, value in spec_overrides.items():
        spec[key] = value
        if key == "scaling":
            spec.pop("replicas", None)
    return {"apiVersion": GROUP_VERSION, "kind": "LLMDeployment",
            "metadata": {"name": name, "namespace": namespace}, "spec": copy.deepcopy(spec)}


def condition(obj: dict, kind: str) -> dict | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond["type"] == kind:
            return cond
    return None


def is_ready(pod: dict) -> bool:
    cond = condition(pod, "Ready")
    return bool(cond and cond["status"] == "True")


def pool_of(pod: dict, nodes: dict[str, dict]) -> str | None:
    """on-demand | spot: the dev pool label of the node the pod is bound to."""
    node = nodes.get(pod["spec"].get("nodeName", ""))
    return node["metadata"]["labels"].get("halyard.dev/dev-pool") if node else None

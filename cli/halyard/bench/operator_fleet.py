"""Fleet helpers for `halyard bench operator`: extra fake GPU nodes and the
API server's own request counters.

`scale_nodes(count)` builds kwok-managed Node dicts (8 GPUs each, the same
labels and taint as the dev pools' on-demand nodes, pod CIDRs in 10.0.0.0/8:
the benchmark runs no worker processes, so pod IPs need not be local).
`request_counts(text)` reads `apiserver_request_total` from the API server's
/metrics exposition; `request_rates(before, after, seconds)` turns two reads
into requests per second by verb and by verb and resource.
"""
from __future__ import annotations

import re
from collections import defaultdict

from halyard.dev.nodes import GPU_PRODUCT, KWOK_ANNOTATION, POOL_LABEL

SCALE_PREFIX = "scale"
_SAMPLE = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def scale_node(index: int, gpus: int = 8) -> dict:
    """One fake on-demand GPU node `scale-<index>` (karpenter labels, nvidia.com/gpu taint)."""
    name = f"{SCALE_PREFIX}-{index:04d}"
    cidr = f"10.{100 + index // 256}.{index % 256}.0/24"
    resources = {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": str(gpus)}
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "type": "kwok", POOL_LABEL: "on-demand", "karpenter.sh/capacity-type": "on-demand",
              "nvidia.com/gpu.product": GPU_PRODUCT, "nvidia.com/gpu.count": str(gpus)}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": {KWOK_ANNOTATION: "fake"}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr],
                     "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
            "status": {"capacity": resources, "allocatable": dict(resources)}}


def scale_nodes(count: int, gpus: int = 8) -> list[dict]:
    if not 0 <= count <= 25_000:
        raise ValueError("scale nodes: must be between 0 and 25000")
    return [scale_node(i, gpus) for i in range(count)]


def request_counts(text: str) -> dict[tuple[str, str], float]:
    """(verb, resource[/subresource]) -> requests served so far, summed over codes and scopes."""
    counts: dict[tuple[str, str], float] = defaultdict(float)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        counts[(labels.get("verb", ""), resource)] += float(match["value"])
    return dict(counts)


def request_rates(before: dict, after: dict, seconds: float, top: int = 12) -> dict:
    """Requests per second over a window: by verb, and the busiest verb+resource pairs.
    WATCH counts watches opened (each stays open), not events delivered."""
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    delta = {k: v for k, v in delta.items() if v > 0}
    by_verb: dict[str, float] = defaultdict(float)
    for (verb, _), value in delta.items():
        by_verb[verb] += value
    busiest = sorted(delta.items(), key=lambda kv: -kv[1])[:top]
    return {"total_per_s": round(sum(delta.values()) / seconds, 2),
            "by_verb_per_s": {v: round(n / seconds, 2) for v, n in sorted(by_verb.items())},
            "busiest_per_s": {f"{verb} {res}": round(n / seconds, 2) for (verb, res), n in busiest}}

"""`halyard bench operator`'s fleet helpers: fake scale nodes and the API server's request rates."""
from __future__ import annotations

from halyard.bench.operator_fleet import request_counts, request_rates, scale_nodes

METRICS = """# HELP apiserver_request_total Counter of apiserver requests
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="nodes",scope="cluster",subresource="",verb="LIST",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="status",verb="PATCH",version="v1"} 10
apiserver_request_total{code="404",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="status",verb="PATCH",version="v1"} 2
apiserver_request_total_other{verb="GET"} 99
"""


def test_request_counts_sum_codes_per_verb_and_resource():
    counts = request_counts(METRICS)
    assert counts == {("LIST", "nodes"): 3.0, ("PATCH", "pods/status"): 12.0}


def test_request_rates_are_per_second_over_the_window():
    before = {("LIST", "nodes"): 3.0, ("PATCH", "pods/status"): 12.0}
    after = {("LIST", "nodes"): 3.0, ("PATCH", "pods/status"): 42.0, ("GET", "secrets"): 6.0}
    rates = request_rates(before, after, seconds=10.0)
    assert rates["by_verb_per_s"] == {"GET": 0.6, "PATCH": 3.0}  # no LIST at all in the window
    assert rates["total_per_s"] == 3.6
    assert list(rates["busiest_per_s"]) == ["PATCH pods/status", "GET secrets"]


def test_scale_nodes_are_distinct_kwok_gpu_nodes():
    nodes = scale_nodes(300)
    names = {n["metadata"]["name"] for n in nodes}
    cidrs = {n["spec"]["podCIDR"] for n in nodes}
    assert len(names) == len(cidrs) == 300
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)
    assert nodes[0]["status"]["allocatable"]["nvidia.com/gpu"] == "8"


def test_scale_phase_deployments_are_valid_and_run_without_a_router():
    from halyard.bench.operator import manifest
    from halyard_operator.api.parse import parse_spec

    routed, bare = parse_spec(manifest(7)["spec"]), parse_spec(manifest(7, router=False)["spec"])
    assert routed.router.enabled and not bare.router.enabled
    assert manifest(7, router=False)["metadata"]["name"] == "bench-0007"

"""The optional monitoring component: PodMonitors, alert rules and the Grafana
dashboard, whose every metric must exist in the operator's or a worker's
exposition."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from halyard_operator.builders.meta import Owner
from halyard_operator.config import GpuPrice
from halyard_operator.names import SLO_AT_RISK
from halyard_operator.policy.cost import live_cost
from halyard_operator.telemetry import OperatorMetrics
from tests.test_layout import ROOT

MONITORING = ROOT / "manifests" / "monitoring"
METRIC = re.compile(r"\b(?:vllm|halyard):[A-Za-z0-9_:]+")


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return [r["expr"] for g in rules["spec"]["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    dash = json.loads((MONITORING / "dashboards" / "halyard-deployments.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    return exprs + [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]


def operator_exposition() -> str:
    m = OperatorMetrics()
    owner = Owner(name="chat", namespace="team-a", uid="u")
    m.reconciled(0.01)
    m.reconciled(0.01, RuntimeError("x"))
    m.decided(owner, 1, 2, 2)
    m.drained(owner, 1)
    m.conditions(owner, {}, {SLO_AT_RISK: "True", "SpotFallbackActive": "True"})
    m.priced(owner, live_cost(1, 1, 1, "G", {"G": GpuPrice(2.0, 1.0)}, "USD"))
    m.described(owner, 1, 1, {"ttft_p95": 0.5, "itl_p95": 0.05})
    m.leader.set(1)
    return m.exposition().decode()


def worker_exposition() -> str:
    from halyard_worker.server.metrics import EngineGauges, ServerMetrics

    fields = {f: 0 for f in EngineGauges.__dataclass_fields__}
    m = ServerMetrics("tiny", max_model_len=256, max_queue=8, read_engine=lambda: EngineGauges(**fields))
    m.finished("stop")
    m.rejected("queue_full")
    return m.exposition().decode()


def exposed_names() -> set[str]:
    names = set()
    for text in (operator_exposition(), worker_exposition()):
        for family in text_string_to_metric_families(text):
            names |= {s.name for s in family.samples}
    return names


def test_every_metric_in_the_dashboard_and_alerts_is_exposed():
    used = {name for expr in rule_exprs() + dashboard_exprs() for name in METRIC.findall(expr)}
    missing = sorted(used - exposed_names())
    assert used and not missing, f"not in the operator's or a worker's /metrics: {missing}"


def test_the_alerts_cover_slo_spot_fallback_capacity_and_worker_errors():
    rules = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    alerts = {r["alert"]: r for g in rules["spec"]["groups"] for r in g["rules"]}
    assert {"HalyardSLOAtRisk", "HalyardSpotFallbackActive", "HalyardCapacityConstrained",
            "HalyardWorkerErrorRate"} <= set(alerts)
    for alert in alerts.values():
        assert alert["for"] and alert["labels"]["severity"] and alert["annotations"]["summary"]
    assert 'type="SLOAtRisk"' in alerts["HalyardSLOAtRisk"]["expr"] and alerts["HalyardSLOAtRisk"]["for"] == "10m"


def test_dashboard_shows_latency_against_the_slo_pools_queue_kv_and_cost():
    exprs = " ".join(dashboard_exprs())
    for metric in ("vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
                   "halyard:deployment_slo_seconds", "halyard:deployment_replicas", "vllm:num_requests_waiting",
                   "vllm:kv_cache_usage_perc", "halyard:deployment_cost_per_hour"):
        assert metric in exprs


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_the_component_builds_on_top_of_the_base(tmp_path):
    base = os.path.relpath(ROOT / "manifests", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(
        {"resources": [base], "components": [f"{base}/monitoring"]}))
    out = subprocess.run(["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, check=True)
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds.count("PodMonitor") == 2 and kinds.count("PrometheusRule") == 1
    board = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "halyard-dashboard")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["halyard-deployments.json"])["uid"] == "halyard-deployments"
    operator = next(d for d in docs if d["kind"] == "PodMonitor" and d["metadata"]["name"] == "halyard-operator")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert operator["spec"]["podMetricsEndpoints"][0]["port"] in ports

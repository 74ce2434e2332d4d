"""Live cost (status.cost, the operator's halyard: metrics) and the operator's exposition."""
from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from halyard_operator import endpoint
from halyard_operator.builders.meta import Owner
from halyard_operator.config import GpuPrice
from halyard_operator.names import SPOT_FALLBACK_ACTIVE
from halyard_operator.policy.cost import live_cost
from halyard_operator.telemetry import OperatorMetrics

PRICES = {"NVIDIA-H100-80GB-HBM3": GpuPrice(on_demand=6.98, spot=2.45)}
OWNER = Owner(name="chat", namespace="team-a", uid="u1")


def samples(metrics: OperatorMetrics) -> dict[tuple[str, tuple], float]:
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_cost_of_a_spot_mix_and_its_saving():
    cost = live_cost(1, 3, 2, "NVIDIA-H100-80GB-HBM3", PRICES, "USD")
    status = cost.to_status()
    assert status["gpuHoursPerHour"] == 8 and (status["onDemandGPUs"], status["spotGPUs"]) == (2, 6)
    assert status["onDemandPerHour"] == 13.96 and status["spotPerHour"] == 14.7
    assert status["perHour"] == 28.66 and status["allOnDemandPerHour"] == 55.84
    assert status["savingPerHour"] == 27.18 and status["currency"] == "USD"


def test_cost_without_a_price_says_why_instead_of_guessing():
    assert "no price for GPU product 'NVIDIA-B200'" in live_cost(1, 0, 1, "NVIDIA-B200", PRICES, "USD") \
        .to_status()["message"]
    unset = live_cost(2, 0, 1, None, PRICES, "USD").to_status()
    assert "resources.gpuProduct is not set" in unset["message"] and "perHour" not in unset
    assert unset["gpuHoursPerHour"] == 2


def test_cost_gauges_per_deployment_and_forget():
    m = OperatorMetrics()
    m.priced(OWNER, live_cost(1, 2, 1, "NVIDIA-H100-80GB-HBM3", PRICES, "USD"))
    got = samples(m)
    key = (("capacity", "spot"), ("name", "chat"), ("namespace", "team-a"))
    assert got[("halyard:deployment_cost_per_hour", key)] == pytest.approx(4.90)
    assert got[("halyard:deployment_gpus", key)] == 2
    assert got[("halyard:deployment_spot_saving_per_hour", (("name", "chat"), ("namespace", "team-a")))] \
        == pytest.approx(3 * 6.98 - 6.98 - 4.90)
    m.forget(OWNER)
    assert not [k for k in samples(m) if ("name", "chat") in k[1]]


def test_replicas_and_objectives_per_deployment_and_an_objective_dropped_from_the_spec():
    m, other = OperatorMetrics(), Owner(name="batch", namespace="team-b", uid="u2")
    m.described(OWNER, on_demand=2, spot=3, slo={"ttft_p95": 0.5, "itl_p95": 0.05})
    m.described(other, on_demand=1, spot=0, slo={"ttft_p95": None, "itl_p95": None})
    got, who = samples(m), (("name", "chat"), ("namespace", "team-a"))
    assert got[("halyard:deployment_replicas", (*who, ("pool", "spot")))] == 3
    assert got[("halyard:deployment_slo_seconds", (*who, ("objective", "ttft_p95")))] == 0.5
    assert got[("halyard:deployment_replicas", (("name", "batch"), ("namespace", "team-b"), ("pool", "ondemand")))] == 1
    assert not [k for k in got if k[0] == "halyard:deployment_slo_seconds" and ("name", "batch") in k[1]]
    m.described(OWNER, on_demand=2, spot=3, slo={"ttft_p95": 0.5, "itl_p95": None})
    assert (("halyard:deployment_slo_seconds", (*who, ("objective", "itl_p95")))) not in samples(m)
    text = m.exposition().decode()
    assert "# TYPE halyard:deployment_replicas gauge" in text and "# HELP halyard:deployment_slo_seconds" in text


def test_decisions_fallbacks_drains_and_reconciles_are_counted():
    m = OperatorMetrics()
    m.decided(OWNER, current=2, desired=4, wanted=4)
    m.decided(OWNER, current=4, desired=3, wanted=6)  # the tier arbiter granted less than wanted
    m.decided(OWNER, current=3, desired=3, wanted=3)  # no change: no decision counted
    m.conditions(OWNER, {}, {SPOT_FALLBACK_ACTIVE: "True"})
    m.conditions(OWNER, {SPOT_FALLBACK_ACTIVE: "True"}, {SPOT_FALLBACK_ACTIVE: "True"})
    m.drained(OWNER, 2)
    m.reconciled(0.02)
    m.reconciled(0.3, RuntimeError("boom"))
    got = samples(m)
    assert got[("halyard:operator_scaling_decisions_total", (("cause", "autoscaler"), ("direction", "up")))] == 1
    assert got[("halyard:operator_scaling_decisions_total", (("cause", "arbiter"), ("direction", "down")))] == 1
    who = (("name", "chat"), ("namespace", "team-a"))
    assert got[("halyard:operator_spot_fallbacks_total", who)] == 1
    assert got[("halyard:deployment_condition", (*who[:1], *who[1:], ("type", SPOT_FALLBACK_ACTIVE)))] == 1
    assert got[("halyard:operator_drains_total", who)] == 2
    assert got[("halyard:operator_reconciles_total", (("result", "ok"),))] == 1
    assert got[("halyard:operator_reconcile_errors_total", (("error", "RuntimeError"),))] == 1
    assert got[("halyard:operator_reconcile_duration_seconds_count", ())] == 2


async def test_endpoint_serves_health_and_metrics(unused_tcp_port):
    m = OperatorMetrics()
    m.reconciled(0.01)
    runner = await endpoint.start(endpoint.Listen("127.0.0.1", unused_tcp_port, "/healthz"), m.exposition)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{unused_tcp_port}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{unused_tcp_port}/metrics") as resp:
                assert resp.status == 200 and "halyard:operator_reconciles_total" in await resp.text()
    finally:
        await runner.cleanup()


def test_liveness_url_is_checked():
    with pytest.raises(ValueError, match="expected http://HOST:PORT/PATH"):
        endpoint.Listen.from_url("0.0.0.0:8080")

"""The simulator's baselines and fleet model hold what a reviewer checks by hand:
pool limits, maxReplicas, no phantom capacity, shrinking one lane leaves the
others' unschedulable replicas alone, correlated reclaims and per-step token lengths."""
from __future__ import annotations

import json

import numpy as np
import yaml

from halyard.cli.main import main
from halyard.cli.sim import EXAMPLES
from halyard.sim.fleet import OD, SPOT, Fleet
from halyard.sim.model import Pool, Reclaim, SimInputError, cluster_from_doc
from halyard.sim.workload import builtin

import pytest

OD_POOL = {"name": "od", "capacityType": "on-demand", "gpusPerNode": 8, "maxNodes": 2, "pricePerGpuHour": 4.0}


def _run(tmp_path, name, cluster: dict, *args) -> dict:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cluster))
    out = tmp_path / name
    assert main(["sim", "--cluster", str(path), "--quiet", "--no-plots", "--out", str(out), *args]) == 0
    return json.loads((out / "summary.json").read_text())["policies"]


def test_static_peak_fits_the_pool_and_all_spot_gets_nothing_without_a_spot_pool(tmp_path):
    policies = _run(tmp_path, "small", {"pools": [OD_POOL]}, "--workload", "poisson", "--rate", "150",
                    "--duration", "10m", "--policies", "static-peak,all-spot")
    static = policies["static-peak"]["total"]
    assert static["gpu_hours"]["od"] <= 16 * 10 / 60 + 0.01  # 2 nodes x 8 GPUs for 10 minutes
    spot = policies["all-spot"]["total"]
    assert spot["gpu_hours_total"] == 0 and spot["slo_attainment"] < 0.05


def test_static_peak_puts_what_on_demand_cannot_hold_on_spot_highest_tier_first(tmp_path):
    spot_pool = {"name": "s", "capacityType": "spot", "gpusPerNode": 8, "maxNodes": 1, "pricePerGpuHour": 1.6}
    policies = _run(tmp_path, "spill", {"pools": [OD_POOL, spot_pool]}, "--workload", "poisson", "--rate", "150",
                    "--duration", "10m", "--policies", "static-peak")
    total = policies["static-peak"]["total"]["gpu_hours"]
    # the peak needs 17 replicas: the 16 on-demand GPUs, then one spot replica (batch's)
    assert total["od"] == pytest.approx(16 * 10 / 60, rel=1e-3) and 0 < total["s"] <= 8 * 10 / 60
    per = {name: dep["gpu_hours"] for name, dep in policies["static-peak"]["deployments"].items()}
    assert per["team-c/summarize-8b"]["s"] == total["s"]
    assert per["team-b/support-8b"]["s"] == 0 and per["team-a/chat-8b"]["s"] == 0


def test_static_peak_respects_max_replicas(tmp_path):
    deps = (EXAMPLES / "deployments.yaml").read_text().replace("maxReplicas: 60", "maxReplicas: 3")
    path = tmp_path / "d.yaml"
    path.write_text(deps)
    policies = _run(tmp_path, "max", {"pools": [{**OD_POOL, "maxNodes": 40}]}, "--deployments", str(path),
                    "--workload", "poisson", "--duration", "10m", "--policies", "static-peak")
    per = policies["static-peak"]["deployments"]
    assert per["team-a/chat-8b"]["gpu_hours"]["od"] == pytest.approx(3 * 10 / 60, rel=1e-3)


def test_shrinking_one_lane_keeps_the_other_lanes_unschedulable_replicas():
    pool = Pool("od", "on-demand", 8, 1, 4.0, 180.0, None)
    fleet = Fleet({"on-demand": pool}, np.array([1, 1]), np.array([0, 0]), np.array([0, 1]),
                  np.ones(2, dtype=bool), 1.0, 1)
    fleet.target[:, OD] = (6, 6)  # 12 wanted, 8 GPUs: lane 1 gets 2, 4 unschedulable
    fleet.reconcile(0, 0.0)
    assert fleet.unsched[1, OD] == 4
    fleet.target[0, OD] = 2  # lane 0 shrinks; lane 1 still waits for its 4
    fleet.reconcile(1, 1.0)
    assert fleet.unsched[1, OD] == 0 or fleet.pipe_total[1, OD] + fleet.unsched[1, OD] == 6
    assert fleet.pipe_total[1, OD] + fleet.unsched[1, OD] == 6


def test_a_reclaimed_node_takes_exactly_its_replicas_and_the_pool_never_grows_past_max_nodes():
    od = Pool("od", "on-demand", 8, 1, 4.0, 180.0, None)
    spot = Pool("spot", "spot", 8, 1, 1.6, 180.0, None)
    for seed in range(20):
        fleet = Fleet({"on-demand": od, "spot": spot}, np.array([1, 1, 1]), np.array([0, 0, 0]),
                      np.array([0, 1, 2]), np.ones(3, dtype=bool), 1.0, 1)
        fleet.target[:, SPOT] = (4, 3, 1)  # the one spot node, full
        fleet.place_ready(0.0)
        fleet._reclaim_nodes([1], 0, 0.0, [np.random.default_rng(seed)])
        assert fleet.ready[:, SPOT].sum() == 0 and fleet.lost[:, SPOT].sum() == 8
        fleet.target[:, SPOT] = (8, 8, 8)
        for k in range(1, 4):  # the replacements fit on the one node the pool may hold
            fleet.reconcile(k, float(k))
        assert fleet.nodes[0, SPOT] <= 1 and fleet.pipe_total[:, SPOT].sum() <= 8


def test_a_correlated_reclaim_without_notice_fails_the_requests_it_held(tmp_path):
    spot = {"name": "spot", "capacityType": "spot", "gpusPerNode": 8, "maxNodes": 40, "pricePerGpuHour": 1.6,
            "reclaims": [{"at": 900, "share": 0.9, "over": 60, "notice": 0}], "stockouts": [[900, 3600]]}
    policies = _run(tmp_path, "storm", {"pools": [{**OD_POOL, "maxNodes": 40}, spot]}, "--workload", "poisson",
                    "--duration", "25m", "--policies", "all-spot,static-peak")
    assert policies["all-spot"]["total"]["failed_requests"] > 1000
    assert policies["static-peak"]["total"]["failed_requests"] == 0


def test_reclaim_share_is_validated():
    with pytest.raises(SimInputError, match="share"):
        cluster_from_doc({"pools": [OD_POOL, {"name": "s", "capacityType": "spot", "maxNodes": 1,
                                             "pricePerGpuHour": 1, "reclaims": [{"at": 0, "share": 2}]}]}, "c.yaml")
    pools = cluster_from_doc({"pools": [OD_POOL, {"name": "s", "capacityType": "spot", "maxNodes": 1,
                                                "pricePerGpuHour": 1, "reclaims": [{"at": 5, "share": 0.5}]}]}, "c")
    assert pools["spot"].reclaims == (Reclaim(5.0, 0.5, 120.0, 0.0),)


def test_prompt_lengths_follow_the_period_they_arrive_in():
    from halyard.sim.model import load_deployments, load_profiles

    deps = load_deployments(EXAMPLES / "deployments.yaml", load_profiles(None))
    arr = builtin("poisson", deps, 100.0, 1.0, 0, prompt_profile=((0, 1), (100, 1), (101, 4)))
    counts, tin, _ = arr.chunk(0, 200)
    early = tin[:, :100].sum() / counts[:, :100].sum()
    late = tin[:, 150:].sum() / counts[:, 150:].sum()
    assert late == pytest.approx(4 * early, rel=0.1)


def test_trace_keeps_each_requests_length_in_its_step(tmp_path):
    from halyard.sim.model import load_deployments, load_profiles
    from halyard.sim.workload import load_trace

    deps = load_deployments(EXAMPLES / "deployments.yaml", load_profiles(None))
    trace = tmp_path / "t.csv"
    rows = ["arrival_s,deployment,input_tokens,output_tokens"]
    rows += [f"{t},chat-8b,{100 if t < 50 else 4000},50" for t in range(100)]
    trace.write_text("\n".join(rows) + "\n")
    arrivals, updated = load_trace(trace, deps, 1.0, 100.0)
    _, tin, _ = arrivals.chunk(0, 100)
    assert tin[0, 10] == 100 and tin[0, 60] == 4000
    assert updated[0].input_tokens == pytest.approx(2050)


def test_the_simulated_prefill_budget_in_use_follows_the_prompt_load_and_is_one_at_the_cap():
    from halyard.sim.serving import MAX_PREFILL_SHARE, Serving

    def use(prompt_tokens_per_s: float) -> float:
        lanes = {k: np.array([v], dtype=float) for k, v in dict(
            base=0.008, per_seq=0.00012, prefill=25_000, bmax=256, in_tokens=1000, out_tokens=100,
            kv=1e9, itl_slo=0.05).items()}
        s = Serving(lanes, 1.0, 60.0, np.ones((1, 61)))
        ready, rate = np.array([4.0]), prompt_tokens_per_s / 1000
        for k in range(600):
            if k == 300:  # past the start: measure over the steady half
                tokens, budget = s.prefill_tokens.copy(), s.prefill_budget.copy()
            s.step(ready, np.array([rate]), np.array([rate * 1000]), np.array([rate * 100]))
        return float(((s.prefill_tokens - tokens) / (s.prefill_budget - budget))[0])

    cap = 4 * 25_000 * MAX_PREFILL_SHARE  # prompt tokens/s four replicas' prefill can take
    quarter, half, past = use(0.25 * cap), use(0.5 * cap), use(1.5 * cap)
    assert quarter == pytest.approx(0.125 / 0.875, rel=0.02)  # share f = 1/8 of the time: f / (1 - f)
    assert half == pytest.approx(1 / 3, rel=0.02)
    assert past == pytest.approx(1.0, abs=0.01)  # prompts queue: prefill fills its budget


def test_a_policy_sees_the_same_noise_whichever_policies_run_beside_it(tmp_path):
    """Scrape noise is drawn per policy: halyard's decisions (which change its queues, and
    so how many random values its Poisson draws take) must not change all-spot's results."""
    out = {}
    for policies in ("all-spot", "halyard,all-spot"):
        target = tmp_path / policies.replace(",", "-")
        assert main(["sim", "--scenario", "spot-storm", "--duration", "3h", "--quiet", "--no-plots",
                     "--policies", policies, "--out", str(target)]) == 0
        out[policies] = json.loads((target / "summary.json").read_text())["policies"]["all-spot"]
    assert out["all-spot"] == out["halyard,all-spot"]
    assert out["all-spot"]["total"]["failed_requests"] > 0  # the reclaim at work: there is noise to share


def _ready_at(fleet, lane, count, start, steps=400):
    """The first step from `start` at which `lane` has `count` Ready replicas."""
    for k in range(start, steps):
        fleet.advance(k, float(k))
        if fleet.ready[lane, OD] >= count:
            return k
    return None


def test_a_replica_on_a_node_still_provisioning_waits_for_the_node():
    # 180 s to provision + 90 s warm-up (cold 270 s); a warm start on a node up takes 90 s
    pool = Pool("od", "on-demand", 8, 4, 4.0, 180.0, 90.0)
    fleet = Fleet({"on-demand": pool}, np.array([1]), np.array([0]), np.array([0]), np.ones(1, dtype=bool), 1.0, 1)
    fleet.target[0, OD] = 1
    fleet.reconcile(0, 0.0)  # launches a node
    for k in range(1, 30):
        fleet.advance(k, float(k))
    fleet.target[0, OD] = 2  # 30 s later: a free GPU, but on the node that is still booting
    fleet.reconcile(30, 30.0)
    assert _ready_at(fleet, 0, 1, 31) == 270  # with the node's first replica, not at 30 + 90
    assert fleet.ready[0, OD] == 2


def test_a_replica_on_a_free_gpu_of_a_node_up_starts_warm():
    pool = Pool("od", "on-demand", 8, 4, 4.0, 180.0, 90.0)
    fleet = Fleet({"on-demand": pool}, np.array([1]), np.array([0]), np.array([0]), np.ones(1, dtype=bool), 1.0, 1)
    fleet.target[0, OD] = 1
    fleet.place_ready(0.0)  # one node up, one replica Ready
    fleet.target[0, OD] = 2
    fleet.reconcile(1, 1.0)
    assert _ready_at(fleet, 0, 2, 2) == 91


def test_the_reactive_baseline_scales_up_at_hpas_default_rate():
    """HPA's default scaleUp: per 15 s at most twice the pods (or 4 more) of the period's start."""
    from halyard.sim import model
    from halyard.sim.controllers import LaneView, ReactiveController
    from halyard_operator.signals.types import DeploymentMetrics

    deps = model.load_deployments(EXAMPLES / "deployments.yaml", model.load_profiles(None))
    hpa = ReactiveController(deps[:1])
    hpa.start(0, 6)
    flood = DeploymentMetrics(at=15.0, window_s=60.0, request_rate=50.0, queue=20_000.0, running=300.0,
                              pods_total=6)
    view = LaneView(flood, (6, 0), (0, 0), (0, 0), (0.0, 0.0), (0, 0))
    sizes = [hpa.tick(15.0 * k, 0, view)[0] for k in range(1, 4)]
    assert sizes == [12, 24, 48]  # not 60 (maxReplicas) at once


def test_a_reclaim_takes_a_node_that_is_up_so_the_booting_one_still_gives_no_warm_start():
    od = Pool("od", "on-demand", 8, 1, 4.0, 180.0, 90.0)
    spot = Pool("spot", "spot", 8, 4, 1.6, 180.0, 90.0)
    fleet = Fleet({"on-demand": od, "spot": spot}, np.array([1]), np.array([0]), np.array([0]),
                  np.ones(1, dtype=bool), 1.0, 1)
    fleet.target[0, SPOT] = 8
    fleet.place_ready(0.0)  # one spot node up, full
    fleet.target[0, SPOT] = 9
    fleet.reconcile(1, 1.0)  # a second node launches for the ninth replica
    fleet._reclaim_nodes([1], 2, 0.0, [np.random.default_rng(0)])
    assert fleet.nodes[0, SPOT] == 1 and fleet.nodes_up[0, SPOT] == 0  # the one left is still booting
    survivors = fleet.ready[0, SPOT]  # (the lost node's GPUs are drawn from the lane's and the free ones)
    fleet.target[0, SPOT] = fleet.existing(SPOT)[0] + 1
    fleet.reconcile(3, 3.0)  # a replica on one of its free GPUs waits for it, not 90 s
    for k in range(4, 3 + 91):
        fleet.advance(k, float(k))
    assert fleet.ready[0, SPOT] == survivors


def test_replicas_that_fill_a_booting_node_are_ready_with_it_even_when_the_same_ask_launches_another():
    pool = Pool("od", "on-demand", 8, 4, 4.0, 180.0, 90.0)  # cold start 270 s
    fleet = Fleet({"on-demand": pool}, np.array([1]), np.array([0]), np.array([0]), np.ones(1, dtype=bool), 1.0, 1)
    fleet.target[0, OD] = 1
    fleet.reconcile(0, 0.0)  # node A
    for k in range(1, 30):
        fleet.advance(k, float(k))
    fleet.target[0, OD] = 12  # 7 on A's free GPUs, 4 on a new node B
    fleet.reconcile(30, 30.0)
    assert _ready_at(fleet, 0, 8, 31) == 270  # with node A
    assert _ready_at(fleet, 0, 12, 271) == 300  # with node B

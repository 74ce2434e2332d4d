"""`halyard bench operator`: reconcile latency and footprint on the dev control plane.

1. Latency: create N LLMDeployments one after another; for each, the time
   from its create call to its first worker pod reaching phase Running
   (scheduled by the real scheduler, started by kwok). Reports p50/p95/max.
2. Footprint: grow to M LLMDeployments, wait until every one has a Running
   pod, then sample the operator process's CPU use and RSS and the API
   server's requests per second by verb (`apiserver_request_total`) over a
   window; then create a few more, one at a time, and time each to Running
   while the fleet is live.
3. Scale (`--scale-deployments N`, optional): add `--scale-nodes` fake GPU
   nodes, grow to N LLMDeployments and measure the same. These deployments run
   without a router (`spec.router.enabled: false`: one pod each, the fleet the
   goal describes); with two router pods each, 15,000 pods on a 2-core control
   plane measure the scheduler and kwok, not the operator.
Worker pods are placeholders (no pod runner, no processes), so the figures
are the operator's and the control plane's alone.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import yaml

from halyard.bench.operator_fleet import request_counts, request_rates, scale_nodes
from halyard.bench.operator_watch import RunningTimes, proc_usage

NAMESPACE = "bench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deployments", type=int, default=50, help="LLMDeployments for the latency phase")
    parser.add_argument("--footprint-deployments", type=int, default=500,
                        help="LLMDeployments alive while CPU/RSS are sampled")
    parser.add_argument("--window", type=float, default=60.0, help="footprint sampling window, seconds")
    parser.add_argument("--probes", type=int, default=10,
                        help="new LLMDeployments timed one at a time while the fleet is live")
    parser.add_argument("--scale-deployments", type=int, default=0,
                        help="scale phase: grow to this many LLMDeployments (0: skip the phase)")
    parser.add_argument("--scale-nodes", type=int, default=2000, help="scale phase: fake GPU nodes added first")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="seconds between every pod Running and sampling (the ramp's writes drain)")
    parser.add_argument("--ramp-timeout", type=float, default=900.0,
                        help="seconds a phase waits for every pod to run before sampling anyway")
    parser.add_argument("--name", default="bench", help="dev environment name (its own cluster)")
    parser.add_argument("--keep", action="store_true", help="leave the cluster up afterwards")
    parser.add_argument("--json", dest="json_path", help="also write the figures to this JSON file")


def manifest(i: int, router: bool = True) -> dict:
    spec = {"model": {"name": f"m{i}", "uri": "file:///models/placeholder"},
            "resources": {"gpus": 1}, "replicas": 1, "tier": "standard"}
    if not router:
        spec["router"] = {"enabled": False}
    return {"apiVersion": "halyard.dev/v1alpha1", "kind": "LLMDeployment",
            "metadata": {"name": f"bench-{i:04d}", "namespace": NAMESPACE}, "spec": spec}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def create(api, body: dict, attempts: int = 5) -> None:
    """Create one LLMDeployment. An API server answering 5xx (a 504 when etcd is slow
    under a burst) is asked again; a 409 after such an answer means the first try landed."""
    from kubernetes.client.exceptions import ApiException
    for attempt in range(attempts):
        try:
            api.create_namespaced_custom_object("halyard.dev", "v1alpha1", NAMESPACE, "llmdeployments", body)
            return
        except ApiException as err:
            if attempt and err.status == 409:
                return
            if err.status is None or err.status < 500 or attempt == attempts - 1:
                raise
            time.sleep(1.0)


def create_all(api, first: int, last: int, times: RunningTimes, router: bool = True) -> None:
    for i in range(first, last):
        body = manifest(i, router)
        times.started(body["metadata"]["name"])
        create(api, body)


def warm_up(api, times: RunningTimes) -> None:
    """One deployment end to end first, so the operator's start-up is not measured."""
    body = manifest(0)
    body["metadata"]["name"] = "bench-warmup"
    times.started("bench-warmup")
    create(api, body)
    times.wait_all(["bench-warmup"], timeout=120)


def latency_phase(api, times: RunningTimes, n: int) -> dict:
    warm_up(api, times)
    create_all(api, 0, n, times)
    times.wait_all([f"bench-{i:04d}" for i in range(n)], timeout=300)
    lat = [times.latency(f"bench-{i:04d}") for i in range(n)]
    op = [v for i in range(n) if (v := times.operator_latency(f"bench-{i:04d}")) is not None]
    return {"deployments": n, "p50_s": round(statistics.median(lat), 3), "p95_s": round(percentile(lat, 0.95), 3),
            "max_s": round(max(lat), 3),
            "operator_p50_s": round(statistics.median(op), 3) if op else None,
            "operator_p95_s": round(percentile(op, 0.95), 3) if op else None}


class Fleet:
    """The cluster under test: creates, the pod watch, the operator's pid, the API server's metrics."""

    def __init__(self, api, times: RunningTimes, pid: int, kubectl):
        self.api, self.times, self.pid, self.kubectl = api, times, pid, kubectl

    def requests(self) -> dict:
        return request_counts(self.kubectl.run("get", "--raw", "/metrics", timeout=60))


def fleet_phase(fleet: Fleet, first: int, total: int, args: argparse.Namespace, label: str,
                router: bool = True) -> dict:
    """Grow to `total` deployments, sample the steady state, then time `args.probes` new ones."""
    t0 = time.monotonic()
    create_all(fleet.api, first, total, fleet.times, router)
    names = [f"bench-{i:04d}" for i in range(total)]
    try:
        fleet.times.wait_all(names, timeout=args.ramp_timeout)
    except RuntimeError as err:  # report what was reached rather than nothing
        print(f"{label}: {err}; sampling anyway", file=sys.stderr)
    ramp_s = time.monotonic() - t0
    time.sleep(args.settle)  # let the ramp's last Events and status writes drain
    running = sum(1 for n in names if n in fleet.times.running)
    cpu0, _ = proc_usage(fleet.pid)
    req0, w0 = fleet.requests(), time.monotonic()
    time.sleep(args.window)
    cpu1, rss = proc_usage(fleet.pid)
    window = time.monotonic() - w0
    rates = request_rates(req0, fleet.requests(), window)
    out = {"deployments": total, "running": running, "ramp_s": round(ramp_s, 1),
           "steady_cpu_percent": round(100 * (cpu1 - cpu0) / window, 1), "rss_mb": round(rss / 2**20, 1),
           "apiserver_requests": rates}
    print(f"{label} (steady state): {json.dumps(out)}", flush=True)
    out["live"] = probe_phase(fleet, label, args.probes, router)
    return out


def probe_phase(fleet: Fleet, label: str, count: int, router: bool = True) -> dict | None:
    """Apply -> Running of new deployments, one at a time, while the fleet is live."""
    lat, late = [], 0
    for i in range(count):
        body = manifest(i, router)
        name = body["metadata"]["name"] = f"probe-{label}-{i:02d}"
        fleet.times.started(name)
        create(fleet.api, body)
        try:
            fleet.times.wait_all([name], timeout=60)
            lat.append(fleet.times.latency(name))
        except RuntimeError:
            late += 1  # counted, not timed: a p95 over the others would flatter
    if not lat:
        return {"probes": count, "not_running_after_60s": late}
    return {"probes": count, "not_running_after_60s": late, "p50_s": round(statistics.median(lat), 3),
            "p95_s": round(percentile(lat + [60.0] * late, 0.95), 3), "max_s": round(max(lat + [60.0] * late), 3)}


def run(args: argparse.Namespace) -> int:
    from kubernetes import client, config as kconfig

    from halyard.dev import environment
    from halyard.dev.binaries import source_root
    from halyard.dev.install import install
    from halyard.dev.kube import Kubectl
    from halyard.dev.nodes import PoolPlan
    from halyard.dev.operator_proc import OperatorProcess
    from halyard.dev.paths import dev_paths

    paths = dev_paths(args.name)
    # Room for 800 one-GPU workers, and CPU nodes for the routers (two pods per deployment
    # with a router, 110 pods a node): an unschedulable router pod would keep the scheduler
    # and the endpoints controllers writing Events and endpoints, which is not the operator's load.
    routed = args.footprint_deployments + args.deployments + 2 * args.probes
    plan = PoolPlan(on_demand_nodes=8, spot_nodes=0, gpus_per_node=100, system_nodes=max(1, -(-2 * routed // 110)))
    environment.up(paths, plan, runner=False)
    try:
        kubectl = Kubectl(paths.kubeconfig)
        install(kubectl, source_root())
        kubectl.run("create", "namespace", NAMESPACE, check=False)
        operator = OperatorProcess(paths)
        pid = operator.start()
        api_client = kconfig.new_client_from_config(config_file=str(paths.kubeconfig))
        times = RunningTimes(api_client, NAMESPACE)
        times.start()
        report = {"latency": latency_phase(client.CustomObjectsApi(api_client), times, args.deployments)}
        print(f"latency: {json.dumps(report['latency'])}", flush=True)
        fleet = Fleet(client.CustomObjectsApi(api_client), times, pid, kubectl)
        report["footprint"] = fleet_phase(fleet, args.deployments, args.footprint_deployments, args, "footprint")
        print(f"footprint: {json.dumps(report['footprint'])}", flush=True)
        if args.scale_deployments > args.footprint_deployments:
            kubectl.run("create", "-f", "-", stdin=yaml.safe_dump_all(scale_nodes(args.scale_nodes)), timeout=900)
            report["scale"] = fleet_phase(fleet, args.footprint_deployments, args.scale_deployments, args, "scale",
                                          router=False)
            report["scale"]["nodes"] = args.scale_nodes + plan.on_demand_nodes
            print(f"scale: {json.dumps(report['scale'])}", flush=True)
        time.sleep(5)  # idle: no creates in flight
        t0 = time.monotonic()
        operator.stop()  # SIGTERM, then wait for the process to exit
        report["shutdown_s"] = round(time.monotonic() - t0, 2)
        _report(report, args)
        return 0
    finally:
        if not args.keep:
            environment.down(paths)


def _report(report: dict, args) -> None:
    lat = report["latency"]
    print(f"\noperator benchmark ({lat['deployments']} LLMDeployments created back to back)")
    print(f"  create -> first pod Running: p50 {lat['p50_s']:.2f}s  p95 {lat['p95_s']:.2f}s  "
          f"max {lat['max_s']:.2f}s   (target p95 <= 2s)")
    if lat["operator_p50_s"] is not None:
        print(f"    of which create -> first child Deployment (the operator): p50 {lat['operator_p50_s']:.2f}s  "
              f"p95 {lat['operator_p95_s']:.2f}s")
    for phase in ("footprint", "scale"):
        if phase in report:
            _report_fleet(phase, report[phase])
    print(f"  idle operator SIGTERM -> exit: {report['shutdown_s']:.2f}s (polled every 0.1 s; target < 1s)")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(report, f, indent=2)
    sys.stdout.flush()


def _report_fleet(phase: str, fp: dict) -> None:
    nodes = f", {fp['nodes']} nodes" if "nodes" in fp else ""
    print(f"  {phase}: {fp['running']}/{fp['deployments']} deployments with a Running pod{nodes}; ramp {fp['ramp_s']:.0f}s")
    print(f"    operator steady CPU {fp['steady_cpu_percent']:.1f}% of a core, RSS {fp['rss_mb']:.0f} MB")
    req = fp["apiserver_requests"]
    verbs = "  ".join(f"{v} {n:g}" for v, n in req["by_verb_per_s"].items())
    print(f"    API server requests/s (all clients): {req['total_per_s']:g}  ({verbs})")
    if fp.get("live") and "p50_s" in fp["live"]:
        live = fp["live"]
        print(f"    new deployment while live, create -> Running ({live['probes']}): p50 {live['p50_s']:.2f}s  "
              f"p95 {live['p95_s']:.2f}s  max {live['max_s']:.2f}s")

"""`halyard dev cluster up|down|status`: the whole local environment in one place.

up: binaries (built or reused) -> control plane -> GPU node pools -> pod
runner (background). down: pod runner and operator stopped, cluster deleted,
state directory removed. Every step prints a progress line.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from halyard.dev import cluster, daemons
from halyard.dev.binaries import Binaries, ensure_binaries
from halyard.dev.kube import Kubectl
from halyard.dev.nodes import PoolPlan
from halyard.dev.paths import DevPaths


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def venv_bin() -> str:
    return str(Path(sys.executable).parent)


def runner_argv(paths: DevPaths) -> list[str]:
    return [sys.executable, "-m", "halyard.cli.main", "dev", "podrunner", "--name", paths.name]


def up(paths: DevPaths, plan: PoolPlan, runner: bool = True) -> Binaries:
    say("control-plane binaries: building or reusing the cache (a cold build takes a while)")
    binaries = ensure_binaries()
    say(f"binaries: {binaries.root}")
    say(f"cluster {paths.cluster_name}: starting etcd, kube-apiserver, controller-manager, scheduler, kwok")
    cluster.create(paths, binaries)
    names = cluster.add_nodes(paths, plan)
    say(f"nodes: {len(names) - plan.system_nodes} fake GPU nodes ({plan.on_demand_nodes} on-demand, {plan.spot_nodes} spot, "
        f"{plan.gpus_per_node} x {plan.gpu_product} each, preset {plan.preset}) and {plan.system_nodes} CPU node(s) (system-<i>)")
    if runner:
        pid = daemons.start(paths, "podrunner", runner_argv(paths))
        say(f"pod runner: pid {pid}, logs {daemons.log_file(paths, 'podrunner')}")
    say(f"kubeconfig: {paths.kubeconfig}   (export KUBECONFIG={paths.kubeconfig})")
    return binaries


def down(paths: DevPaths, keep_logs: Path | None = None) -> None:
    """Stop everything and remove the state; `keep_logs` receives a copy of the logs first."""
    for name in ("operator", "podrunner"):
        if daemons.stop(paths, name):
            say(f"stopped {name}")
    if keep_logs is not None and paths.logs.is_dir():
        shutil.rmtree(keep_logs, ignore_errors=True)
        shutil.copytree(paths.logs, keep_logs)
        say(f"logs kept in {keep_logs}")
    binaries = _cached_binaries()
    cluster.delete(paths, binaries)
    say(f"cluster {paths.cluster_name} deleted")
    shutil.rmtree(paths.root, ignore_errors=True)
    say(f"removed {paths.root}")


def _cached_binaries() -> Binaries | None:
    try:
        return ensure_binaries(log=open("/dev/null", "w")) if shutil.which("go") else None
    except RuntimeError:
        return None


def status(paths: DevPaths) -> int:
    healthy = cluster.healthy(paths)
    print(f"cluster {paths.cluster_name}: {'running' if healthy else 'not running'}")
    print(f"kubeconfig: {paths.kubeconfig}")
    for name in ("podrunner", "operator"):
        pid = daemons.read_pid(paths, name)
        print(f"{name}: {'pid ' + str(pid) if pid else 'not running'}")
    if healthy:
        print(Kubectl(paths.kubeconfig).run(
            "get", "nodes", "-L", "halyard.dev/dev-pool", "-L", "nvidia.com/gpu.product"), end="")
    return 0 if healthy else 1

"""`halyard dev ...`: the local control plane (real binaries, kwok GPU nodes)."""
from __future__ import annotations

import argparse


def _cluster(args: argparse.Namespace) -> int:
    from halyard.dev import environment
    from halyard.dev.nodes import PoolPlan
    from halyard.dev.paths import dev_paths

    paths = dev_paths(args.name)
    if args.action == "up":
        plan = PoolPlan(on_demand_nodes=args.on_demand_nodes, spot_nodes=args.spot_nodes,
                        gpus_per_node=args.gpus_per_node, preset=args.preset, gpu_taint=args.gpu_taint,
                        system_nodes=args.system_nodes)
        environment.up(paths, plan, runner=not args.no_runner)
        return 0
    if args.action == "down":
        environment.down(paths)
        return 0
    return environment.status(paths)


def _podrunner(args: argparse.Namespace) -> int:
    from halyard.dev import environment, podrunner
    from halyard.dev.paths import dev_paths

    paths = dev_paths(args.name)
    config = podrunner.RunnerConfig(kubeconfig=paths.kubeconfig, log_dir=paths.pods,
                                    work_dir=paths.root / "work", path_prefix=(environment.venv_bin(),))
    return podrunner.main(config)


def _binaries(_args: argparse.Namespace) -> int:
    from halyard.dev.binaries import ensure_binaries

    print(ensure_binaries().root)
    return 0


def register(subparsers) -> None:
    from halyard.dev.nodes import PRESETS

    dev = subparsers.add_parser("dev", help="local development cluster")
    groups = dev.add_subparsers(dest="dev_command", metavar="COMMAND")
    cluster = groups.add_parser("cluster", help="control plane + fake GPU node pools + pod runner")
    cluster.add_argument("action", choices=["up", "down", "status"])
    cluster.add_argument("--name", default=None, help="environment name (default: $HALYARD_DEV_NAME or dev)")
    cluster.add_argument("--on-demand-nodes", type=int, default=2)
    cluster.add_argument("--spot-nodes", type=int, default=2)
    cluster.add_argument("--gpus-per-node", type=int, default=2)
    cluster.add_argument("--system-nodes", type=int, default=1,
                         help="untainted CPU nodes for pods without GPUs (the operator from `kubectl apply -k manifests/`, the routers)")
    cluster.add_argument("--preset", choices=sorted(PRESETS), default="karpenter",
                         help="node labels/taints of the capacity pools")
    cluster.add_argument("--no-gpu-taint", dest="gpu_taint", action="store_false",
                         help="do not taint the nodes nvidia.com/gpu=present:NoSchedule")
    cluster.add_argument("--no-runner", action="store_true", help="do not start the pod runner")
    cluster.set_defaults(func=_cluster)
    runner = groups.add_parser("podrunner", help="run scheduled pods' commands as local processes (foreground)")
    runner.add_argument("--name", default=None)
    runner.set_defaults(func=_podrunner)
    binaries = groups.add_parser("binaries", help="build or reuse the control-plane binaries; print their directory")
    binaries.set_defaults(func=_binaries)
    dev.set_defaults(func=lambda _a: (dev.print_help(), 2)[1])

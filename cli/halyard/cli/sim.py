"""`halyard sim`: discrete-event fleet simulator running the operator's policies.

Runs Halyard's policies and three baselines (static on-demand for peak,
reactive HPA on on-demand, all-spot without fallback) on the same arrivals and
writes DIR/summary.json, DIR/events.log and PNG plots. Without --deployments /
--cluster it uses the examples shipped in halyard/sim/examples/.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "sim" / "examples"
_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def duration(text: str) -> float:
    match = _DUR.match(text)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration; write e.g. 3600, 90m, 24h, 7d")
    return float(match.group(1)) * _UNIT[match.group(2)]


def register(subparsers) -> None:
    from halyard.sim.controllers import POLICIES
    from halyard.sim.workload import WORKLOADS

    p = subparsers.add_parser("sim", help="fleet simulator: Halyard's policies vs baselines",
                              description=__doc__.splitlines()[0])
    p.add_argument("--deployments", type=Path, default=None,
                   help="multi-document LLMDeployment YAML (default: shipped example, or the scenario's)")
    p.add_argument("--cluster", type=Path, default=None, help="cluster pools YAML (default: shipped example)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--scenario", help="built-in scenario (surge, spot-storm, stock-out, drift, long-context, "
                                        "tier-contention) or a scenario YAML: workload, cluster and duration")
    src.add_argument("--trace", type=Path, help="CSV: arrival_s,deployment,input_tokens,output_tokens")
    src.add_argument("--workload", choices=WORKLOADS, help="built-in workload (default: diurnal)")
    p.add_argument("--rate", type=float, default=None, help="built-in workload: mean total requests/s (default 200)")
    p.add_argument("--profile", type=Path, help="replica performance profile JSON (default: built-in)")
    p.add_argument("--duration", type=duration, default=None,
                   help="simulated time, e.g. 6h, 1d, 7d (default: 1d, or the scenario's)")
    p.add_argument("--step", type=float, default=1.0, help="fluid model time step in seconds")
    p.add_argument("--interval", type=float, default=15.0, help="policy evaluation period (s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset of " + ",".join(POLICIES))
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.set_defaults(func=run)


def _validate(args) -> tuple[str, ...]:
    from halyard.sim.controllers import POLICIES
    from halyard.sim.model import SimInputError

    policies = tuple(x.strip() for x in args.policies.split(",") if x.strip())
    bad = [x for x in policies if x not in POLICIES]
    if bad or not policies:
        raise SimInputError(f"--policies: unknown {', '.join(bad) or '(empty)'}; choose from {', '.join(POLICIES)}")
    if args.step <= 0 or args.interval < args.step:
        raise SimInputError("--step must be > 0 and --interval >= --step")
    if args.rate is not None and args.rate <= 0:
        raise SimInputError("--rate must be > 0 requests/s")
    return policies


def _inputs(args):
    """(arrivals, deployments, pools, workload label) from the flags; fills in the defaults."""
    from halyard.sim import model, workload
    from halyard.sim.scenario import load_scenario

    scenario = load_scenario(args.scenario) if args.scenario else None
    args.duration = args.duration or (scenario.duration_s if scenario else 86400.0)
    args.rate = args.rate or (scenario.rate if scenario else 200.0)
    deps_path = args.deployments or (scenario.deployments if scenario else EXAMPLES / "deployments.yaml")
    deps = model.load_deployments(deps_path, model.load_profiles(args.profile))
    if args.cluster or not scenario:
        pools = model.load_cluster(args.cluster or EXAMPLES / "cluster.yaml")
    else:
        pools = scenario.pools
    if args.trace:
        arrivals, deps = workload.load_trace(args.trace, deps, args.step, args.duration)
        return arrivals, deps, pools, "trace"
    if scenario:
        arrivals = workload.builtin(scenario.kind, deps, args.rate, args.step, args.seed,
                                    scenario.rate_profile, scenario.prompt_profile)
        return arrivals, deps, pools, f"scenario:{scenario.name}"
    kind = args.workload or "diurnal"
    return workload.builtin(kind, deps, args.rate, args.step, args.seed), deps, pools, kind


def run(args) -> int:
    from halyard.sim import model, workload
    from halyard.sim.runner import SimConfig, Simulation
    from halyard.sim.summary import summarize, table

    try:
        policies = _validate(args)
        arrivals, deps, pools, label = _inputs(args)
    except (model.SimInputError, OSError) as err:
        print(f"halyard sim: {err}", file=sys.stderr)
        return 2
    cfg = SimConfig(duration_s=args.duration, dt=args.step, interval_s=args.interval, seed=args.seed, policies=policies)
    sim = Simulation(deps, pools, arrivals, cfg)
    started = time.monotonic()
    sim.run(progress=not args.quiet)
    wall = time.monotonic() - started
    args.out.mkdir(parents=True, exist_ok=True)
    summary = summarize(sim)
    summary["run"] = {"duration_s": args.duration, "step_s": args.step, "interval_s": args.interval,
                      "seed": args.seed, "workload": label,
                      "rate": None if args.trace else args.rate, "wall_s": round(wall, 1),
                      "deployments": len(deps)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    events = [e for c in sim.controllers for e in getattr(c, "events", [])[:1000]]
    (args.out / "events.log").write_text("\n".join(events) + "\n")
    if not args.no_plots:
        from halyard.sim.plots import write_plots

        write_plots(sim, args.out)
    print(table(summary))
    print(f"wrote {args.out}/summary.json ({wall:.0f}s wall)")
    return 0

"""`halyard bench scenarios`: every built-in `halyard sim --scenario` for each seed, one table.

Per scenario, seed and policy: SLO attainment, failed requests, p95 TTFT,
cost, GPU-hours (idle node GPUs included) and cost vs static-peak and vs
reactive. Writes OUT/table.md (and each run's summary.json under OUT/NAME-sSEED/).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from halyard.sim.scenario import BUILTIN

    parser.add_argument("--scenarios", default=",".join(BUILTIN), help="comma-separated built-in scenario names")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds")
    parser.add_argument("--duration", default=None, help="override every scenario's duration (e.g. 2h)")
    parser.add_argument("--out", type=Path, default=Path("out/scenarios"))


def _row(scenario: str, seed: int, policy: str, t: dict) -> str:
    def pct(x):
        return "" if x is None else f"{x * 100:+.1f}%"

    ttft = "-" if t["p95_ttft_s"] is None else f"{t['p95_ttft_s'] * 1000:,.0f} ms"
    att = "-" if t["slo_attainment"] is None else f"{t['slo_attainment'] * 100:.2f}%"
    return (f"| {scenario} | {seed} | {policy} | {att} | {t['failed_requests']:,} | {ttft} | ${t['cost']:,.0f} | "
            f"{t['gpu_hours_total']:,.0f} | {pct(t.get('cost_vs_static_peak'))} | {pct(t.get('cost_vs_reactive'))} |")


def run(args: argparse.Namespace) -> int:
    from halyard.cli.main import main

    rows = ["| scenario | seed | policy | attainment | failed | p95 TTFT | cost | GPU-h | vs static | vs reactive |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in [x for x in args.scenarios.split(",") if x]:
        for seed in [int(x) for x in args.seeds.split(",") if x]:
            out = args.out / f"{name}-s{seed}"
            extra = ["--duration", args.duration] if args.duration else []
            rc = main(["sim", "--scenario", name, "--seed", str(seed), "--quiet", "--no-plots", "--out", str(out), *extra])
            if rc:
                return rc
            for policy, block in json.loads((out / "summary.json").read_text())["policies"].items():
                rows.append(_row(name, seed, policy, block["total"]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))
    return 0

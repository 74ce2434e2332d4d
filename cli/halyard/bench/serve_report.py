"""Print, save and plot a serving benchmark summary."""
from __future__ import annotations

import json


def table(summary: dict, title: str) -> str:
    rows = [
        ("Successful requests", f"{summary['completed']}"),
        ("Failed requests", f"{summary['failed']}"),
        ("Benchmark duration (s)", f"{summary['duration_s']:.2f}"),
        ("Total input tokens", f"{summary['total_input_tokens']}"),
        ("Total output tokens", f"{summary['total_output_tokens']}"),
        ("Request throughput (req/s)", f"{summary['request_throughput']:.2f}"),
        ("Output token throughput (tok/s)", f"{summary['output_throughput']:.2f}"),
        ("Total token throughput (tok/s)", f"{summary['total_token_throughput']:.2f}"),
    ]
    if "goodput" in summary:
        rows.append(("Request goodput (req/s)", f"{summary['goodput']:.2f}"))
    for key, name in (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "ITL"), ("e2el", "E2E latency")):
        s = summary[key]
        rows += [(f"Mean {name} (ms)", f"{s['mean_ms']:.2f}"),
                 (f"Median {name} (ms)", f"{s['median_ms']:.2f}"),
                 (f"P99 {name} (ms)", f"{s['p99_ms']:.2f}")]
    width = max(len(k) for k, _ in rows) + 2
    lines = [f"{'=' * 14} {title} {'=' * 14}"]
    lines += [f"{k:<{width}}{v:>12}" for k, v in rows]
    for err in summary.get("errors", []):
        lines.append(f"error: {err}")
    return "\n".join(lines)


def save_json(path: str, payload: dict) -> None:
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2)


def plot(path: str, results: list, title: str) -> None:
    """PNG with TTFT, ITL and E2E latency distributions (ms)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if r.success]
    series = [("TTFT (ms)", [r.ttft * 1e3 for r in ok]),
              ("ITL (ms)", [g * 1e3 for r in ok for g in r.itl]),
              ("E2E latency (ms)", [r.e2e * 1e3 for r in ok])]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (name, values) in zip(axes, series):
        if values:
            ax.hist(values, bins=30)
        ax.set_xlabel(name)
        ax.set_ylabel("count")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

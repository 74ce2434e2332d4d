"""summary.json: per policy and deployment, the figures a platform team compares."""
from __future__ import annotations

import numpy as np

from halyard.sim import stats
from halyard.sim.runner import Simulation


def _num(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


def _block(sim: Simulation, lanes: np.ndarray) -> dict:
    """Figures for a set of lanes (one deployment, or all of a policy's deployments)."""
    s, f = sim.serving, sim.fleet
    dep_of = lanes % sim.D
    adm = s.admitted_by_age[lanes]
    mix = np.einsum("ns,nsg->g", adm, sim.cdf[dep_of])[None, :] / max(adm.sum(), 1e-12)
    ttft = stats._grid_quantile(mix, stats.TTFT_GRID, 0.95)[0] if adm.sum() > 0 else np.nan
    itl = stats.hist_quantile(sim.itl_hist[lanes].sum(0, keepdims=True), stats.ITL_GRID)[0]
    resolved = s.completed[lanes].sum() + s.failed[lanes].sum()
    names = [p.name if p else None for p in f.pools]
    gpu_hours = {names[p]: round(float(f.gpu_seconds[lanes, p].sum() / 3600), 3) for p in range(2) if names[p]}
    return {
        "requests": int(round(s.arrived[lanes].sum())),
        "slo_attainment": _num(s.ok[lanes].sum() / resolved) if resolved else None,
        "p95_ttft_s": _num(ttft),
        "p95_itl_s": _num(itl),
        "failed_requests": int(round(s.failed[lanes].sum())),
        "gpu_hours": gpu_hours,
        "cost": round(float(sim.cost_by_lane()[lanes].sum()), 2),
    }


def summarize(sim: Simulation) -> dict:
    """Per policy: `total` (its replicas plus the GPUs of its nodes that no replica held:
    `idle_gpu_hours`, billed in `cost`; `gpu_hours_total` is everything billed) and per deployment."""
    out = {"policies": {}}
    f = sim.fleet
    for v, policy in enumerate(sim.cfg.policies):
        lanes = v * sim.D + np.arange(sim.D)
        per_dep = {dep.params.name: _block(sim, np.array([lane])) for dep, lane in zip(sim.deps, lanes)}
        total = _block(sim, lanes)
        idle_h = float(f.idle_gpu_seconds[v].sum() / 3600)
        total["idle_gpu_hours"] = round(idle_h, 3)
        total["idle_gpu_hours_by_pool"] = {pool.name: round(float(f.idle_gpu_seconds[v, p] / 3600), 3)
                                           for p, pool in enumerate(f.pools) if pool}
        total["gpu_hours_total"] = round(sum(total["gpu_hours"].values()) + idle_h, 3)
        total["cost"] = round(total["cost"] + float(f.idle_cost[v].sum()), 2)
        out["policies"][policy] = {"total": total, "deployments": per_dep}
    for base, key in (("static-peak", "cost_vs_static_peak"), ("reactive", "cost_vs_reactive")):
        ref = out["policies"].get(base, {}).get("total", {}).get("cost")
        if ref:
            for block in out["policies"].values():
                block["total"][key] = round(block["total"]["cost"] / ref - 1, 4)
    return out


def table(summary: dict) -> str:
    """A plain-text table of the policy totals."""
    rows = ["policy        attainment  p95 TTFT  p95 ITL   failed     cost   GPU-h  vs static  vs reactive"]

    def pct(x):
        return "        -" if x is None else f"{x * 100:+8.1f}%"

    for name, block in summary["policies"].items():
        t = block["total"]
        att = f"{t['slo_attainment'] * 100:9.2f}%" if t["slo_attainment"] is not None else "        -"
        ttft = f"{t['p95_ttft_s'] * 1000:7.0f}ms" if t["p95_ttft_s"] is not None else "       -"
        itl = f"{t['p95_itl_s'] * 1000:6.0f}ms" if t["p95_itl_s"] is not None else "      -"
        rows.append(f"{name:12s}  {att}  {ttft}  {itl}  {t['failed_requests']:7d}  {t['cost']:7.0f}  "
                    f"{t['gpu_hours_total']:6.0f}  {pct(t.get('cost_vs_static_peak'))}  {pct(t.get('cost_vs_reactive'))}")
    return "\n".join(rows)

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
    out = {"policies": {}}
    for v, policy in enumerate(sim.cfg.policies):
        lanes = v * sim.D + np.arange(sim.D)
        per_dep = {dep.params.name: _block(sim, np.array([lane])) for dep, lane in zip(sim.deps, lanes)}
        out["policies"][policy] = {"total": _block(sim, lanes), "deployments": per_dep}
    static = out["policies"].get("static-peak", {}).get("total", {}).get("cost")
    if static:
        for block in out["policies"].values():
            block["total"]["cost_vs_static_peak"] = round(block["total"]["cost"] / static - 1, 4)
    return out


def table(summary: dict) -> str:
    """A plain-text table of the policy totals."""
    rows = ["policy        attainment  p95 TTFT  p95 ITL  failed     cost  vs static"]
    for name, block in summary["policies"].items():
        t = block["total"]
        att = f"{t['slo_attainment'] * 100:9.2f}%" if t["slo_attainment"] is not None else "        -"
        ttft = f"{t['p95_ttft_s'] * 1000:7.0f}ms" if t["p95_ttft_s"] is not None else "       -"
        itl = f"{t['p95_itl_s'] * 1000:6.0f}ms" if t["p95_itl_s"] is not None else "      -"
        vs = t.get("cost_vs_static_peak")
        rows.append(f"{name:12s}  {att}  {ttft}  {itl}  {t['failed_requests']:6d}  {t['cost']:7.0f}  "
                    f"{'' if vs is None else f'{vs * 100:+.1f}%'}")
    return "\n".join(rows)

"""Scenarios: a workload, a cluster and the deployments in one YAML file.

    description: one line
    duration: 6h
    deployments: ../deployments.yaml     # relative to this file (default: the shipped example)
    workload:
      kind: poisson | diurnal | spike
      rate: 200                           # mean total requests/s
      rateProfile: [[t_s, factor], ...]   # piecewise-linear rate factor (surges, drift)
      promptProfile: [[t_s, factor], ...] # piecewise-linear prompt-length factor
    cluster: {pools: [...]}               # the cluster YAML's pools (reclaims, stockouts, priceChanges)

`--scenario NAME` reads `examples/scenarios/NAME.yaml`; any other value is a path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from halyard.sim.model import Pool, SimInputError, _num, cluster_from_doc

SCENARIOS = Path(__file__).resolve().parent / "examples" / "scenarios"
BUILTIN = ("surge", "spot-storm", "stock-out", "drift", "long-context", "tier-contention")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    duration_s: float
    deployments: Path
    kind: str
    rate: float
    rate_profile: tuple[tuple[float, float], ...]
    prompt_profile: tuple[tuple[float, float], ...]
    pools: dict[str, Pool]


def _profile(raw, where: str) -> tuple[tuple[float, float], ...]:
    try:
        points = tuple((float(t), float(f)) for t, f in raw or ())
    except (TypeError, ValueError):
        raise SimInputError(f"{where}: a list of [t_s, factor] pairs") from None
    if any(b[0] < a[0] for a, b in zip(points, points[1:])) or any(f < 0 for _, f in points):
        raise SimInputError(f"{where}: times must be increasing and factors >= 0")
    return points


def load_scenario(name: str) -> Scenario:
    path = SCENARIOS / f"{name}.yaml" if "/" not in name and not name.endswith(".yaml") else Path(name)
    if not path.exists():
        raise SimInputError(f"--scenario: {name!r} is neither a built-in ({', '.join(BUILTIN)}) nor a file")
    doc = yaml.safe_load(path.read_text()) or {}
    work = doc.get("workload") or {}
    deps = path.parent / doc["deployments"] if doc.get("deployments") else SCENARIOS.parent / "deployments.yaml"
    return Scenario(
        name=path.stem, description=str(doc.get("description", "")),
        duration_s=_num({"duration": doc.get("duration", "6h")}, "duration", str(path)), deployments=deps,
        kind=str(work.get("kind", "poisson")), rate=float(work.get("rate", 200.0)),
        rate_profile=_profile(work.get("rateProfile"), f"{path}: workload.rateProfile"),
        prompt_profile=_profile(work.get("promptProfile"), f"{path}: workload.promptProfile"),
        pools=cluster_from_doc(doc.get("cluster") or {}, f"{path}: cluster"))

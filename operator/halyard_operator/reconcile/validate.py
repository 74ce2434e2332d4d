"""What passes the CRD schema but still cannot work (pure).

A blocking problem stops every write (no half-created children); a
non-blocking one (no node matches a pool yet: a node autoscaler may add one)
is reported while the children are still applied.
"""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api import LLMDeploymentSpec
from halyard_operator.builders.args import extra_args_problems
from halyard_operator.builders.pools import Pools, node_matches
from halyard_operator.config import OperatorConfig, PoolPreset
from halyard_operator.names import GPU_PRODUCT_LABEL, Reason
from halyard_operator.observe import Observed, node_labels

# Providers that create matching nodes on demand: no node yet is normal.
PROVISIONING_PROVIDERS = ("karpenter",)


@dataclass(frozen=True)
class Problem:
    """Why the LLMDeployment cannot (fully) work; `message` says how to fix it."""

    reason: str
    message: str
    blocking: bool = True


def spec_problems(spec: LLMDeploymentSpec, config: OperatorConfig, pools: Pools | None,
                  observed: Observed) -> list[Problem]:
    problems = [Problem(Reason.INVALID_EXTRA_ARGS, m) for m in extra_args_problems(spec.engine.extra_args)]
    for name in observed.missing_secrets:
        problems.append(Problem(Reason.IMAGE_PULL_SECRET_NOT_FOUND,
                                f"spec.template.imagePullSecrets: Secret {name!r} does not exist in this "
                                "namespace; create it or remove it from the list"))
    tier = config.tiers.get(spec.tier)
    if tier is None:
        problems.append(Problem(Reason.UNKNOWN_TIER, f"spec.tier {spec.tier!r} is not configured in the "
                                "operator config (tiers); ask the platform team to add it"))
    elif spec.capacity.spot.enabled and not tier.spot_allowed:
        problems.append(Problem(Reason.SPOT_NOT_ALLOWED_FOR_TIER, f"tier {spec.tier} may not use spot capacity; "
                                "set spec.capacity.spot.enabled: false or choose another tier"))
    if pools is not None and spec.capacity.spot.enabled and pools.spot is None:
        problems.append(Problem(Reason.SPOT_UNAVAILABLE, f"provider {pools.provider} has no spot node label; "
                                "set spec.capacity.provider (karpenter, eks, gke, aks, or custom with "
                                "spec.capacity.custom.spot) or disable spot"))
    return problems


def placement_problems(spec: LLMDeploymentSpec, pools: Pools, observed: Observed) -> list[Problem]:
    """Non-blocking: pools whose node requirements no current node meets."""
    labels = node_labels(observed)
    if labels is None or pools.provider in PROVISIONING_PROVIDERS:
        return []
    problems = []
    for pool, preset in (("on-demand", pools.on_demand), ("spot", pools.spot)):
        if preset is None:
            continue
        wanted = _with_product(preset, spec.resources.gpu_product)
        if not any(node_matches(node, wanted) for node in labels):
            problems.append(Problem(Reason.NO_MATCHING_NODES, f"no node matches the {pool} pool ({_describe(wanted)}); "
                                    "pods stay Pending until such nodes exist: check "
                                    "spec.capacity.provider and spec.resources.gpuProduct", blocking=False))
    return problems


def _with_product(preset: PoolPreset, product: str | None) -> PoolPreset:
    if not product:
        return preset
    return PoolPreset({**preset.node_selector, GPU_PRODUCT_LABEL: product},
                      preset.match_expressions, preset.tolerations)


def _describe(preset: PoolPreset) -> str:
    parts = [f"{k}={v}" for k, v in preset.node_selector.items()]
    parts += [f"{e['key']} {e['operator']} {e.get('values', '')}".strip() for e in preset.match_expressions]
    return ", ".join(parts) or "any node"

"""Which nodes each capacity pool uses: provider detection and presets (pure)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from halyard_operator.api import LLMDeploymentSpec, PoolPlacement
from halyard_operator.config import OperatorConfig, PoolPreset
from halyard_operator.memo import per_object

ON_DEMAND, SPOT = "ondemand", "spot"
_DETECTION_ORDER = ("karpenter", "eks", "gke", "aks")


@dataclass(frozen=True)
class Pools:
    """Resolved placement for one LLMDeployment: the provider actually used
    and the preset of each pool (`spot` None when spot is off or impossible)."""

    provider: str
    on_demand: PoolPreset
    spot: PoolPreset | None


def detect_provider(node_labels: Iterable[Mapping[str, str]], config: OperatorConfig) -> str:
    """The first provider whose detection label some node carries, else 'generic'."""
    keys = label_keys(node_labels)
    for name in (*_DETECTION_ORDER, *sorted(set(config.providers) - set(_DETECTION_ORDER))):
        preset = config.providers.get(name)
        if preset and preset.detect_label and preset.detect_label in keys:
            return name
    return "generic"


@per_object
def label_keys(node_labels: Iterable[Mapping[str, str]]) -> frozenset[str]:
    """Every label key some node carries, once per labels tuple."""
    return frozenset(key for labels in node_labels for key in labels)


def resolve_pools(spec: LLMDeploymentSpec, config: OperatorConfig,
                  node_labels: Iterable[Mapping[str, str]] = ()) -> Pools:
    """Pool presets for `spec`; provider auto is detected from node labels."""
    provider = spec.capacity.provider
    if provider == "custom":
        custom = spec.capacity.custom
        return Pools("custom", _from_custom(custom.on_demand),
                     _from_custom(custom.spot) if spec.capacity.spot.enabled else None)
    if provider == "auto":
        provider = detect_provider(node_labels, config)
    preset = config.providers[provider]
    return Pools(provider, preset.on_demand, preset.spot if spec.capacity.spot.enabled else None)


def _from_custom(placement: PoolPlacement | None) -> PoolPreset:
    if placement is None:
        return PoolPreset()
    return PoolPreset(node_selector=dict(placement.node_selector),
                      tolerations=tuple(toleration_dict(t) for t in placement.tolerations))


def toleration_dict(t: Any) -> dict:
    """API Toleration -> core/v1 toleration dict (unset fields omitted)."""
    raw = {"key": t.key, "operator": t.operator, "value": t.value, "effect": t.effect,
           "tolerationSeconds": t.toleration_seconds}
    return {k: v for k, v in raw.items() if v is not None}


def node_matches(labels: Mapping[str, str], preset: PoolPreset) -> bool:
    """Whether a node with `labels` satisfies the preset's selector and expressions."""
    if any(labels.get(k) != v for k, v in preset.node_selector.items()):
        return False
    return all(_expression_matches(labels, e) for e in preset.match_expressions)


def _expression_matches(labels: Mapping[str, str], expr: Mapping[str, Any]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    raise ValueError(f"unsupported node selector operator {op!r}")

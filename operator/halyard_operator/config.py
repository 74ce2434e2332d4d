"""Operator configuration: parsed once at start-up into frozen dataclasses.

The YAML file (the `halyard-operator-config` ConfigMap, mounted) may set any
subset of the keys below; everything else keeps the defaults written here, so
an empty file is a valid configuration. Unknown keys are errors, naming the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from halyard_operator.api.schema import parse_duration


@dataclass(frozen=True)
class TierConfig:
    """What a priority tier means: its PriorityClass, whether its replicas may
    run on spot, whether higher tiers may preempt it, and its shedding order
    (lower sheds first when GPUs are scarce)."""

    priority_class: str
    spot_allowed: bool = True
    preemptible: bool = True
    shedding_order: int = 0


@dataclass(frozen=True)
class PoolPreset:
    """Node placement of one capacity pool: required labels, extra node
    affinity match expressions (e.g. DoesNotExist for "not spot") and
    tolerations (core/v1 dicts)."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[Mapping[str, Any], ...] = ()
    tolerations: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ProviderPreset:
    """Pool presets of one provider; `spot` is None when it has no spot label."""

    on_demand: PoolPreset
    spot: PoolPreset | None
    detect_label: str | None = None  # a node label whose presence identifies the provider


@dataclass(frozen=True)
class GpuPrice:
    """Price of one GPU per hour, in the configured currency."""

    on_demand: float
    spot: float


def _spot_taint(key: str, value: str) -> tuple[Mapping[str, Any], ...]:
    return ({"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"},)


DEFAULT_PROVIDERS: Mapping[str, ProviderPreset] = {
    "karpenter": ProviderPreset(
        on_demand=PoolPreset({"karpenter.sh/capacity-type": "on-demand"}),
        spot=PoolPreset({"karpenter.sh/capacity-type": "spot"}),
        detect_label="karpenter.sh/capacity-type"),
    "eks": ProviderPreset(
        on_demand=PoolPreset({"eks.amazonaws.com/capacityType": "ON_DEMAND"}),
        spot=PoolPreset({"eks.amazonaws.com/capacityType": "SPOT"}),
        detect_label="eks.amazonaws.com/capacityType"),
    "gke": ProviderPreset(
        on_demand=PoolPreset(match_expressions=(
            {"key": "cloud.google.com/gke-spot", "operator": "DoesNotExist"},)),
        spot=PoolPreset({"cloud.google.com/gke-spot": "true"},
                        tolerations=_spot_taint("cloud.google.com/gke-spot", "true")),
        detect_label="cloud.google.com/gke-nodepool"),
    "aks": ProviderPreset(
        on_demand=PoolPreset(match_expressions=(
            {"key": "kubernetes.azure.com/scalesetpriority", "operator": "NotIn", "values": ["spot"]},)),
        spot=PoolPreset({"kubernetes.azure.com/scalesetpriority": "spot"},
                        tolerations=_spot_taint("kubernetes.azure.com/scalesetpriority", "spot")),
        detect_label="kubernetes.azure.com/agentpool"),
    # No known provider labels: on-demand anywhere, no spot pool.
    "generic": ProviderPreset(on_demand=PoolPreset(), spot=None),
}

DEFAULT_TIERS: Mapping[str, TierConfig] = {
    "critical": TierConfig("halyard-critical", spot_allowed=True, preemptible=False, shedding_order=2),
    "standard": TierConfig("halyard-standard", spot_allowed=True, preemptible=True, shedding_order=1),
    "batch": TierConfig("halyard-batch", spot_allowed=True, preemptible=True, shedding_order=0),
}


MODEL_CACHE_VOLUMES = ("hostPath", "persistentVolumeClaim", "emptyDir")
DEFAULT_CACHE_PATH = "/var/lib/halyard/model-cache"


@dataclass(frozen=True)
class ModelCacheConfig:
    """The volume remote models (hf://, s3://) are fetched into by each worker
    pod's init container and loaded from by its server.

    `volume` is hostPath (shared by every pod on a node: a restart or a second
    replica there loads without downloading), persistentVolumeClaim (a claim
    named `claim_name` in each deployment's namespace, e.g. ReadWriteMany) or
    emptyDir (per pod; for namespaces whose pod security forbids hostPath).
    `mount_path` is where containers see it (default: the hostPath itself).
    """

    volume: str = "hostPath"
    host_path: str = DEFAULT_CACHE_PATH
    claim_name: str | None = None
    mount_path: str = DEFAULT_CACHE_PATH


@dataclass(frozen=True)
class OperatorConfig:
    """Everything the operator reads from its configuration file."""

    default_image: str = "halyard/worker:0.1.0"
    router_image: str = "halyard/operator:0.1.0"  # the base install: it carries halyard-router, no torch
    reconcile_interval: float = 300.0  # seconds between safety-net reconciles of each object (events drive the rest)
    metrics_interval: float = 10.0  # seconds between scrapes (and scaling decisions) of autoscaled objects
    metrics_window: float = 60.0  # seconds of samples behind rates and p95s
    prometheus_url: str | None = None  # read serving signals from this Prometheus instead of scraping pods
    tiers: Mapping[str, TierConfig] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    providers: Mapping[str, ProviderPreset] = field(default_factory=lambda: dict(DEFAULT_PROVIDERS))
    gpu_prices: Mapping[str, GpuPrice] = field(default_factory=dict)
    currency: str = "USD"
    model_cache: ModelCacheConfig = field(default_factory=ModelCacheConfig)


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the key."""


def load_config(path: str | Path | None) -> OperatorConfig:
    """Read and validate the YAML file at `path` (None = all defaults)."""
    if path is None:
        return OperatorConfig()
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read operator config {path}: {exc}") from exc
    return parse_config(data)


def parse_config(data: Mapping[str, Any]) -> OperatorConfig:
    """Config dict (camelCase keys) -> OperatorConfig, merged over the defaults."""
    _known(data, ("defaultImage", "routerImage", "reconcileInterval", "metricsInterval", "metricsWindow", "prometheusUrl",
                  "tiers", "providers", "gpuPrices", "currency", "modelCache"), "")
    base = OperatorConfig()
    prometheus = data.get("prometheusUrl")
    if prometheus is not None and not str(prometheus).startswith(("http://", "https://")):
        raise ConfigError(f"prometheusUrl: {prometheus!r} is not an http(s) URL, e.g. http://prometheus.monitoring:9090")
    return replace(
        base,
        default_image=str(data.get("defaultImage", base.default_image)),
        router_image=str(data.get("routerImage", base.router_image)),
        reconcile_interval=_duration(data, "reconcileInterval", "5m"),
        metrics_interval=_duration(data, "metricsInterval", "10s"),
        metrics_window=_duration(data, "metricsWindow", "60s"),
        prometheus_url=str(prometheus) if prometheus is not None else None,
        currency=str(data.get("currency", base.currency)),
        tiers={**base.tiers, **{k: _tier(k, v) for k, v in (data.get("tiers") or {}).items()}},
        providers={**base.providers,
                   **{k: _provider(k, v) for k, v in (data.get("providers") or {}).items()}},
        gpu_prices={k: _price(k, v) for k, v in (data.get("gpuPrices") or {}).items()},
        model_cache=_model_cache(data.get("modelCache") or {}),
    )


def _model_cache(raw: Any) -> ModelCacheConfig:
    _known(raw, (*MODEL_CACHE_VOLUMES, "mountPath"), "modelCache.")
    kinds = [k for k in MODEL_CACHE_VOLUMES if k in raw]
    if len(kinds) > 1:
        raise ConfigError(f"modelCache: give one of {', '.join(MODEL_CACHE_VOLUMES)}, not {' and '.join(kinds)}")
    volume = kinds[0] if kinds else "hostPath"
    host_path = str(raw.get("hostPath") or DEFAULT_CACHE_PATH)
    claim = raw.get("persistentVolumeClaim")
    if volume == "persistentVolumeClaim" and not (isinstance(claim, str) and claim):
        raise ConfigError("modelCache.persistentVolumeClaim: must be the claim's name, e.g. model-cache")
    mount = str(raw.get("mountPath") or (host_path if volume == "hostPath" else "/var/cache/halyard/models"))
    for key, path in (("hostPath", host_path), ("mountPath", mount)):
        if not path.startswith("/"):
            raise ConfigError(f"modelCache.{key}: {path!r} must be an absolute path, e.g. {DEFAULT_CACHE_PATH}")
    return ModelCacheConfig(volume=volume, host_path=host_path, claim_name=claim, mount_path=mount)


def _duration(data: Mapping[str, Any], key: str, default: str) -> float:
    try:
        seconds = parse_duration(data.get(key, default))
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from exc
    if seconds <= 0:
        raise ConfigError(f"{key}: must be longer than 0s, e.g. {default}")
    return seconds


def _known(data: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: must be a mapping")
    for key in data:
        if key not in keys:
            raise ConfigError(f"{where}{key}: unknown key; known keys: {', '.join(keys)}")


def _tier(name: str, raw: Any) -> TierConfig:
    _known(raw, ("priorityClassName", "spotAllowed", "preemptible", "sheddingOrder"), f"tiers.{name}.")
    return TierConfig(priority_class=str(raw.get("priorityClassName", f"halyard-{name}")),
                      spot_allowed=bool(raw.get("spotAllowed", True)),
                      preemptible=bool(raw.get("preemptible", True)),
                      shedding_order=int(raw.get("sheddingOrder", 0)))


def _pool(where: str, raw: Any) -> PoolPreset:
    _known(raw, ("nodeSelector", "matchExpressions", "tolerations"), where)
    return PoolPreset(node_selector=dict(raw.get("nodeSelector") or {}),
                      match_expressions=tuple(raw.get("matchExpressions") or ()),
                      tolerations=tuple(raw.get("tolerations") or ()))


def _provider(name: str, raw: Any) -> ProviderPreset:
    _known(raw, ("onDemand", "spot", "detectLabel"), f"providers.{name}.")
    spot = raw.get("spot")
    return ProviderPreset(on_demand=_pool(f"providers.{name}.onDemand.", raw.get("onDemand") or {}),
                          spot=_pool(f"providers.{name}.spot.", spot) if spot is not None else None,
                          detect_label=raw.get("detectLabel"))


def _price(product: str, raw: Any) -> GpuPrice:
    _known(raw, ("onDemand", "spot"), f"gpuPrices.{product}.")
    try:
        return GpuPrice(on_demand=float(raw["onDemand"]), spot=float(raw["spot"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"gpuPrices.{product}: needs numeric onDemand and spot prices per GPU-hour") from exc

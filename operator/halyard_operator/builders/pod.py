"""The worker pod template of one capacity pool (pure)."""
from __future__ import annotations

import math

from halyard_operator.api import LLMDeploymentSpec
from halyard_operator.builders.args import PORT, fetch_args, grace_period_seconds, model_source, worker_args
from halyard_operator.builders.meta import Owner, common_labels
from halyard_operator.builders.pools import toleration_dict
from halyard_operator.config import ModelCacheConfig, OperatorConfig, PoolPreset
from halyard_operator.names import GPU_PRODUCT_LABEL, GPU_RESOURCE, POOL_LABEL, TIER_LABEL
CACHE_DIR = "/var/cache/halyard"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"  # the worker writes its fatal error here
PROBE_PERIOD_S = 10
FETCH_CONTAINER = "fetch-model"
MODEL_CACHE_VOLUME = "model-cache"


def _security() -> dict:
    """Restricted pod security for every container (a fresh dict each time)."""
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}


def pod_template(owner: Owner, spec: LLMDeploymentSpec, pool: str, preset: PoolPreset,
                 config: OperatorConfig) -> dict:
    labels = {**common_labels(owner), POOL_LABEL: pool, TIER_LABEL: spec.tier}
    template = spec.template
    pod = {
        "priorityClassName": config.tiers[spec.tier].priority_class,
        "terminationGracePeriodSeconds": grace_period_seconds(spec.engine),
        "enableServiceLinks": False,
        "automountServiceAccountToken": template.service_account_name is not None,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                            "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(spec, config)],
        "volumes": _volumes(spec, config),
        "tolerations": _tolerations(spec, preset),
    }
    optional = {"nodeSelector": _node_selector(spec, preset), "affinity": _affinity(spec, preset),
                "serviceAccountName": template.service_account_name,
                "imagePullSecrets": [{"name": s.name} for s in template.image_pull_secrets]}
    init = _fetch_container(spec, config)
    if init:
        pod["initContainers"] = [init]
    pod.update({k: v for k, v in optional.items() if v})
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT),
                   "prometheus.io/path": "/metrics"}
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod}


def _container(spec: LLMDeploymentSpec, config: OperatorConfig) -> dict:
    template, source = spec.template, model_source(spec.model.uri)
    mounts = [*_cache_mounts(spec, config), {"name": "shm", "mountPath": "/dev/shm"}]
    if source.pvc_claim:
        mounts.append({"name": "model", "mountPath": source.mount_path, "readOnly": True})
    container = {
        "name": "worker",
        "image": template.image or config.default_image,
        "command": ["halyard-worker"],
        "args": worker_args(spec, config.model_cache.mount_path),
        "env": _env(spec),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": _resources(spec),
        "volumeMounts": mounts,
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "readinessProbe": _probe("/ready", period=5, failures=3),
        "livenessProbe": _probe("/health", period=PROBE_PERIOD_S, failures=3),
        "startupProbe": _probe("/health", period=PROBE_PERIOD_S,
                               failures=max(1, math.ceil(spec.engine.startup_timeout / PROBE_PERIOD_S))),
        "securityContext": _security(),
    }
    if template.image_pull_policy:
        container["imagePullPolicy"] = template.image_pull_policy
    return container


def _fetch_container(spec: LLMDeploymentSpec, config: OperatorConfig) -> dict | None:
    """Init container that fetches a remote model into the cache volume (None for local models)."""
    args = fetch_args(spec, config.model_cache.mount_path)
    if args is None:
        return None
    container = {"name": FETCH_CONTAINER, "image": spec.template.image or config.default_image,
                 "command": ["halyard-worker"], "args": args, "env": _env(spec),
                 "volumeMounts": _cache_mounts(spec, config), "securityContext": _security(),
                 "terminationMessagePath": TERMINATION_MESSAGE_PATH,
                 "terminationMessagePolicy": "FallbackToLogsOnError"}
    if spec.template.image_pull_policy:
        container["imagePullPolicy"] = spec.template.image_pull_policy
    return container


def _cache_mounts(spec: LLMDeploymentSpec, config: OperatorConfig) -> list[dict]:
    mounts = [{"name": "cache", "mountPath": CACHE_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    if model_source(spec.model.uri).remote:
        mounts.append({"name": MODEL_CACHE_VOLUME, "mountPath": config.model_cache.mount_path})
    return mounts


API_KEY_ENV = "HALYARD_API_KEY"  # read by `halyard-worker serve` when no --api-key(-file) is given


def _env(spec: LLMDeploymentSpec) -> list[dict]:
    env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
           {"name": "HOME", "value": "/tmp"}, {"name": "HF_HOME", "value": CACHE_DIR},
           {"name": "HALYARD_TERMINATION_MESSAGE_PATH", "value": TERMINATION_MESSAGE_PATH}]
    if spec.api_key_secret_ref is not None:
        ref = spec.api_key_secret_ref
        env.append({"name": API_KEY_ENV,
                    "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    for var in spec.template.env:
        entry = {"name": var.name}
        if var.value is not None:
            entry["value"] = var.value
        if var.value_from is not None:
            entry["valueFrom"] = dict(var.value_from)
        env.append(entry)
    return env


def _resources(spec: LLMDeploymentSpec) -> dict:
    res = spec.resources
    limits, requests = {}, {}
    if res.gpus:
        limits[GPU_RESOURCE] = str(res.gpus)
    for key, value in (("cpu", res.cpu), ("memory", res.memory)):
        if value is not None:
            limits[key] = requests[key] = str(value)
    return {k: v for k, v in (("limits", limits), ("requests", requests)) if v}


def _probe(path: str, period: int, failures: int) -> dict:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period,
            "timeoutSeconds": 2, "failureThreshold": failures}


def _volumes(spec: LLMDeploymentSpec, config: OperatorConfig) -> list[dict]:
    volumes = [{"name": "cache", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}},
               {"name": "shm", "emptyDir": {"medium": "Memory"}}]
    source = model_source(spec.model.uri)
    if source.remote:
        volumes.append(_model_cache_volume(config.model_cache))
    claim = source.pvc_claim
    if claim:
        volumes.append({"name": "model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
    return volumes


def _model_cache_volume(cache: ModelCacheConfig) -> dict:
    if cache.volume == "hostPath":
        return {"name": MODEL_CACHE_VOLUME, "hostPath": {"path": cache.host_path, "type": "DirectoryOrCreate"}}
    if cache.volume == "persistentVolumeClaim":
        return {"name": MODEL_CACHE_VOLUME, "persistentVolumeClaim": {"claimName": cache.claim_name}}
    return {"name": MODEL_CACHE_VOLUME, "emptyDir": {}}


def _node_selector(spec: LLMDeploymentSpec, preset: PoolPreset) -> dict:
    selector = dict(preset.node_selector)
    if spec.resources.gpu_product:
        selector[GPU_PRODUCT_LABEL] = spec.resources.gpu_product
    selector.update(spec.template.node_selector)
    return selector


def _tolerations(spec: LLMDeploymentSpec, preset: PoolPreset) -> list[dict]:
    tolerations = [dict(t) for t in preset.tolerations]
    if spec.resources.gpus:
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    return tolerations + [toleration_dict(t) for t in spec.template.tolerations]


def _affinity(spec: LLMDeploymentSpec, preset: PoolPreset) -> dict:
    """The user's affinity, with the pool's match expressions ANDed into every
    required node selector term."""
    affinity = dict(spec.template.affinity or {})
    if not preset.match_expressions:
        return affinity
    node = dict(affinity.get("nodeAffinity") or {})
    required = dict(node.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = [dict(t) for t in required.get("nodeSelectorTerms") or [{}]]
    for term in terms:
        term["matchExpressions"] = [*term.get("matchExpressions", []), *map(dict, preset.match_expressions)]
    required["nodeSelectorTerms"] = terms
    node["requiredDuringSchedulingIgnoredDuringExecution"] = required
    return {**affinity, "nodeAffinity": node}

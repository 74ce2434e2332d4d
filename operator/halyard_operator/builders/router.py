"""The router children of one LLMDeployment (pure): Deployment `<name>-router`
(its pods watch the worker pods with a namespaced Role), ServiceAccount, Role,
RoleBinding and PodDisruptionBudget `<name>-router`.

Router pods carry `halyard.dev/router`, never `halyard.dev/deployment`: the
worker selector (Services, PDB, scaling, metrics) must not match them.
"""
from __future__ import annotations

import math

from halyard_operator.api import LLMDeploymentSpec
from halyard_operator.builders.args import PORT
from halyard_operator.builders.meta import Owner, child_metadata
from halyard_operator.names import ROUTER_LABEL
from halyard_operator.config import OperatorConfig

ROUTER_COMPONENT = "router"
DEFAULT_BLOCK_SIZE = 16
DEFAULT_MAX_NUM_SEQS = 64  # the engine's default running batch


def router_name(owner: Owner) -> str:
    return f"{owner.name}-router"


def router_selector(owner: Owner) -> dict[str, str]:
    return {ROUTER_LABEL: owner.name}


def _labels(owner: Owner) -> dict[str, str]:
    return {"app.kubernetes.io/name": "halyard-router", "app.kubernetes.io/instance": owner.name,
            "app.kubernetes.io/component": ROUTER_COMPONENT, "app.kubernetes.io/part-of": "halyard",
            "app.kubernetes.io/managed-by": "halyard-operator", **router_selector(owner)}


def _metadata(owner: Owner, name: str) -> dict:
    """The objects carry the deployment label like every child (kubectl get -l
    halyard.dev/deployment=<name> lists them); only the pod template does not."""
    meta = child_metadata(owner, name)
    meta["labels"] = {**meta["labels"], **_labels(owner)}
    return meta


def engine_block_size(spec: LLMDeploymentSpec) -> int:
    """The workers' KV block size: `--block-size` in extraArgs, else the engine default."""
    args = list(spec.engine.extra_args)
    for i, arg in enumerate(args):
        if arg.startswith("--block-size="):
            return int(arg.split("=", 1)[1])
        if arg == "--block-size" and i + 1 < len(args):
            return int(args[i + 1])
    return DEFAULT_BLOCK_SIZE


def router_args(owner: Owner, spec: LLMDeploymentSpec) -> list[str]:
    router = spec.router
    args = ["--deployment", owner.name, "--namespace", "$(POD_NAMESPACE)", "--host", "$(POD_IP)",
            "--port", str(PORT), "--worker-port", str(PORT), "--policy", router.policy, "--tier", spec.tier,
            "--block-size", str(engine_block_size(spec)),
            "--saturation", str(spec.engine.max_num_seqs or DEFAULT_MAX_NUM_SEQS),
            "--hold-timeout", f"{router.hold_timeout:g}", "--hold-max", str(router.hold_max),
            "--queue-max", str(router.queue.max_requests),
            *(arg for tier in ("critical", "standard", "batch")
              for arg in (f"--queue-wait-{tier}", f"{getattr(router.queue.max_wait, tier):g}")),
            "--served-model-name", spec.model.name]
    if router.cache.enabled:
        args += ["--cache-entries", str(router.cache.max_entries), "--cache-bytes", str(router.cache.max_bytes),
                 "--cache-ttl", f"{router.cache.ttl:g}"]
    return args


def _probe(path: str, period: int) -> dict:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": 2,
            "failureThreshold": 3}


def _container(owner: Owner, spec: LLMDeploymentSpec, config: OperatorConfig) -> dict:
    env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
           {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    return {
        "name": "router",
        "image": spec.router.image or config.router_image,
        "command": ["halyard-router"], "args": router_args(owner, spec), "env": env,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "readinessProbe": _probe("/ready", 2), "livenessProbe": _probe("/health", 10),
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
    }


def router_deployment(owner: Owner, spec: LLMDeploymentSpec, config: OperatorConfig) -> dict:
    """apps/v1 Deployment `<name>-router`: spread over nodes, restricted pod security."""
    selector = router_selector(owner)
    pod = {
        "serviceAccountName": router_name(owner), "automountServiceAccountToken": True,
        "enableServiceLinks": False,
        # Streams in flight finish (or end with an error event) within the workers' drain time.
        "terminationGracePeriodSeconds": math.ceil(spec.engine.drain_timeout) + 15,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(owner, spec, config)],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": selector}}],
    }
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT), "prometheus.io/path": "/metrics"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(owner, router_name(owner)),
        "spec": {"replicas": spec.router.replicas, "selector": {"matchLabels": selector},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": _labels(owner), "annotations": annotations}, "spec": pod}},
    }


def router_rbac(owner: Owner) -> list[dict]:
    """ServiceAccount, Role (read and watch pods in the namespace: RBAC cannot
    narrow by label) and its RoleBinding."""
    name = router_name(owner)
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _metadata(owner, name),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": _metadata(owner, name),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
               "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}]}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(owner, name)}
    return [account, role, binding]


def router_disruption_budget(owner: Owner) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": _metadata(owner, router_name(owner)),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": router_selector(owner)}}}


def router_children(owner: Owner, spec: LLMDeploymentSpec, config: OperatorConfig) -> list[dict]:
    if not spec.router.enabled:
        return []
    return [*router_rbac(owner), router_deployment(owner, spec, config), router_disruption_budget(owner)]

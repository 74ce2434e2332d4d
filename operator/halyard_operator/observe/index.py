"""What the operator's watch-fed indexes keep of each object (pure, kopf-free).

Each function takes one object as a watch delivered it and returns its index
entries (`{key: value}`, or None for an object the index skips); kopf keeps
them up to date from its watches (`@kopf.index`, see `halyard_operator.indexing`)
and `observe.view.ClusterView` reads them. Values are typed observations
(NodeInfo, PodSnapshot, GpuClaim) or, for children and router pods, the
trimmed object (writes are diffed against children; router pods are scraped).

Keys:
  nodes      node name                        -> NodeInfo
  pods       (WORKERS, namespace, deployment) -> PodSnapshot  (worker pods)
             (ROUTERS, namespace, deployment) -> trimmed Pod  (router pods)
             (CLAIMS,)                        -> GpuClaim     (GPU pods outside Halyard)
  children   (namespace, owner name)          -> ((kind, name), Packed trimmed object)
  llmds      (namespace, name)                -> IndexedLLMD (Packed body, and the two flags
                                                 the operator's scans read without unpacking)
"""
from __future__ import annotations

import json
import zlib
from typing import Mapping

from halyard_operator.api import API_GROUP, KIND
from halyard_operator.names import CAPACITY_CONSTRAINED, DEPLOYMENT_LABEL, ROUTER_LABEL
from halyard_operator.observe.read import read_gpu_claims, read_node, snapshot_pod
from halyard_operator.observe.types import NodeInfo

WORKERS, ROUTERS, CLAIMS = "workers", "routers", "claims"


def node_entries(body: Mapping) -> dict[str, NodeInfo]:
    info = read_node(body)
    return {info.name: info}


def pod_entries(body: Mapping) -> dict | None:
    """A worker pod by its deployment, a router pod by its deployment, or a GPU claim."""
    meta = body.get("metadata") or {}
    labels, ns = meta.get("labels") or {}, meta.get("namespace")
    if DEPLOYMENT_LABEL in labels:
        return {(WORKERS, ns, labels[DEPLOYMENT_LABEL]): snapshot_pod(body)}
    if ROUTER_LABEL in labels:
        status = body.get("status") or {}
        trimmed = {"metadata": {"name": meta.get("name"), "deletionTimestamp": meta.get("deletionTimestamp")},
                   "status": {"podIP": status.get("podIP"), "conditions": status.get("conditions") or []}}
        return {(ROUTERS, ns, labels[ROUTER_LABEL]): trimmed}
    claims = read_gpu_claims([body])
    return {(CLAIMS,): claims[0]} if claims else None


def owner_name(body: Mapping) -> str | None:
    """The LLMDeployment that controls this object (its controller owner reference), if any."""
    for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == KIND and str(ref.get("apiVersion", "")).startswith(
                f"{API_GROUP}/"):
            return ref.get("name")
    return None


class Packed:
    """An object kept as compressed compact JSON: a Deployment is ~4 KB as JSON,
    ten times that as nested Python dicts and under 1 KB compressed, and only its
    own deployment's reconcile reads it (`load()`, a fresh copy each time)."""

    __slots__ = ("raw",)

    def __init__(self, obj: Mapping):
        self.raw = zlib.compress(json.dumps(obj, separators=(",", ":")).encode(), 1)

    def load(self) -> dict:
        return json.loads(zlib.decompress(self.raw))


class IndexedLLMD:
    """An LLMDeployment as last watched: its body packed, plus what the scans over
    every deployment read (`fast`: decided on live signals every metrics interval;
    `held_back`: waiting for GPUs), so a scan unpacks nothing."""

    __slots__ = ("packed", "fast", "held_back")

    def __init__(self, body: Mapping):
        self.packed = Packed(body)
        self.fast = is_fast(body.get("spec") or {})
        self.held_back = is_held_back(body)

    def load(self) -> dict:
        return self.packed.load()


def is_fast(spec: Mapping) -> bool:
    """Deployments whose decisions depend on live signals: autoscaled, or using spot."""
    return bool(spec.get("scaling")) or bool(((spec.get("capacity") or {}).get("spot") or {}).get("enabled"))


def is_held_back(body: Mapping) -> bool:
    """The status says the deployment waits for GPUs (CapacityConstrained True)."""
    conditions = (body.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == CAPACITY_CONSTRAINED and c.get("status") == "True" for c in conditions)


def child_entries(kind: str, body: Mapping) -> dict | None:
    """An object an LLMDeployment controls, without managedFields (the bulk of a live object)."""
    owner = owner_name(body)
    if owner is None:
        return None
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    trimmed = {**{k: v for k, v in body.items() if k != "metadata"}, "metadata": meta, "kind": kind}
    return {(meta.get("namespace"), owner): ((kind, meta.get("name")), Packed(trimmed))}


def llmd_entries(body: Mapping) -> dict[tuple[str, str], IndexedLLMD]:
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    plain = {"metadata": meta, "spec": dict(body.get("spec") or {}), "status": dict(body.get("status") or {})}
    return {(meta.get("namespace"), meta.get("name")): IndexedLLMD(plain)}


def poked_deployment(body: Mapping) -> tuple[str, str] | None:
    """The (namespace, name) of the LLMDeployment a pod or child event concerns, if any."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    name = labels.get(DEPLOYMENT_LABEL) or labels.get(ROUTER_LABEL) or owner_name(body)
    return (meta.get("namespace"), name) if name else None

"""Names, labels and owner references shared by every child object (pure)."""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api import API_GROUP, API_VERSION, KIND

DEPLOYMENT_LABEL = "halyard.dev/deployment"
POOL_LABEL = "halyard.dev/pool"
TIER_LABEL = "halyard.dev/tier"
ROUTER_LABEL = "halyard.dev/router"  # on router pods (never DEPLOYMENT_LABEL: they are not workers)
# On a worker pod whose node has an interruption notice: routers stop sending it requests.
DRAINING_ANNOTATION = "halyard.dev/draining"
FIELD_MANAGER = "halyard-operator"


@dataclass(frozen=True)
class Owner:
    """The LLMDeployment that owns the children (identity only)."""

    name: str
    namespace: str
    uid: str

    def owner_reference(self) -> dict:
        return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, "name": self.name,
                "uid": self.uid, "controller": True, "blockOwnerDeletion": True}


def pool_name(owner: Owner, pool: str) -> str:
    """Deterministic child Deployment name: <name>-ondemand / <name>-spot."""
    return f"{owner.name}-{pool}"


def selector_labels(owner: Owner) -> dict[str, str]:
    return {DEPLOYMENT_LABEL: owner.name}


def selector_string(owner: Owner) -> str:
    return f"{DEPLOYMENT_LABEL}={owner.name}"


def common_labels(owner: Owner) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "halyard-worker",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": "inference",
        "app.kubernetes.io/part-of": "halyard",
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
        DEPLOYMENT_LABEL: owner.name,
    }


def child_metadata(owner: Owner, name: str, extra_labels: dict[str, str] | None = None) -> dict:
    return {"name": name, "namespace": owner.namespace,
            "labels": {**common_labels(owner), **(extra_labels or {})},
            "ownerReferences": [owner.owner_reference()]}


def endpoint(owner: Owner) -> str:
    return f"http://{owner.name}.{owner.namespace}.svc:8000/v1"

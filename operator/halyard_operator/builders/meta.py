"""Names, labels and owner references shared by every child object (pure)."""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api import API_GROUP, API_VERSION, KIND
from halyard_operator.names import (
    APP_COMPONENT_LABEL, APP_INSTANCE_LABEL, APP_MANAGED_BY_LABEL, APP_NAME_LABEL, APP_PART_OF_LABEL,
    DEPLOYMENT_LABEL, FIELD_MANAGER,
)


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
        APP_NAME_LABEL: "halyard-worker",
        APP_INSTANCE_LABEL: owner.name,
        APP_COMPONENT_LABEL: "inference",
        APP_PART_OF_LABEL: "halyard",
        APP_MANAGED_BY_LABEL: FIELD_MANAGER,
        DEPLOYMENT_LABEL: owner.name,
    }


def child_metadata(owner: Owner, name: str, extra_labels: dict[str, str] | None = None) -> dict:
    return {"name": name, "namespace": owner.namespace,
            "labels": {**common_labels(owner), **(extra_labels or {})},
            "ownerReferences": [owner.owner_reference()]}


def endpoint(owner: Owner) -> str:
    return f"http://{owner.name}.{owner.namespace}.svc:8000/v1"

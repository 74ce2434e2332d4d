"""REST paths of the kinds the operator touches."""
from __future__ import annotations

# kind -> (api prefix, plural, namespaced)
KINDS = {
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "Service": ("/api/v1", "services", True),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets", True),
    "Secret": ("/api/v1", "secrets", True),
    "Node": ("/api/v1", "nodes", False),
    "Pod": ("/api/v1", "pods", True),
    "Event": ("/api/v1", "events", True),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "LLMDeployment": ("/apis/halyard.dev/v1alpha1", "llmdeployments", True),
}


def collection_path(kind: str, namespace: str | None = None) -> str:
    prefix, plural, namespaced = KINDS[kind]
    # A namespaced kind without a namespace lists across all namespaces.
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespaced and namespace else f"{prefix}/{plural}"


def object_path(kind: str, name: str, namespace: str | None = None) -> str:
    return f"{collection_path(kind, namespace)}/{name}"


def describe(kind: str, name: str, namespace: str | None = None) -> str:
    """'Deployment team-a/chat-8b-spot' for logs and events."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"

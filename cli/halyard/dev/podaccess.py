"""API access for a pod's processes, as a kubelet gives it.

Every container gets `KUBERNETES_SERVICE_HOST`/`_PORT`; in the dev cluster
they name the API server's real local address (Service IPs do not route
here). A container that mounts the service account directory gets its
projected token (a TokenRequest bound to the pod, so RBAC applies exactly as
on a real cluster) and, because in-cluster clients read that directory by its
fixed path, a kubeconfig with the same token named by `KUBECONFIG`.
"""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import yaml

from halyard.dev.podvolumes import Mount

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class ApiAccess:
    """Where the API server is for pods: URL and CA (base64 PEM, or a file)."""

    server: str
    ca_data: str | None = None
    ca_file: str | None = None

    @classmethod
    def from_kubeconfig(cls, path: Path) -> "ApiAccess":
        config = yaml.safe_load(path.read_text())
        current = next((c["context"] for c in config.get("contexts") or []
                        if c["name"] == config.get("current-context")), None)
        clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
        cluster = clusters[current["cluster"]] if current else next(iter(clusters.values()))
        return cls(cluster["server"], cluster.get("certificate-authority-data"),
                   cluster.get("certificate-authority"))

    def service_env(self) -> dict[str, str]:
        url = urllib.parse.urlsplit(self.server)
        port = str(url.port or (443 if url.scheme == "https" else 80))
        return {"KUBERNETES_SERVICE_HOST": url.hostname or "127.0.0.1", "KUBERNETES_SERVICE_PORT": port,
                "KUBERNETES_SERVICE_PORT_HTTPS": port}

    def kubeconfig(self, token: str, namespace: str) -> dict:
        cluster = {"server": self.server}
        if self.ca_data:
            cluster["certificate-authority-data"] = self.ca_data
        elif self.ca_file:
            cluster["certificate-authority"] = self.ca_file
        return {"apiVersion": "v1", "kind": "Config", "current-context": "pod",
                "clusters": [{"name": "dev", "cluster": cluster}],
                "users": [{"name": "serviceaccount", "user": {"token": token}}],
                "contexts": [{"name": "pod", "context": {"cluster": "dev", "user": "serviceaccount",
                                                         "namespace": namespace}}]}


def access_env(access: ApiAccess, mounts: tuple[Mount, ...], pod_dir: Path, namespace: str) -> dict[str, str]:
    """Env for one container: the service address, plus KUBECONFIG when it mounts a token."""
    env = access.service_env()
    sa = next((m for m in mounts if m.container_path == SA_DIR), None)
    token = Path(sa.local_path) / "token" if sa else None
    if token is not None and token.is_file():
        path = pod_dir / "kubeconfig"
        path.write_text(yaml.safe_dump(access.kubeconfig(token.read_text().strip(), namespace)))
        env["KUBECONFIG"] = str(path)
    return env

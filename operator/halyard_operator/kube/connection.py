"""Where the API server is and how to authenticate, shared by kopf and the client.

Resolved once at start-up: in-cluster service account, else the kubeconfig
(KUBECONFIG / ~/.kube/config) through the `kubernetes` package's loader.
"""
from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Connection:
    """API server URL and credentials. `token_path` is re-read per request
    (projected tokens rotate); `token` is a fixed bearer token."""

    server: str
    token: str | None = None
    token_path: str | None = None
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    insecure: bool = False

    def bearer(self) -> str | None:
        if self.token_path:
            return Path(self.token_path).read_text().strip()
        return self.token

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        if self.insecure:
            return False
        ctx = ssl.create_default_context(cafile=self.ca_path)
        if self.cert_path:
            ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx


def in_cluster() -> Connection | None:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not (SA_DIR / "token").exists():
        return None
    host = f"[{host}]" if ":" in host else host
    return Connection(server=f"https://{host}:{port or 443}", token_path=str(SA_DIR / "token"),
                      ca_path=str(SA_DIR / "ca.crt"))


def from_kubeconfig(path: str | None = None, context: str | None = None) -> Connection:
    try:
        from kubernetes import client, config  # only needed outside the cluster
    except ImportError:
        raise SystemExit("halyard-operator: reading a kubeconfig needs the kubernetes package: "
                         "pip install 'halyard[kubeconfig]' (in a pod the service account is used)") from None

    cfg = client.Configuration()
    config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    token = auth.split(" ", 1)[1] if auth and " " in auth else auth
    return Connection(server=cfg.host, token=token, ca_path=cfg.ssl_ca_cert,
                      cert_path=cfg.cert_file, key_path=cfg.key_file, insecure=not cfg.verify_ssl)


def discover(kubeconfig: str | None = None) -> Connection:
    """In-cluster credentials when running in a pod, else the kubeconfig."""
    return (None if kubeconfig else in_cluster()) or from_kubeconfig(kubeconfig)

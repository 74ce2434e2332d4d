"""Install Halyard's API and cluster-wide manifests into a dev cluster.

The CRD comes from `crds/`; the kustomize base in `manifests/` is rendered and
applied without the operator's own Deployment, because the dev environment
runs the operator as a local process.
"""
from __future__ import annotations

import time
from pathlib import Path

import yaml

from halyard.dev.kube import Kubectl, KubectlError

CRD_NAME = "llmdeployments.halyard.dev"
SKIP_KINDS = {"Deployment"}  # the operator runs locally in dev


def manifest_objects(kubectl: Kubectl, root: Path) -> list[dict]:
    """The rendered kustomize base minus what the dev environment runs itself."""
    base = root / "manifests"
    if not (base / "kustomization.yaml").is_file():
        return []
    rendered = kubectl.run("kustomize", str(base))
    return [doc for doc in yaml.safe_load_all(rendered) if doc and doc.get("kind") not in SKIP_KINDS]


def _wait_served(kubectl: Kubectl, timeout: float = 30) -> None:
    """Established precedes discovery by a moment; wait until `kubectl get llmd` works."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kubectl.run("get", "llmd", "-A", timeout=20)
            return
        except KubectlError:
            time.sleep(0.5)
    raise RuntimeError(f"the API server does not serve {CRD_NAME} {timeout:.0f}s after it was established")


def install(kubectl: Kubectl, root: Path) -> list[str]:
    """Apply CRDs, wait until established, then the manifests; returns kind/name lines."""
    crds = sorted(p for p in (root / "crds").glob("*.yaml") if p.name != "kustomization.yaml")
    if not crds:
        raise RuntimeError(f"no CRD found under {root / 'crds'}")
    applied = []
    for crd in crds:
        applied.append(kubectl.apply_file(crd, "--server-side", "--force-conflicts").strip())
    kubectl.run("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    _wait_served(kubectl)
    objects = manifest_objects(kubectl, root)
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    if namespaces:  # namespaces first: the rest may live in them
        applied.append(kubectl.apply(namespaces, "--server-side").strip())
    rest = [o for o in objects if o["kind"] != "Namespace"]
    if rest:
        applied.append(kubectl.apply(rest, "--server-side").strip())
    return [line for block in applied for line in block.splitlines()]

"""Observe one LLMDeployment: children, nodes and worker pods from the watch-fed
indexes (`ClusterView`), pull secrets through a short-lived cache of GETs."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from halyard_operator.api import LLMDeploymentSpec
from halyard_operator.builders.meta import Owner
from halyard_operator.kube.client import KubeClient
from halyard_operator.observe.types import Observed
from halyard_operator.observe.view import ClusterView


@dataclass
class SecretCache:
    """Pull secrets found by a metadata-only GET, remembered for `ttl_s`; a missing
    one is asked again at every reconcile (so its Degraded condition clears at once)."""

    ttl_s: float = 300.0
    found: dict = field(default_factory=dict)  # (namespace, name) -> monotonic time seen

    async def missing(self, kube: KubeClient, namespace: str, names: tuple[str, ...]) -> list[str]:
        now, out = time.monotonic(), []
        for name in names:
            seen = self.found.get((namespace, name))
            if seen is not None and now - seen < self.ttl_s:
                continue
            if await kube.get("Secret", name, namespace, metadata_only=True) is None:
                self.found.pop((namespace, name), None)
                out.append(name)
            else:
                self.found[(namespace, name)] = now
        return out


async def observe(view: ClusterView, kube: KubeClient, owner: Owner, spec: LLMDeploymentSpec, now: float,
                  secrets: SecretCache) -> Observed:
    """Children, nodes, worker pods and missing pull secrets; pod ages are taken at `now` (epoch s)."""
    missing = await secrets.missing(kube, owner.namespace, tuple(r.name for r in spec.template.image_pull_secrets))
    return Observed(children=view.children(owner), nodes=view.nodes(), pods=view.pods(owner, now),
                    missing_secrets=tuple(missing))

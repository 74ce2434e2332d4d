"""Policy conditions: what a policy wants written into `status.conditions`."""
from __future__ import annotations

from dataclasses import dataclass

CAPACITY_CONSTRAINED = "CapacityConstrained"
SPOT_FALLBACK_ACTIVE = "SpotFallbackActive"
SLO_AT_RISK = "SLOAtRisk"


@dataclass(frozen=True)
class Condition:
    """One Kubernetes-style condition. `reason` is CamelCase, `message` a sentence."""

    type: str
    status: bool
    reason: str
    message: str

    def to_status(self) -> dict:
        """The condition as a status dict (the caller adds lastTransitionTime/observedGeneration)."""
        return {"type": self.type, "status": "True" if self.status else "False",
                "reason": self.reason, "message": self.message}

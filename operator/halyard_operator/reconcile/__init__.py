"""One level-triggered reconcile per LLMDeployment: observe -> plan -> apply."""
from halyard_operator.reconcile.core import ReconcileContext, reconcile

__all__ = ["ReconcileContext", "reconcile"]

"""Pure scaling policies: autoscaler, capacity planner, interruption handling, tier arbiter.

`plan_capacity` (policy.plan) is the single entry point the reconcile calls.
"""
from halyard_operator.policy.plan import (
    CapacityDecision, ObservedPod, ScalingState, observed_pod, plan_capacity,
)

__all__ = ["CapacityDecision", "ObservedPod", "ScalingState", "observed_pod", "plan_capacity"]

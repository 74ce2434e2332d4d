"""Pure scaling policies: autoscaler, capacity planner, interruption handling, tier arbiter.

`plan_capacity` (policy.plan) is the single entry point the reconcile calls.
"""
from halyard_operator.policy.plan import CapacityDecision, Event, ScalingState, plan_capacity

__all__ = ["CapacityDecision", "Event", "ScalingState", "plan_capacity"]

"""Pure scaling policies: autoscaler, capacity planner, interruption handling, tier arbiter.

`plan_capacity` (policy.plan) is the single entry point the reconcile calls;
its decision step, `decide_capacity` (policy.decide), is what the simulator calls.
"""
from halyard_operator.policy.decide import CapacityChoice, CapacityObservation, decide_capacity
from halyard_operator.policy.plan import CapacityDecision, Event, ScalingState, plan_capacity

__all__ = ["CapacityChoice", "CapacityDecision", "CapacityObservation", "Event", "ScalingState",
           "decide_capacity", "plan_capacity"]

"""Pure scaling policies: autoscaler, capacity planner, interruption handling, tier arbiter."""

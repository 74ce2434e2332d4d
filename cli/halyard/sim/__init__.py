"""Fleet simulator: the operator's policies and baselines on a fluid model of GPU replicas."""

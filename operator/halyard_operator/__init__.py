"""Halyard's Kubernetes operator: LLMDeployment -> GPU worker pods, kept inside SLOs."""

__version__ = "0.1.0"

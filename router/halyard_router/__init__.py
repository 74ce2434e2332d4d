"""Halyard's per-deployment router: an OpenAI-compatible reverse proxy in front of
an LLMDeployment's worker pods (prefix- and load-aware routing, holding through
scale-from-zero, tier-based admission, retries on drain and node loss).

It never imports torch, the worker or the user's tools; it may import the
operator's torch-free modules (Kubernetes connection, /metrics parsing, wire
names), which ship in the same base install (`tests/test_import_graph.py`).
"""

__version__ = "0.1.0"

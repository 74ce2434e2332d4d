"""Halyard's inference engine and OpenAI-compatible worker server.

`from halyard_worker import LLM, SamplingParams` is the offline API; it is
resolved lazily so that importing the package does not load torch.
"""
from __future__ import annotations

__all__ = ["LLM", "SamplingParams", "RequestOutput"]


def __getattr__(name: str):
    if name == "LLM":
        from halyard_worker.llm import LLM

        return LLM
    if name in ("SamplingParams", "RequestOutput"):
        from halyard_worker.engine import types

        return getattr(types, name)
    raise AttributeError(name)

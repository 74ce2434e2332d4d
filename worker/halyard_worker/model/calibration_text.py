"""Built-in calibration text for `int4-awq` when none is given.

English prose that ships with every Python: the docstrings of a few standard
library modules (written by the CPython authors, not this project, and
disjoint from `pydoc_data.topics`, which `halyard bench quality` evaluates on).
"""
from __future__ import annotations

import importlib

MODULES = ("argparse", "subprocess", "logging", "json", "threading", "unittest", "collections",
           "email", "http", "decimal", "difflib", "textwrap", "optparse", "heapq", "pickle", "tarfile")
MAX_CHARS = 2000  # per text: ~500 tokens


def default_calibration_texts(max_texts: int = 8) -> tuple[str, ...]:
    texts = []
    for name in MODULES:
        doc = (importlib.import_module(name).__doc__ or "").strip()
        if len(doc) > 200:
            texts.append(doc[:MAX_CHARS])
        if len(texts) == max_texts:
            break
    return tuple(texts)

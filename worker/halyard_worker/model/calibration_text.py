"""Built-in calibration text for `int4-awq` when none is given.

English prose that ships with every Python: the documentation strings of
standard library modules and of their public classes and functions (written
by the CPython authors, not this project, and disjoint from
`pydoc_data.topics`, the language reference that `halyard bench quality`
evaluates on), cut into texts of about `CHUNK_CHARS` characters.
"""
from __future__ import annotations

import importlib
import inspect

MODULES = ("argparse", "subprocess", "logging", "json", "threading", "unittest", "collections",
           "email", "http", "decimal", "difflib", "textwrap", "optparse", "heapq", "pickle", "tarfile",
           "configparser", "socketserver", "statistics", "fileinput", "shelve", "csv", "cmd", "ssl",
           "pdb", "re", "zipfile", "shutil", "datetime", "fractions", "string", "pathlib")
CHUNK_CHARS = 2000  # per text: ~500 tokens
PER_MODULE = 2  # texts at most from one module, so that many modules are sampled
MIN_DOC = 200  # shorter documentation strings are skipped


def module_prose(name: str) -> str:
    """The module's docstring, then those of its own public classes and functions."""
    module = importlib.import_module(name)
    docs = [module.__doc__ or ""]
    for attr, obj in sorted(vars(module).items()):
        if attr.startswith("_") or getattr(obj, "__module__", None) != name:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            docs.append(inspect.getdoc(obj) or "")
    return "\n\n".join(d.strip() for d in docs if len(d.strip()) >= MIN_DOC)


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Consecutive pieces of about `size` characters, cut at paragraph breaks where possible."""
    out, start = [], 0
    while len(text) - start >= size // 2:
        end = text.rfind("\n\n", start + size // 2, start + size)
        end = start + size if end < 0 else end
        out.append(text[start:end].strip())
        start = end
    return out


def default_calibration_texts(max_texts: int = 32) -> tuple[str, ...]:
    texts: list[str] = []
    for name in MODULES:
        texts.extend(chunks(module_prose(name))[:PER_MODULE])
    return tuple(texts[:max_texts])

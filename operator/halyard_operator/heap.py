"""Giving freed heap memory back to the system.

A burst (thousands of LLMDeployments created at once, or the first list of a
large cluster) leaves glibc's heap holding the pages of the watch bodies it
has already freed: the process's RSS stays at the burst's peak. glibc's
`malloc_trim(0)` returns free pages (at the top of the heap and inside it)
to the kernel. It is called once a minute; where the C library is not glibc
there is nothing to call and the loop is not started.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from typing import Callable

log = logging.getLogger(__name__)


def malloc_trim() -> Callable[[], int] | None:
    """glibc's malloc_trim(0), or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


async def trim_loop(interval_s: float = 60.0, trim: Callable[[], int] | None = None) -> None:
    trim = trim or malloc_trim()
    if trim is None:
        log.info("no malloc_trim in this C library: freed heap memory stays with the process")
        return
    while True:
        await asyncio.sleep(interval_s)
        trim()

"""Pausing Python's cyclic garbage collector around work that builds many small objects
and frees none of them until it ends (an import of results, the parse of a suite file):
each collection would walk them all again for nothing."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Collection is paused process-wide for the seconds the work takes; the objects it
    leaves are collected after. Reference counting still frees what is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

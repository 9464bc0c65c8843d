"""without_gc(): Python's cyclic garbage collector paused for bulk work (a process-wide setting)."""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


# Kept because it pays: parsing and matching 100,000 transactions make about a million small containers and
# no cycles, which the collector would walk again and again; without it bench/bank.py took 2.1-2.5 s for
# parse + match (budget 2 s) instead of 1.6. The state found is put back even when the work raises, and a
# nested or concurrent caller that found it off leaves it off, so only the outermost one turns it on again.
@contextlib.contextmanager
def without_gc() -> Iterator[None]:
    """The collector off for the ``with`` block, then as it was before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

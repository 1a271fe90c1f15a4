"""Python's cyclic garbage collector, tuned for long-running daemons that
hold large caches.

With the default thresholds (700/10/10) full collections walk every cached
object again and again: they took ~15% of the API server's CPU under load
(py-spy --native: gc_collect_main), mostly walking the watch caches, and
the controller manager's informer caches cost it the same way. Garbage in
these processes is freed by reference counting; cycles (exceptions,
cancelled tasks) are rare, so collect seldom, and move what exists at
start-up out of the collector's sight.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

"""How the service is served: settings that ``gunicorn.conf.py`` and the load benchmark share.

Standard library only: ``gunicorn.conf.py`` imports it in the gunicorn master, before any
worker exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def worker_count(environ: Mapping[str, str]) -> int:
    """``WEB_CONCURRENCY`` of ``environ``, else one per CPU this process may use, at least 2."""
    configured = environ.get("WEB_CONCURRENCY", "").strip()
    if configured:
        return max(1, int(configured))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # A request spends most of its time on the CPU (SQLite, or PostgreSQL close by): more
    # workers than CPUs only queue for them, and on SQLite for its write lock, with worse
    # tail latencies (benchmarks/README.md). With a distant database, set more.
    return max(cpus or 1, 2)

"""Caches kept by each worker process: one home, one way to make them.

Every cache lives in ``app.extensions`` (so each app, and each test's app, has its own)
and is made on first use from the app's configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import current_app

CacheT = TypeVar("CacheT")


def worker_cache(name: str, make: Callable[[Mapping[str, Any]], CacheT]) -> CacheT:
    """This worker's cache called ``name``, made by ``make(config)`` on first use."""
    key = f"commentsvc.cache.{name}"
    extensions = current_app.extensions
    cache: CacheT | None = extensions.get(key)
    if cache is None:
        cache = extensions[key] = make(current_app.config)
    return cache


def drop_worker_cache(name: str) -> None:
    """Forget this worker's cache called ``name`` (it is made again when next used)."""
    current_app.extensions.pop(f"commentsvc.cache.{name}", None)

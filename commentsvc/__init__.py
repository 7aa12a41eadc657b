"""commentsvc: a self-hosted comment moderation service.

The package imports nothing heavy: gunicorn's master imports :mod:`commentsvc.serving` and
:mod:`commentsvc.config`, and a master that loaded Flask, SQLAlchemy and the rest would hold
them for nothing (workers import the application themselves). ``create_app`` and the
application's class are loaded from :mod:`commentsvc.app` when first named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from commentsvc._meta import PROJECT_ROOT, __version__

if TYPE_CHECKING:
    from commentsvc.app import CommentsApp, create_app, create_app_or_exit

__all__ = ["PROJECT_ROOT", "CommentsApp", "__version__", "create_app", "create_app_or_exit"]

_FROM_APP = frozenset({"CommentsApp", "create_app", "create_app_or_exit"})


def __getattr__(name: str) -> Any:
    if name in _FROM_APP:
        from commentsvc import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

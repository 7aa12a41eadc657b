"""What every panel page needs: who is logged in, where to go back to, how to show time."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import request
from flask_login import current_user

from commentsvc.models import Moderator, Site
from commentsvc.paths import PANEL_PREFIX
from commentsvc.services import sites


def current_moderator() -> Moderator:
    """The logged-in moderator."""
    user: Moderator = current_user._get_current_object()
    return user


def visible_sites() -> list[Site]:
    """The sites the logged-in moderator may see."""
    scope = current_moderator().site_scope()
    return [site for site in sites.all_sites() if scope is None or site.id in scope]


def wants_json() -> bool:
    """Whether our script asked for JSON rather than a page."""
    return request.accept_mimetypes.best == "application/json"


def safe_next(target: str | None) -> str | None:
    """The panel path (and query) ``target`` points to on this host, else None.

    Only paths inside the panel are followed, so a crafted link cannot turn the login
    into an open redirect.
    """
    if not target or any(c in target for c in "\\\r\n"):
        return None
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc) and parts.netloc != request.host:
        return None
    if not parts.path.startswith(PANEL_PREFIX + "/") or parts.path.startswith("//"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


_UNITS = (("minute", 60, 3600), ("hour", 3600, 86400), ("day", 86400, 86400 * 30))


def relative_time(value: datetime | None, now: datetime | None = None) -> str:
    """'just now', '5 minutes ago', '3 days ago', or the date for anything older."""
    if value is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 45:
        return "just now"
    for unit, size, below in _UNITS:
        if seconds < below:
            amount = max(1, round(seconds / size))
            return f"{amount} {unit}{'' if amount == 1 else 's'} ago"
    return value.strftime("%-d %b %Y")

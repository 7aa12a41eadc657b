"""Where each audience lives in the URL space; every module that asks uses these."""

from __future__ import annotations

#: The moderator web panel (HTML, sessions, CSRF).
PANEL_PREFIX = "/moderation"
#: Paths whose errors are always problem+json (everything else keeps HTML errors).
API_PREFIXES = ("/api/", "/openapi.json", "/healthz", "/readyz", "/metrics")


def in_panel(path: str) -> bool:
    """Whether a request path is the panel's (nothing else uses the session)."""
    return path == PANEL_PREFIX or path.startswith(PANEL_PREFIX + "/")


def in_api(path: str) -> bool:
    """Whether a request path answers errors as problem+json."""
    return path.startswith(API_PREFIXES)

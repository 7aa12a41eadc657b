"""Where each audience lives in the URL space; every module that asks uses these."""

from __future__ import annotations

#: The moderator web panel (HTML, sessions, CSRF).
PANEL_PREFIX = "/moderation"
#: The public API a site's pages call (one prefix per site), and the moderation API.
PUBLIC_API_PREFIX = "/api/v1/sites/"
MODERATION_API_PREFIX = "/api/v1/moderation"
#: Paths whose errors are always problem+json (everything else keeps HTML errors).
API_PREFIXES = ("/api/", "/openapi.json", "/healthz", "/readyz", "/metrics")


def in_panel(path: str) -> bool:
    """Whether a request path is the panel's (nothing else uses the session)."""
    return path == PANEL_PREFIX or path.startswith(PANEL_PREFIX + "/")


def in_api(path: str) -> bool:
    """Whether a request path answers errors as problem+json."""
    return path.startswith(API_PREFIXES)


def in_public_api(path: str) -> bool:
    """Whether a request path is the public API's (a site's thread, counts, submissions)."""
    return path.startswith(PUBLIC_API_PREFIX)


def in_moderation_api(path: str) -> bool:
    """Whether a request path is the moderation API's."""
    return path == MODERATION_API_PREFIX or path.startswith(MODERATION_API_PREFIX + "/")

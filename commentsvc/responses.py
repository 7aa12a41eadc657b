"""Headers that the hot public reads set on every answer, written straight into the
response's headers.

Werkzeug's ``response.cache_control`` and ``response.vary`` parse the header into an object
on each access and write it out again on each change: several microseconds a request on
paths that answer in well under a millisecond, for headers whose value is known in advance.
"""

from __future__ import annotations

from flask import Response

#: Shared caches may keep the answer, but ask each time whether it is still current (ETag).
REVALIDATE = "public, no-cache"
#: Ask each time (the answer is not to be shared, e.g. it differs by site origin).
NO_CACHE = "no-cache"


def vary_on(response: Response, name: str) -> None:
    """Add ``name`` to the response's ``Vary`` header, once."""
    current = response.headers.get("Vary")
    if not current:
        response.headers["Vary"] = name
    elif name.lower() not in {part.strip().lower() for part in current.split(",")}:
        response.headers["Vary"] = f"{current}, {name}"

"""Keyset pagination: an opaque cursor holding the last id a page showed."""

from __future__ import annotations

import base64
import binascii

from flask import current_app, request

from commentsvc.errors import ApiError
from commentsvc.models import MAX_ID

_CURSOR_PREFIX = "c1:"


def encode_cursor(last_id: int) -> str:
    """The cursor that continues after ``last_id``."""
    raw = f"{_CURSOR_PREFIX}{last_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor continues after; None for the first page; 400 for a bad cursor."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(cursor)
        value = int(raw[len(_CURSOR_PREFIX) :])
        # No page ends past the largest id; PostgreSQL would refuse such a number outright.
        if not 0 <= value <= MAX_ID:
            raise ValueError(cursor)
    except (ValueError, UnicodeError, binascii.Error):
        raise ApiError(
            400, "The cursor is not valid.", errors={"cursor": ["Not a valid cursor."]}
        ) from None
    return value


def page_args() -> tuple[int, int | None]:
    """``limit`` and the decoded ``cursor`` of the current request's query string."""
    raw_limit = request.args.get("limit")
    limit = current_app.config["PAGE_SIZE"]
    maximum = current_app.config["MAX_PAGE_SIZE"]
    if raw_limit not in (None, ""):
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = -1
        if not 1 <= limit <= maximum:
            raise ApiError(
                400,
                f"limit must be a whole number from 1 to {maximum}.",
                errors={"limit": [f"Must be a whole number from 1 to {maximum}."]},
            )
    return limit, decode_cursor(request.args.get("cursor"))

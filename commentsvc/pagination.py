"""Keyset pagination: an opaque cursor holding the last id a page showed."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Generic, TypeVar

from commentsvc.errors import ApiError
from commentsvc.models import MAX_ID

_CURSOR_PREFIX = "c1:"
Item = TypeVar("Item")


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


@dataclass(frozen=True)
class Paginated(Generic[Item]):
    """One page of a list, and the cursor of the next (None at the end)."""

    items: Sequence[Item]
    next_cursor: str | None


_ID: Callable[[Any], int] = attrgetter("id")


def paginate(
    rows: Sequence[Item], limit: int, last_id: Callable[[Item], int] = _ID
) -> Paginated[Item]:
    """The first ``limit`` of ``rows`` (read as ``limit + 1``: one more means a next page)."""
    if len(rows) <= limit:
        return Paginated(rows, None)
    shown = rows[:limit]
    return Paginated(shown, encode_cursor(last_id(shown[-1])))

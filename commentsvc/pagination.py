"""Keyset pagination: an opaque cursor holding the last id a page showed (and, for lists
ordered by spam score, that comment's score)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Generic, TypeVar

from commentsvc.errors import ApiError
from commentsvc.models import MAX_ID
from commentsvc.services.listing import Position

_CURSOR_PREFIX = "c1:"
Item = TypeVar("Item")


def encode_cursor(last_id: int, score: float | None = None) -> str:
    """The cursor that continues after ``last_id`` (with ``score``, in score order)."""
    text = f"{_CURSOR_PREFIX}{last_id}" if score is None else f"{_CURSOR_PREFIX}{last_id}:{score!r}"
    return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")


def _bad_cursor() -> ApiError:
    return ApiError(400, "The cursor is not valid.", errors={"cursor": ["Not a valid cursor."]})


def decode_position(cursor: str | None, *, scored: bool = False) -> Position | None:
    """Where a cursor continues; None for the first page; 400 for a bad cursor or one of
    the other order (``scored``: the list is in score order)."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(cursor)
        last_id, has_score, score_text = raw[len(_CURSOR_PREFIX) :].partition(":")
        value = int(last_id)
        # No page ends past the largest id; PostgreSQL would refuse such a number outright.
        if not 0 <= value <= MAX_ID or bool(has_score) != scored:
            raise ValueError(cursor)
        score = float(score_text) if scored else None
        if score is not None and not 0 <= score <= 1:
            raise ValueError(cursor)
    except (ValueError, UnicodeError, binascii.Error):
        raise _bad_cursor() from None
    return Position(value, score)


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor continues after; None for the first page; 400 for a bad cursor."""
    position = decode_position(cursor)
    return position.id if position is not None else None


@dataclass(frozen=True)
class Paginated(Generic[Item]):
    """One page of a list, and the cursor of the next (None at the end)."""

    items: Sequence[Item]
    next_cursor: str | None


_ID: Callable[[Any], int] = attrgetter("id")


def paginate(
    rows: Sequence[Item],
    limit: int,
    last_id: Callable[[Item], int] = _ID,
    score: Callable[[Item], float] | None = None,
) -> Paginated[Item]:
    """The first ``limit`` of ``rows`` (read as ``limit + 1``: one more means a next page);
    ``score``: the list is in score order, and its cursor holds the last score too."""
    if len(rows) <= limit:
        return Paginated(rows, None)
    shown = rows[:limit]
    last = shown[-1]
    return Paginated(shown, encode_cursor(last_id(last), score(last) if score else None))

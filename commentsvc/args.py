"""Request arguments, read one way for the panel and the API alike.

The same bad argument gets the same answer everywhere: a 400 naming the argument (as
problem+json on the API, as the panel's error page in the panel).
"""

from __future__ import annotations

from flask import current_app, request

from commentsvc.errors import ApiError
from commentsvc.models import STATUSES, CommentStatus, is_row_id
from commentsvc.pagination import decode_cursor, decode_position
from commentsvc.services.listing import Order, Position


def bad_argument(name: str, message: str, detail: str | None = None) -> ApiError:
    """The 400 for a query argument that cannot be used."""
    return ApiError(400, detail or f"{name}: {message}", errors={name: [message]})


def text_arg(name: str, *, limit: str = "MAX_FILTER_LENGTH") -> str | None:
    """A trimmed text argument (None when absent or blank), at most as long as the setting
    ``limit`` says."""
    value = request.args.get(name, "").strip()
    limit_value = current_app.config[limit]
    if len(value) > limit_value:
        raise bad_argument(name, f"Must be at most {limit_value} characters.")
    return value or None


def required_arg(name: str, *, limit: str = "MAX_FILTER_LENGTH") -> str:
    """A text argument that must be given."""
    value = text_arg(name, limit=limit)
    if value is None:
        raise bad_argument(
            name, "This parameter is required.", f"The query parameter {name!r} is required."
        )
    return value


def status_arg(name: str = "status") -> CommentStatus | None:
    """A comment status argument (None when absent)."""
    value = request.args.get(name, "")
    if value == "":
        return None
    if value not in STATUSES:
        raise bad_argument(name, f"Must be one of: {', '.join(STATUSES)}.", "Unknown status.")
    return CommentStatus(value)


def choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    """An argument that must be one of ``choices`` (None when absent)."""
    value = request.args.get(name, "")
    if value == "":
        return None
    if value not in choices:
        raise bad_argument(name, f"Must be one of: {', '.join(choices)}.")
    return value


def fraction(text: str) -> float | None:
    """``text`` as a number from 0 to 1; None if it is none (NaN included)."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if 0 <= number <= 1 else None


def fraction_arg(name: str) -> float | None:
    """A number from 0 to 1 (None when absent)."""
    value = request.args.get(name, "")
    if value == "":
        return None
    number = fraction(value)
    if number is None:
        raise bad_argument(name, "Must be a number from 0 to 1.")
    return number


def order_args() -> tuple[Order, Position | None]:
    """A comment listing's ``order`` (newest first when absent) and the ``cursor`` of that
    order (a cursor of the other order is a 400)."""
    order = Order(choice_arg("order", tuple(Order)) or Order.NEWEST)
    return order, decode_position(request.args.get("cursor"), scored=order == Order.SPAM_SCORE)


def id_arg(name: str) -> int | None:
    """A row id argument (None when absent)."""
    value = request.args.get(name, "")
    if value == "":
        return None
    if not (value.isascii() and value.isdigit()) or not is_row_id(int(value)):
        raise bad_argument(name, "Must be a positive integer.", f"{name} must be an id.")
    return int(value)


def limit_arg() -> int:
    """``limit``: from 1 to ``MAX_PAGE_SIZE``; ``PAGE_SIZE`` when absent."""
    raw = request.args.get("limit")
    maximum = current_app.config["MAX_PAGE_SIZE"]
    if raw in (None, ""):
        return int(current_app.config["PAGE_SIZE"])
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= maximum:
        message = f"Must be a whole number from 1 to {maximum}."
        raise bad_argument("limit", message, f"limit must be a whole number from 1 to {maximum}.")
    return limit


def cursor_arg() -> int | None:
    """The id the ``cursor`` argument continues after (None: the first page)."""
    return decode_cursor(request.args.get("cursor"))


def page_args() -> tuple[int, int | None]:
    """``limit`` and the decoded ``cursor``."""
    return limit_arg(), cursor_arg()

"""The comment listing: one statement and one row type for the panel and the API alike."""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute

from commentsvc.extensions import read_connection
from commentsvc.models import Comment, CommentStatus, Moderator, Page, Site
from commentsvc.services.errors import NotFound


@dataclass(frozen=True)
class Position:
    """Where a page ends: the last id it showed, and that comment's score in score order."""

    id: int
    score: float | None = None


class Order(enum.StrEnum):
    """How the moderation list is ordered."""

    NEWEST = "newest"
    #: Most likely spam first (then newest first): to review what the rules flagged.
    SPAM_SCORE = "spam_score"


@dataclass(frozen=True)
class CommentFilter:
    """What the moderation list is narrowed to."""

    status: CommentStatus | None = None
    site: str | None = None
    page: str | None = None
    q: str | None = None
    author_email: str | None = None
    #: Only comments the abuse rules scored at least this (0 to 1).
    spam_score_min: float | None = None
    #: Only comments one rule gave this reason for (``links``, ``blocklist:email``, …).
    reason: str | None = None


@dataclass(frozen=True)
class _Query:
    """A listing's parameters: each one that is set narrows it by its :data:`_CONDITIONS`."""

    scope: list[int] | None = None
    status: CommentStatus | None = None
    site: str | None = None
    page: str | None = None
    pattern: str | None = None
    author_email: str | None = None
    spam_score_min: float | None = None
    reason_pattern: str | None = None
    before_id: int | None = None
    #: In score order: the page continues after (``before_score``, ``before_id``).
    before_score: float | None = None
    comment_id: int | None = None

    @classmethod
    def of(cls, scope: set[int] | None, filters: CommentFilter, **more: Any) -> _Query:
        pattern = f"%{_escape_like(filters.q)}%" if filters.q else None
        reason = f"% {_escape_like(filters.reason)} %" if filters.reason else None
        return cls(
            scope=sorted(scope) if scope is not None else None,
            status=filters.status,
            site=filters.site,
            page=filters.page,
            pattern=pattern,
            author_email=filters.author_email,
            spam_score_min=filters.spam_score_min,
            reason_pattern=reason,
            **more,
        )

    def parameters(self) -> dict[str, Any]:
        """The parameters that are set, by name."""
        values = ((field.name, getattr(self, field.name)) for field in dataclasses.fields(self))
        return {name: value for name, value in values if value is not None}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matches(column: InstrumentedAttribute[str]) -> sa.ColumnElement[bool]:
    return column.ilike(sa.bindparam("pattern", type_=sa.String()), escape="\\")


#: The condition each parameter of :class:`_Query` adds, under its name.
_CONDITIONS: dict[str, Callable[[], sa.ColumnElement[bool]]] = {
    "scope": lambda: Comment.site_id.in_(sa.bindparam("scope", expanding=True)),
    "status": lambda: Comment.status == sa.bindparam("status"),
    "site": lambda: (
        Comment.site_id
        == sa.select(Site.id).where(Site.slug == sa.bindparam("site")).scalar_subquery()
    ),
    "page": lambda: Comment.page_id.in_(sa.select(Page.id).where(Page.key == sa.bindparam("page"))),
    "pattern": lambda: sa.or_(
        _matches(Comment.body), _matches(Comment.author_name), _matches(Comment.author_email)
    ),
    "author_email": lambda: Comment.author_email == sa.bindparam("author_email"),
    "spam_score_min": lambda: Comment.spam_score >= sa.bindparam("spam_score_min"),
    "reason_pattern": lambda: (" " + Comment.spam_reasons + " ").like(
        sa.bindparam("reason_pattern", type_=sa.String()), escape="\\"
    ),
    "before_id": lambda: Comment.id < sa.bindparam("before_id"),
    "before_score": lambda: sa.or_(
        Comment.spam_score < sa.bindparam("before_score"),
        sa.and_(
            Comment.spam_score == sa.bindparam("before_score"),
            Comment.id < sa.bindparam("before_id"),
        ),
    ),
    "comment_id": lambda: Comment.id == sa.bindparam("comment_id"),
}
assert set(_CONDITIONS) == {field.name for field in dataclasses.fields(_Query)}

#: What a listed comment carries: its own columns, its site, page and moderator. The page's
#: URL and title are the page's (its approved comments'), else what the comment itself
#: was sent with; the site's origins tell whether that URL is on the site.
LISTING_COLUMNS = (
    *(
        column
        for column in Comment.__table__.columns
        if column.key not in {"page_url", "page_title"}
    ),
    Site.slug.label("site_slug"),
    Site.origins.label("site_origins"),
    Page.key.label("page_key"),
    sa.func.coalesce(Page.url, Comment.page_url).label("page_url"),
    sa.func.coalesce(Page.title, Comment.page_title).label("page_title"),
    Moderator.email.label("moderated_by_email"),
)
#: One comment as a listing row, whatever its status (the outbox's record of a change).
ONE_COMMENT = (
    sa.select(*LISTING_COLUMNS)
    .join(Page, Page.id == Comment.page_id)
    .join(Site, Site.id == Comment.site_id)
    .outerjoin(Moderator, Moderator.id == Comment.moderated_by_id)
    .where(Comment.id == sa.bindparam("comment_id"))
)
#: What the panel shows of the comment a listed one replies to.
_PARENTS = sa.select(Comment.id, Comment.author_name, Comment.body).where(
    Comment.id.in_(sa.bindparam("ids", expanding=True))
)


#: Where :data:`_CONDITIONS` of one parameter already use another's (a page in score order
#: continues after a score *and* an id), that other adds no condition of its own.
_SUBSUMED = {"before_score": "before_id"}


@functools.cache
def _listing(present: frozenset[str], order: Order) -> sa.Select[Any]:
    """Comments narrowed by the parameters named in ``present``, in ``order``.

    Built once per combination: building a statement costs more than running it.
    """
    statement = (
        sa.select(*LISTING_COLUMNS)
        .join(Page, Page.id == Comment.page_id)
        .join(Site, Site.id == Comment.site_id)
        .outerjoin(Moderator, Moderator.id == Comment.moderated_by_id)
    )
    ordering: list[sa.UnaryExpression[Any]] = [Comment.id.desc()]
    if order == Order.SPAM_SCORE:
        ordering.insert(0, Comment.spam_score.desc())
    return _narrowed(statement, present).order_by(*ordering).limit(sa.bindparam("limit"))


@functools.cache
def _status_counts(present: frozenset[str]) -> sa.Select[Any]:
    statement = sa.select(Comment.status, sa.func.count()).group_by(Comment.status)
    return _narrowed(statement, present)


def _narrowed(statement: sa.Select[Any], present: frozenset[str]) -> sa.Select[Any]:
    """``statement`` with the condition of each parameter named in ``present``."""
    subsumed = {_SUBSUMED[name] for name in present if name in _SUBSUMED}
    for name in sorted(present - subsumed):
        statement = statement.where(_CONDITIONS[name]())
    return statement


def _rows(query: _Query, limit: int, order: Order = Order.NEWEST) -> Sequence[sa.Row[Any]]:
    parameters = query.parameters()
    statement = _listing(frozenset(parameters), order)
    with read_connection() as connection:  # one statement: no ORM, no transaction needed
        return connection.execute(statement, {**parameters, "limit": limit}).all()


def list_comments(
    scope: set[int] | None,
    filters: CommentFilter,
    before: Position | int | None,
    limit: int,
    order: Order = Order.NEWEST,
) -> Sequence[sa.Row[Any]]:
    """Up to ``limit + 1`` comments in scope matching the filters, in ``order``, after
    ``before`` (a position, or an id in newest-first order), as rows of
    :data:`LISTING_COLUMNS` (the extra one tells whether a next page exists)."""
    if isinstance(before, int):
        before = Position(before)
    after: dict[str, Any] = {}
    if before is not None:
        after["before_id"] = before.id
        if order == Order.SPAM_SCORE:
            after["before_score"] = before.score
    return _rows(_Query.of(scope, filters, **after), limit + 1, order)


def row_score(row: sa.Row[Any]) -> float:
    """A listed comment's spam score: what a cursor in score order carries."""
    return float(row.spam_score)


def find_comment(scope: set[int] | None, comment_id: int) -> sa.Row[Any]:
    """One comment in scope as a listing row; NotFound (no existence leak) otherwise."""
    rows = _rows(_Query.of(scope, CommentFilter(), comment_id=comment_id), 1)
    if not rows:
        raise NotFound(f"There is no comment {comment_id}.")
    return rows[0]


def parents_of(rows: Iterable[sa.Row[Any]]) -> dict[int, sa.Row[Any]]:
    """The comments the listed ones reply to (id, author name, body), by id.

    Apart from the listing: a join to the parent cost the moderation API's listing, which
    never shows it, a third of its time on PostgreSQL (planning one more join).
    """
    ids = sorted({row.parent_id for row in rows if row.parent_id is not None})
    if not ids:
        return {}
    with read_connection() as connection:
        return {row.id: row for row in connection.execute(_PARENTS, {"ids": ids})}


def status_counts(scope: set[int] | None, filters: CommentFilter) -> dict[CommentStatus, int]:
    """How many comments in scope match the filters, per status (the queue's tabs)."""
    query = dataclasses.replace(_Query.of(scope, filters), status=None)
    parameters = query.parameters()
    counts = dict.fromkeys(CommentStatus, 0)
    with read_connection() as connection:
        rows = connection.execute(_status_counts(frozenset(parameters)), parameters).tuples()
        counts.update({status: count for status, count in rows})
    return counts

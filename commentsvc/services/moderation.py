"""Moderation use cases shared by the moderation API and the panel.

Every change writes a :class:`ModerationEvent` in the same transaction as the change, and
keeps the page's public counters (approved count, thread version) true.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from commentsvc.errors import ApiError, ValidationError
from commentsvc.extensions import db, read_connection, write_transaction
from commentsvc.models import (
    ACTION_STATUS,
    MAX_ID,
    STATUS_ACTION,
    ApiToken,
    Comment,
    CommentStatus,
    ModerationAction,
    ModerationEvent,
    Moderator,
    Page,
    Site,
    moderator_sites,
    utcnow,
)
from commentsvc.security import hash_token
from commentsvc.text import render_body

TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
#: What a bulk request may do (DESIGN §4); back to pending is a PATCH of one comment.
BULK_ACTIONS = tuple(
    action.value
    for action in (
        ModerationAction.APPROVE,
        ModerationAction.REJECT,
        ModerationAction.SPAM,
        ModerationAction.DELETE,
    )
)


@dataclass(frozen=True)
class CommentFilter:
    """What the moderation list is narrowed to."""

    status: CommentStatus | None = None
    site: str | None = None
    page: str | None = None
    q: str | None = None
    author_email: str | None = None


@dataclass(frozen=True)
class TokenHolder:
    """Whom an API token speaks for: a moderator, and the sites they may see (None: all)."""

    moderator_id: int
    scope: set[int] | None


_TOKEN_HOLDER = (
    sa.select(
        Moderator.id,
        Moderator.is_admin,
        Moderator.all_sites,
        ApiToken.id.label("token_id"),
        ApiToken.last_used_at,
    )
    .join(ApiToken, ApiToken.moderator_id == Moderator.id)
    .where(
        ApiToken.token_hash == sa.bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        Moderator.is_active.is_(True),
    )
)
_SITES_OF_MODERATOR = sa.select(moderator_sites.c.site_id).where(
    moderator_sites.c.moderator_id == sa.bindparam("moderator_id")
)
_TOUCH_TOKEN = (
    sa.update(ApiToken)
    .where(ApiToken.id == sa.bindparam("token_id"))
    .values(last_used_at=sa.bindparam("now"))
)


def authenticate_token(token: str) -> TokenHolder | None:
    """Whom a bearer token speaks for, if it is valid and its moderator active; else None.

    Core rows on a connection of their own (see :func:`read_connection`): every moderation
    API request asks, and most only read. A write loads the moderator itself.
    """
    with read_connection() as connection:
        row = connection.execute(_TOKEN_HOLDER, {"token_hash": hash_token(token)}).first()
        if row is None:
            return None
        scope = None
        if not (row.is_admin or row.all_sites):
            sites = connection.execute(_SITES_OF_MODERATOR, {"moderator_id": row.id})
            scope = set(sites.scalars())
    now = utcnow()
    # Record use at most once a minute, so reads do not each cost a write.
    if row.last_used_at is None or now - row.last_used_at > TOKEN_TOUCH_INTERVAL:
        with write_transaction():
            db.session.execute(_TOUCH_TOKEN, {"token_id": row.token_id, "now": now})
    return TokenHolder(row.id, scope)


def _in_scope(statement: sa.Select[Any], scope: set[int] | None) -> sa.Select[Any]:
    if scope is not None:
        statement = statement.where(Comment.site_id.in_(scope))
    return statement


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_comments(
    scope: set[int] | None, filters: CommentFilter, before_id: int | None, limit: int
) -> Sequence[Comment]:
    """Up to ``limit + 1`` comments in scope matching the filters, newest first, with their
    page, site, moderator and parent loaded (the panel shows them all)."""
    shape, parameters = _listing_parameters(scope, filters, before_id, limit)
    return db.session.scalars(_listing("objects", shape), parameters).unique().all()


#: What the moderation API shows of a listed comment, as flat columns.
MODERATION_COLUMNS = (
    *(column for column in Comment.__table__.columns if column.key != "site_id"),
    Site.slug.label("site_slug"),
    Page.key.label("page_key"),
    Page.url.label("page_url"),
    Page.title.label("page_title"),
    Moderator.email.label("moderated_by_email"),
)


def list_comment_rows(
    scope: set[int] | None, filters: CommentFilter, before_id: int | None, limit: int
) -> Sequence[sa.Row[Any]]:
    """Like :func:`list_comments`, as rows of :data:`MODERATION_COLUMNS`.

    The API's listing needs no ORM objects: at 50 comments a page, loading each with its
    page, site and moderator as objects cost more than the query itself.
    """
    shape, parameters = _listing_parameters(scope, filters, before_id, limit)
    with read_connection() as connection:  # one statement: no ORM, no transaction needed
        return connection.execute(_listing("rows", shape), parameters).all()


@functools.cache
def _listing(kind: Literal["objects", "rows"], shape: frozenset[str]) -> sa.Select[Any]:
    """A keyset page of comments, newest first, narrowed by the conditions named in
    ``shape``, whose values are parameters (see :func:`_listing_parameters`).

    Built once per kind and shape: building a statement costs more than running it.
    """
    if kind == "objects":
        statement = sa.select(Comment).options(
            joinedload(Comment.page),
            joinedload(Comment.site),
            joinedload(Comment.moderated_by),
            joinedload(Comment.parent),
        )
    else:
        statement = (
            sa.select(*MODERATION_COLUMNS)
            .join(Page, Page.id == Comment.page_id)
            .join(Site, Site.id == Comment.site_id)
            .outerjoin(Moderator, Moderator.id == Comment.moderated_by_id)
        )
    if "scope" in shape:
        statement = statement.where(Comment.site_id.in_(sa.bindparam("scope", expanding=True)))
    if "status" in shape:
        statement = statement.where(Comment.status == sa.bindparam("status"))
    if "before_id" in shape:
        statement = statement.where(Comment.id < sa.bindparam("before_id"))
    statement = _filtered(statement, shape)
    return statement.order_by(Comment.id.desc()).limit(sa.bindparam("limit"))


def _listing_parameters(
    scope: set[int] | None, filters: CommentFilter, before_id: int | None, limit: int
) -> tuple[frozenset[str], dict[str, Any]]:
    """The shape of a listing (see :func:`_listing`) and the values of its parameters."""
    parameters = _filter_parameters(filters)
    if scope is not None:
        parameters["scope"] = sorted(scope)
    if filters.status is not None:
        parameters["status"] = filters.status
    if before_id is not None:
        parameters["before_id"] = before_id
    shape = frozenset(parameters)
    parameters["limit"] = limit + 1
    return shape, parameters


def _filter_parameters(filters: CommentFilter) -> dict[str, Any]:
    """The parameters of :func:`_filtered` for these filters (status aside)."""
    parameters: dict[str, Any] = {}
    if filters.author_email is not None:
        parameters["author_email"] = filters.author_email
    if filters.site is not None:
        parameters["site"] = filters.site
    if filters.page is not None:
        parameters["page"] = filters.page
    if filters.q:
        parameters["pattern"] = f"%{_escape_like(filters.q)}%"
    return parameters


def _filtered(statement: sa.Select[Any], present: Container[str]) -> sa.Select[Any]:
    """Narrow a statement over comments by site, page, author and free text (not status),
    as far as ``present`` names their parameters (see :func:`_filter_parameters`)."""
    if "author_email" in present:
        statement = statement.where(Comment.author_email == sa.bindparam("author_email"))
    site_id = sa.select(Site.id).where(Site.slug == sa.bindparam("site")).scalar_subquery()
    if "site" in present:
        statement = statement.where(Comment.site_id == site_id)
    if "page" in present:
        pages = sa.select(Page.id).where(Page.key == sa.bindparam("page"))
        if "site" in present:
            pages = pages.where(Page.site_id == site_id)
        statement = statement.where(Comment.page_id.in_(pages))
    if "pattern" in present:
        pattern = sa.bindparam("pattern", type_=sa.String())
        statement = statement.where(
            sa.or_(
                Comment.body.ilike(pattern, escape="\\"),
                Comment.author_name.ilike(pattern, escape="\\"),
                Comment.author_email.ilike(pattern, escape="\\"),
            )
        )
    return statement


def _for_change(statement: sa.Select[Any]) -> sa.Select[Any]:
    """``statement`` reading comments in order to change them, in a write transaction.

    Their rows stay locked until the commit, so that concurrent changes of one comment wait
    for each other and each decides on what the one before it stored: PostgreSQL runs write
    transactions side by side (SQLite has one writer at a time, and ignores the lock).
    ``FOR NO KEY UPDATE`` leaves replies free to reference the comment meanwhile. What the
    session had loaded of the comments before is refreshed from the locked rows.
    """
    return statement.with_for_update(of=Comment, key_share=True).execution_options(
        populate_existing=True
    )


def get_comment(scope: set[int] | None, comment_id: int, *, for_change: bool = False) -> Comment:
    """One comment in scope; 404 (no existence leak) otherwise. ``for_change``: lock it
    until the write transaction commits (see :func:`_for_change`)."""
    statement = _in_scope(
        sa.select(Comment)
        .options(
            joinedload(Comment.page), joinedload(Comment.site), joinedload(Comment.moderated_by)
        )
        .where(Comment.id == comment_id),
        scope,
    )
    if for_change:
        statement = _for_change(statement)
    comment = db.session.scalar(statement)
    if comment is None:
        raise ApiError(404, f"There is no comment {comment_id}.", title="Not Found")
    return comment


def comment_events(comment_id: int) -> Sequence[ModerationEvent]:
    """The audit events of one comment, oldest first."""
    return db.session.scalars(
        sa.select(ModerationEvent)
        .where(ModerationEvent.comment_id == comment_id)
        .order_by(ModerationEvent.id)
    ).all()


class _Changes:
    """Collects what one transaction changed on each page, to update the counters once."""

    def __init__(self) -> None:
        self.approved_delta: Counter[int] = Counter()
        self.pages: set[int] = set()

    def record(
        self, page_id: int, before: CommentStatus | None, after: CommentStatus | None
    ) -> None:
        self.pages.add(page_id)
        delta = int(after == CommentStatus.APPROVED) - int(before == CommentStatus.APPROVED)
        self.approved_delta[page_id] += delta

    def flush(self) -> None:
        for page_id in sorted(self.pages):
            db.session.execute(
                sa.update(Page)
                .where(Page.id == page_id)
                .values(
                    approved_count=Page.approved_count + self.approved_delta[page_id],
                    version=Page.version + 1,
                )
            )


def _event(
    comment: Comment,
    moderator: Moderator | None,
    action: ModerationAction,
    to_status: CommentStatus | None,
    note: str | None,
    now: datetime,
) -> ModerationEvent:
    return ModerationEvent(
        comment_id=comment.id,
        site_id=comment.site_id,
        moderator_id=moderator.id if moderator else None,
        actor=moderator.email if moderator else "system",
        action=action,
        from_status=comment.status,
        to_status=to_status,
        note=note,
        created_at=now,
    )


def _set_status(
    comment: Comment,
    status: CommentStatus,
    moderator: Moderator | None,
    changes: _Changes,
    now: datetime,
    note: str | None = None,
) -> bool:
    if comment.status == status:
        return False
    db.session.add(_event(comment, moderator, STATUS_ACTION[status], status, note, now))
    changes.record(comment.page_id, comment.status, status)
    comment.status = status
    comment.moderated_at = now
    comment.moderated_by = moderator
    comment.updated_at = now
    return True


def _delete(
    comment: Comment, moderator: Moderator | None, changes: _Changes, now: datetime
) -> None:
    db.session.add(_event(comment, moderator, ModerationAction.DELETE, None, None, now))
    changes.record(comment.page_id, comment.status, None)
    # Replies keep existing; the foreign key turns their parent_id into NULL.
    db.session.execute(sa.delete(Comment).where(Comment.id == comment.id))


def update_comment(
    moderator: Moderator,
    comment_id: int,
    status: CommentStatus | None,
    body: str | None,
    note: str | None = None,
) -> Comment:
    """Change a comment's status and/or body, recording each change."""
    with write_transaction():
        comment = get_comment(moderator.site_scope(), comment_id, for_change=True)
        changes = _Changes()
        now = utcnow()
        if body is not None and body != comment.body:
            db.session.add(
                _event(comment, moderator, ModerationAction.EDIT, comment.status, note, now)
            )
            changes.record(comment.page_id, comment.status, comment.status)
            comment.body = body
            comment.body_html = render_body(body)
            comment.updated_at = now
        if status is not None:
            _set_status(comment, status, moderator, changes, now, note)
        changes.flush()
    return comment


def delete_comment(moderator: Moderator, comment_id: int) -> None:
    """Delete a comment; its audit events stay."""
    with write_transaction():
        comment = get_comment(moderator.site_scope(), comment_id, for_change=True)
        changes = _Changes()
        _delete(comment, moderator, changes, utcnow())
        changes.flush()


def bulk_moderate(
    moderator: Moderator, ids: Iterable[int], action: str
) -> dict[int, CommentStatus]:
    """Apply one action to many comments: all of them or, on any unknown id, none.

    Returns the status each changed comment had before (an approve of an approved comment
    changes nothing and is left out), which is what an undo restores.
    """
    if action not in BULK_ACTIONS:
        raise ValidationError({"action": [f"Must be one of: {', '.join(BULK_ACTIONS)}."]})
    wanted = list(dict.fromkeys(ids))
    maximum = current_app.config["MAX_BULK_IDS"]
    if len(wanted) > maximum:
        raise ValidationError({"ids": [f"At most {maximum} ids at once."]})
    # An id past the largest one is simply unknown (PostgreSQL would refuse it in a query).
    possible = [comment_id for comment_id in wanted if 0 < comment_id <= MAX_ID]
    with write_transaction():
        statement = _in_scope(
            sa.select(Comment).where(Comment.id.in_(possible)), moderator.site_scope()
        )
        # In id order, so that two bulk actions lock the rows they share in the same order.
        statement = _for_change(statement.order_by(Comment.id))
        comments = {comment.id: comment for comment in db.session.scalars(statement)}
        missing = [comment_id for comment_id in wanted if comment_id not in comments]
        if missing:
            raise ApiError(
                404,
                "Some comments do not exist; nothing was changed.",
                title="Not Found",
                errors={"ids": [f"Unknown comment ids: {', '.join(map(str, missing))}."]},
            )
        changes = _Changes()
        now = utcnow()
        previous: dict[int, CommentStatus] = {}
        for comment_id in wanted:
            comment = comments[comment_id]
            before = comment.status
            if action == ModerationAction.DELETE:
                _delete(comment, moderator, changes, now)
                previous[comment_id] = before
            elif _set_status(
                comment, ACTION_STATUS[ModerationAction(action)], moderator, changes, now
            ):
                previous[comment_id] = before
        changes.flush()
    return previous


def restore_statuses(
    moderator: Moderator, previous: dict[int, CommentStatus], expected: CommentStatus
) -> list[int]:
    """Undo a status change: put each comment back to its previous status.

    Only comments still at ``expected`` (the status the undone action gave them) are
    touched, so an undo never overwrites what somebody did since. Returns the ids restored.
    """
    restored: list[int] = []
    with write_transaction():
        statement = _in_scope(
            sa.select(Comment).where(Comment.id.in_(list(previous))), moderator.site_scope()
        )
        statement = _for_change(statement.order_by(Comment.id))
        changes = _Changes()
        now = utcnow()
        for comment in db.session.scalars(statement):
            if comment.status == expected and _set_status(
                comment, previous[comment.id], moderator, changes, now, note="undo"
            ):
                restored.append(comment.id)
        changes.flush()
    return sorted(restored)


def status_counts(scope: set[int] | None, filters: CommentFilter) -> dict[CommentStatus, int]:
    """How many comments in scope match the filters, per status (the queue's tabs)."""
    statement = sa.select(Comment.status, sa.func.count()).group_by(Comment.status)
    parameters = _filter_parameters(filters)
    statement = _filtered(_in_scope(statement, scope), parameters)
    counts = dict.fromkeys(CommentStatus, 0)
    rows = db.session.execute(statement, parameters).tuples()
    counts.update({status: count for status, count in rows})
    return counts


@dataclass(frozen=True)
class EventFilter:
    """What the audit log is narrowed to."""

    comment_id: int | None = None
    moderator: str | None = None
    site: str | None = None


def list_events(
    scope: set[int] | None, filters: EventFilter, before_id: int | None, limit: int
) -> Sequence[ModerationEvent]:
    """Up to ``limit + 1`` audit events in scope, newest first."""
    if filters.comment_id is not None and not 0 < filters.comment_id <= MAX_ID:
        return []  # no comment has such an id (PostgreSQL would refuse it in a query)
    statement = sa.select(ModerationEvent)
    if scope is not None:
        statement = statement.where(ModerationEvent.site_id.in_(scope))
    if filters.comment_id is not None:
        statement = statement.where(ModerationEvent.comment_id == filters.comment_id)
    if filters.moderator is not None:
        statement = statement.where(ModerationEvent.actor == filters.moderator.lower())
    if filters.site is not None:
        statement = statement.where(
            ModerationEvent.site_id
            == sa.select(Site.id).where(Site.slug == filters.site).scalar_subquery()
        )
    if before_id is not None:
        statement = statement.where(ModerationEvent.id < before_id)
    statement = statement.order_by(ModerationEvent.id.desc()).limit(limit + 1)
    return db.session.scalars(statement).all()

"""Submitting a comment: stored pending, with its page made on the first comment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from commentsvc.extensions import db, write_transaction
from commentsvc.models import Comment, CommentStatus, Page, utcnow
from commentsvc.services.errors import Closed, Invalid
from commentsvc.services.events import CommentEvent, EventType, announce
from commentsvc.services.sites import PublicSite
from commentsvc.text import render_body


@dataclass(frozen=True)
class Submission:
    """A validated comment submission."""

    page: str
    body: str
    author_name: str
    author_email: str
    author_url: str | None = None
    page_url: str | None = None
    page_title: str | None = None
    parent_id: int | None = None


@dataclass(frozen=True)
class ClientInfo:
    """What we keep about the submitting client: an anonymized IP prefix and user agent."""

    ip_prefix: str | None
    user_agent: str | None


@dataclass(frozen=True)
class StoredComment:
    """A comment just stored: exactly the values written, with its id and page key."""

    id: int
    page: str
    parent_id: int | None
    author_name: str
    author_url: str | None
    body: str
    body_html: str
    status: CommentStatus
    created_at: datetime


_PAGE_FOR_SUBMIT = sa.select(Page.id, Page.url, Page.title).where(
    Page.site_id == sa.bindparam("site_id"), Page.key == sa.bindparam("key")
)
_FILL_PAGE = (
    sa.update(Page)
    .where(Page.id == sa.bindparam("page_id"))
    .values(
        url=sa.func.coalesce(Page.url, sa.bindparam("url", type_=Page.url.type)),
        title=sa.func.coalesce(Page.title, sa.bindparam("title", type_=Page.title.type)),
    )
)
_APPROVED_PARENT = sa.select(Comment.id).where(
    Comment.id == sa.bindparam("parent_id"),
    Comment.page_id == sa.bindparam("page_id"),
    Comment.status == CommentStatus.APPROVED,
)
_INSERT_COMMENT = sa.insert(Comment).returning(Comment.id)


def _insert_page(connection: sa.Connection, site: PublicSite, submission: Submission) -> int | None:
    """Make the submission's page; None if another first comment made it meanwhile.

    The first comments on a page may arrive together (PostgreSQL; SQLite serializes
    writers): the loser's insert does nothing, and reads the winner's row instead.
    """
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    values = {
        "site_id": site.id,
        "key": submission.page,
        "url": submission.page_url,
        "title": submission.page_title,
    }
    return connection.execute(
        dialect_insert(Page)
        .values(values)
        .on_conflict_do_nothing(index_elements=[Page.site_id, Page.key])
        .returning(Page.id)
    ).scalar()


def _page_id(connection: sa.Connection, site: PublicSite, submission: Submission) -> int:
    """The id of the submission's page, made on its first comment; fills a missing URL or
    title from the submission."""
    parameters = {"site_id": site.id, "key": submission.page}
    page = connection.execute(_PAGE_FOR_SUBMIT, parameters).first()
    if page is None:
        created = _insert_page(connection, site, submission)
        if created is not None:
            return int(created)
        page = connection.execute(_PAGE_FOR_SUBMIT, parameters).one()
    if (page.url is None and submission.page_url) or (page.title is None and submission.page_title):
        connection.execute(
            _FILL_PAGE,
            {"page_id": page.id, "url": submission.page_url, "title": submission.page_title},
        )
    return int(page.id)


def _check_parent(connection: sa.Connection, parent_id: int | None, page_id: int) -> None:
    if parent_id is None:
        return
    parameters = {"parent_id": parent_id, "page_id": page_id}
    if connection.execute(_APPROVED_PARENT, parameters).first() is None:
        raise Invalid.on("parent_id", "Must be an approved comment on the same page.")


def submit_comment(site: PublicSite, submission: Submission, client: ClientInfo) -> StoredComment:
    """Store a new comment as pending; answers with exactly the row it inserted."""
    if not site.comments_open:
        raise Closed("Comments are closed on this site.")
    body_html = render_body(submission.body)
    now = utcnow()
    with write_transaction():
        # Core statements on the transaction's connection: a submission needs no ORM
        # objects, and the unit of work cost more than the rest of the request together.
        connection = db.session.connection()
        page_id = _page_id(connection, site, submission)
        _check_parent(connection, submission.parent_id, page_id)
        values = _comment_row(site.id, page_id, submission, client, body_html, now)
        comment_id = int(connection.execute(_INSERT_COMMENT, values).scalar_one())
        announce(
            CommentEvent(
                EventType.SUBMITTED, comment_id, site.id, page_id, CommentStatus.PENDING, None, now
            )
        )
    return StoredComment(
        id=comment_id,
        page=submission.page,
        parent_id=submission.parent_id,
        author_name=submission.author_name,
        author_url=submission.author_url,
        body=submission.body,
        body_html=body_html,
        status=CommentStatus.PENDING,
        created_at=now,
    )


def _comment_row(
    site_id: int,
    page_id: int,
    submission: Submission,
    client: ClientInfo,
    body_html: str,
    now: datetime,
) -> dict[str, Any]:
    """The values of a new comment's row: pending, created and updated ``now``."""
    return {
        "site_id": site_id,
        "page_id": page_id,
        "parent_id": submission.parent_id,
        "body": submission.body,
        "body_html": body_html,
        "author_name": submission.author_name,
        "author_email": submission.author_email,
        "author_url": submission.author_url,
        "status": CommentStatus.PENDING,
        "created_at": now,
        "updated_at": now,
        "ip_prefix": client.ip_prefix,
        "user_agent": client.user_agent,
    }

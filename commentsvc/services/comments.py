"""Public use cases: submitting a comment, reading a page's thread, counting comments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from cachetools import TTLCache
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from commentsvc.errors import ApiError, ValidationError
from commentsvc.extensions import db, read_connection, write_transaction
from commentsvc.models import Comment, CommentStatus, Page, Site, utcnow
from commentsvc.text import render_body

_SITE_CACHE = "commentsvc.sites"


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
class PublicSite:
    """What the public API needs of a site; cached for ``SITE_CACHE_SECONDS`` per worker."""

    id: int
    slug: str
    origins: tuple[str, ...]
    comments_open: bool


_SITE_BY_SLUG = sa.select(Site.id, Site.slug, Site.origins, Site.settings).where(
    Site.slug == sa.bindparam("slug")
)
_PAGE_STATE = sa.select(Page.id, Page.version, Page.approved_count).where(
    Page.site_id == sa.bindparam("site_id"), Page.key == sa.bindparam("key")
)


def _site_cache() -> TTLCache[str, PublicSite]:
    cache: TTLCache[str, PublicSite] | None = current_app.extensions.get(_SITE_CACHE)
    if cache is None:
        ttl = current_app.config["SITE_CACHE_SECONDS"]
        cache = current_app.extensions[_SITE_CACHE] = TTLCache(maxsize=1024, ttl=max(ttl, 0.001))
    return cache


def get_site(slug: str) -> PublicSite | None:
    """The site with this slug, or None.

    Every public request names its site, and sites change seldom: a site found is kept for
    ``SITE_CACHE_SECONDS`` (a change made through this process clears it at once; other
    workers see it within that time). Unknown slugs are not cached.
    """
    caching = current_app.config["SITE_CACHE_SECONDS"] > 0
    if caching and (cached := _site_cache().get(slug)) is not None:
        return cached
    with read_connection() as connection:
        row = connection.execute(_SITE_BY_SLUG, {"slug": slug}).first()
    if row is None:
        return None
    found = PublicSite(
        row.id, row.slug, tuple(row.origins or ()), Site.open_for_comments(row.settings)
    )
    if caching:
        _site_cache()[slug] = found
    return found


def forget_sites() -> None:
    """Drop this process's cached sites (after a site changed)."""
    if (cache := current_app.extensions.get(_SITE_CACHE)) is not None:
        cache.clear()


def page_state(site_id: int, key: str) -> sa.Row[tuple[int, int, int]] | None:
    """A page's id, thread version and approved count, or None if it has no comments."""
    with read_connection() as connection:
        return connection.execute(_PAGE_STATE, {"site_id": site_id, "key": key}).first()


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


def _page_id(connection: sa.Connection, site: PublicSite, submission: Submission) -> int:
    """The id of the submission's page, made on its first comment; fills a missing URL or
    title from the submission."""
    found = connection.execute(_PAGE_FOR_SUBMIT, {"site_id": site.id, "key": submission.page})
    page = found.first()
    if page is None:
        values = {
            "site_id": site.id,
            "key": submission.page,
            "url": submission.page_url,
            "title": submission.page_title,
        }
        # The first comments on a page may arrive together (PostgreSQL; SQLite serializes
        # writers): the loser's insert does nothing, and the winner's row is read instead.
        dialect_insert = (
            postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        )
        created = connection.execute(
            dialect_insert(Page)
            .values(values)
            .on_conflict_do_nothing(index_elements=[Page.site_id, Page.key])
            .returning(Page.id)
        ).scalar()
        if created is not None:
            return int(created)
        page = connection.execute(
            _PAGE_FOR_SUBMIT, {"site_id": site.id, "key": submission.page}
        ).one()
    if (page.url is None and submission.page_url) or (page.title is None and submission.page_title):
        connection.execute(
            _FILL_PAGE,
            {"page_id": page.id, "url": submission.page_url, "title": submission.page_title},
        )
    return int(page.id)


def submit_comment(site: PublicSite, submission: Submission, client: ClientInfo) -> StoredComment:
    """Store a new comment as pending; answers with exactly the row it inserted."""
    if not site.comments_open:
        raise ApiError(403, "Comments are closed on this site.", title="Comments closed")
    body_html = render_body(submission.body)
    now = utcnow()
    with write_transaction():
        # Core statements on the transaction's connection: a submission needs no ORM
        # objects, and the unit of work cost more than the rest of the request together.
        connection = db.session.connection()
        page_id = _page_id(connection, site, submission)
        if submission.parent_id is not None:
            parameters = {"parent_id": submission.parent_id, "page_id": page_id}
            if connection.execute(_APPROVED_PARENT, parameters).first() is None:
                raise ValidationError(
                    {"parent_id": ["Must be an approved comment on the same page."]}
                )
        comment_id = connection.execute(
            _INSERT_COMMENT,
            {
                "site_id": site.id,
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
            },
        ).scalar_one()
    return StoredComment(
        id=int(comment_id),
        page=submission.page,
        parent_id=submission.parent_id,
        author_name=submission.author_name,
        author_url=submission.author_url,
        body=submission.body,
        body_html=body_html,
        status=CommentStatus.PENDING,
        created_at=now,
    )


PUBLIC_COLUMNS = (
    Comment.id,
    Comment.parent_id,
    Comment.author_name,
    Comment.author_url,
    Comment.body,
    Comment.body_html,
    Comment.created_at,
)


#: Ids start at 1, so the first page is the one "after 0".
_THREAD = (
    sa.select(*PUBLIC_COLUMNS)
    .where(
        Comment.page_id == sa.bindparam("page_id"),
        Comment.status == CommentStatus.APPROVED,
        Comment.id > sa.bindparam("after_id"),
    )
    .order_by(Comment.id)
    .limit(sa.bindparam("limit"))
)
_COUNTS = sa.select(Page.key, Page.approved_count).where(
    Page.site_id == sa.bindparam("site_id"), Page.key.in_(sa.bindparam("keys", expanding=True))
)


def public_thread(
    site_id: int, key: str, after_id: int | None, limit: int
) -> tuple[sa.Row[tuple[int, int, int]] | None, Sequence[sa.Row[tuple]]]:
    """A page's state (see :func:`page_state`) and up to ``limit + 1`` approved comments
    after ``after_id``, oldest first, read together from one snapshot of the database."""
    page = db.session.execute(_PAGE_STATE, {"site_id": site_id, "key": key}).first()
    if page is None:
        return None, []
    parameters = {"page_id": page.id, "after_id": after_id or 0, "limit": limit + 1}
    return page, db.session.execute(_THREAD, parameters).all()


def public_comment(site_id: int, comment_id: int) -> sa.Row[tuple] | None:
    """One approved comment of a site, with its page key, or None."""
    statement = (
        sa.select(*PUBLIC_COLUMNS, Page.key)
        .join(Page, Page.id == Comment.page_id)
        .where(
            Comment.id == comment_id,
            Comment.site_id == site_id,
            Comment.status == CommentStatus.APPROVED,
        )
    )
    with read_connection() as connection:
        return connection.execute(statement).first()


def approved_counts(site_id: int, keys: Iterable[str]) -> dict[str, int]:
    """Approved comment counts of the given pages (0 for pages nobody commented on)."""
    keys = list(dict.fromkeys(keys))
    counts = dict.fromkeys(keys, 0)
    if keys:
        with read_connection() as connection:
            rows = connection.execute(_COUNTS, {"site_id": site_id, "keys": keys})
            counts.update({key: count for key, count in rows})
    return counts

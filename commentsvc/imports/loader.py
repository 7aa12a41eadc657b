"""Writing a source's records into a site (DESIGN §9), in one transaction.

- **Idempotent.** Each comment gets an :class:`~commentsvc.models.ImportRecord` (site,
  source, source id); one that has a record already is counted as "already there" and left
  alone. Nothing that exists is changed or deleted.
- **Parents in two passes.** Comments go in as they come, each record keeping the source
  id of its parent; once the whole file is in, one statement gives every new comment its
  parent from the records (parents of this run or of an earlier one). A reply whose parent
  is not there (skipped, never in the file, on another page) stays top-level and is
  counted as an orphan.
- **Memory flat.** Records are written in batches; only the site's pages (key → id) are
  kept.
- **Nothing else hears of it.** No outbox event, no moderator mail, no reply mail, no
  webhook: the comments are old news. A reply opt-in from the source is kept on the
  comment but is not active until its author confirms after a new approval (§8).
- **Text.** HTML is turned into plain text (:mod:`commentsvc.imports.text`) and rendered
  like any new comment; times come from the file, in UTC.
- **All or nothing.** A file that cannot be read stops the import with one line and the
  database as it was; ``dry_run`` does everything, then rolls it back.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from commentsvc.extensions import db, write_transaction
from commentsvc.imports.files import page_key
from commentsvc.imports.records import (
    Record,
    Skipped,
    SkipReason,
    SourceComment,
    SourcePage,
    SourceStatus,
)
from commentsvc.imports.text import site_text
from commentsvc.models import Comment, CommentStatus, ImportRecord, Page, Site, utcnow
from commentsvc.security import normalize_origin, origin_of_url
from commentsvc.services import pages as page_descriptions
from commentsvc.services.errors import NotFound
from commentsvc.text import render_body

#: Comments written per statement.
BATCH = 1000
_STATUS = {
    SourceStatus.APPROVED: CommentStatus.APPROVED,
    SourceStatus.PENDING: CommentStatus.PENDING,
    SourceStatus.SPAM: CommentStatus.SPAM,
}


#: The comments of one import before they go in (a temporary table of the import's
#: connection): sorted by time there, by the database, so memory stays flat.
_STAGING = sa.Table(
    "import_staging",
    sa.MetaData(),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.String(200), unique=True),
    sa.Column("parent_source_id", sa.String(200)),
    *(
        sa.Column(name, Comment.__table__.c[name].type)
        for name in (
            "site_id",
            "page_id",
            "parent_id",
            "body",
            "body_html",
            "author_name",
            "author_email",
            "author_url",
            "page_url",
            "page_title",
            "status",
            "created_at",
            "updated_at",
            "notify_replies",
        )
    ),
    sa.Index("ix_import_staging_time", "created_at", "seq"),
    prefixes=["TEMPORARY"],
)
_STAGING_ONLY = {"seq", "source_id", "parent_source_id"}


class _DryRun(Exception):
    """Raised at the end of a dry run to roll everything back."""


@dataclass
class Summary:
    """What an import did (or, dry, would do)."""

    statuses: Counter[CommentStatus] = field(default_factory=Counter)
    skipped: Counter[SkipReason] = field(default_factory=Counter)
    already_there: int = 0
    orphans: int = 0
    pages: set[str] = field(default_factory=set)

    @property
    def imported(self) -> int:
        return sum(self.statuses.values())

    def line(self) -> str:
        """The summary line of DESIGN §9."""
        counts = self.statuses
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        orphans = f"; {self.orphans} replies without their parent made top-level" * bool(
            self.orphans
        )
        return (
            f"imported {self.imported} comments ({counts[CommentStatus.APPROVED]} approved, "
            f"{counts[CommentStatus.PENDING]} pending, {counts[CommentStatus.SPAM]} spam) on "
            f"{len(self.pages)} pages; skipped {sum(self.skipped.values())}"
            + (f" ({reasons})" if reasons else "")
            + f"; {self.already_there} already there{orphans}"
        )


@dataclass(frozen=True)
class UrlMap:
    """``--map-url FROM=TO``: URLs starting with FROM are read as starting with TO."""

    prefix: str
    replacement: str

    @classmethod
    def parse(cls, value: str) -> UrlMap:
        source, equals, target = value.partition("=")
        if not equals or not source:
            raise ValueError(
                f"{value!r} is not FROM=TO (such as http://old.example=https://new.example)"
            )
        return cls(source, target)


def map_url(url: str | None, maps: Sequence[UrlMap]) -> str | None:
    if url is None:
        return None
    for rule in maps:
        if url.startswith(rule.prefix):
            return rule.replacement + url[len(rule.prefix) :]
    return url


class _Run:
    """One import into one site."""

    def __init__(self, site: Site, source: str, maps: Sequence[UrlMap]) -> None:
        self.site = site
        self.source = source
        self.maps = maps
        self.origins = {normalize_origin(origin) for origin in site.origins}
        self.run = secrets.token_hex(8)
        self.summary = Summary()
        self.page_ids: dict[str, int] = {}
        self.touched_pages: set[int] = set()
        self.batch: list[SourceComment] = []
        self.seq = 0

    def page(self, page: SourcePage) -> int:
        """The id of the site's page ``page`` names (made when new; never changed)."""
        key = self._key(page)
        found = self.page_ids.get(key)
        if found is None:
            found = db.session.scalar(
                sa.select(Page.id).where(Page.site_id == self.site.id, Page.key == key)
            )
            if found is None:
                found = int(
                    db.session.execute(
                        sa.insert(Page).returning(Page.id),
                        {"site_id": self.site.id, "key": key},
                    ).scalar_one()
                )
            self.page_ids[key] = found
        return found

    def _key(self, page: SourcePage) -> str:
        mapped = map_url(page.url, self.maps)
        if mapped and mapped != page.url:
            return page_key(mapped)
        return page.key

    def _on_site(self, url: str | None) -> str | None:
        """The page's URL as the comment keeps it: only when it is on the site's origins."""
        mapped = map_url(url, self.maps)
        if mapped and origin_of_url(mapped) in self.origins:
            return mapped
        return None

    def add(self, comment: SourceComment) -> None:
        self.batch.append(comment)
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Stage the batch: what has no record yet and is not staged already."""
        batch, self.batch = self.batch, []
        if not batch:
            return
        ids = [comment.source_id for comment in batch]
        known = set(
            db.session.scalars(
                sa.select(ImportRecord.source_id).where(
                    ImportRecord.site_id == self.site.id,
                    ImportRecord.source == self.source,
                    ImportRecord.source_id.in_(ids),
                )
            )
        )
        known.update(
            db.session.scalars(sa.select(_STAGING.c.source_id).where(_STAGING.c.source_id.in_(ids)))
        )
        fresh: dict[str, SourceComment] = {}
        for comment in batch:
            if comment.source_id in known or comment.source_id in fresh:
                self.summary.already_there += 1
            else:
                fresh[comment.source_id] = comment
        if not fresh:
            return
        rows = []
        for comment in fresh.values():
            row = self._row(comment)
            row["source_id"] = comment.source_id
            row["parent_source_id"] = comment.parent_source_id
            self.seq += 1
            row["seq"] = self.seq
            rows.append(row)
            self.summary.statuses[_STATUS[comment.status]] += 1
        db.session.execute(sa.insert(_STAGING), rows)

    def write(self) -> None:
        """Move the staged comments into the site, oldest first: a thread lists comments in
        id order, and a source does not promise to list them in time order."""
        now = utcnow()
        after: tuple[Any, int] | None = None
        columns = [column for column in _STAGING.c if column.name not in _STAGING_ONLY]
        while True:
            query = sa.select(_STAGING).order_by(_STAGING.c.created_at, _STAGING.c.seq)
            if after is not None:
                moment, seq = after
                query = query.where(
                    sa.or_(
                        _STAGING.c.created_at > moment,
                        sa.and_(_STAGING.c.created_at == moment, _STAGING.c.seq > seq),
                    )
                )
            chunk = db.session.execute(query.limit(BATCH)).mappings().all()
            if not chunk:
                return
            after = (chunk[-1]["created_at"], chunk[-1]["seq"])
            rows = [{column.name: row[column.name] for column in columns} for row in chunk]
            ids = db.session.execute(
                sa.insert(Comment).returning(Comment.id, sort_by_parameter_order=True), rows
            ).scalars()
            records = [
                {
                    "site_id": self.site.id,
                    "source": self.source,
                    "source_id": row["source_id"],
                    "parent_source_id": row["parent_source_id"],
                    "comment_id": comment_id,
                    "run": self.run,
                    "created_at": now,
                }
                for row, comment_id in zip(chunk, ids, strict=True)
            ]
            db.session.execute(sa.insert(ImportRecord), records)

    def _row(self, comment: SourceComment) -> dict[str, Any]:
        page_id = self.page(comment.page)
        self.touched_pages.add(page_id)
        self.summary.pages.add(self._key(comment.page))
        body = site_text(comment.body, comment.body_format)
        return {
            "site_id": self.site.id,
            "page_id": page_id,
            "parent_id": None,
            "body": body,
            "body_html": render_body(body),
            "author_name": _cut(comment.author_name.strip() or "Anonymous", 200),
            "author_email": _cut((comment.author_email or "").strip(), 320),
            "author_url": _web_url(comment.author_url),
            "page_url": _cut_or_none(self._on_site(comment.page.url), 2000),
            "page_title": _cut_or_none(comment.page.title, 300),
            "status": _STATUS[comment.status],
            "created_at": comment.created_at,
            "updated_at": comment.created_at,
            "notify_replies": comment.notify_replies,
        }

    def link_parents(self) -> None:
        """Give this run's comments their parents from the records (the second pass); count
        the replies whose parent is not there (or is on another page) as orphans."""
        child = aliased(ImportRecord)
        parent = aliased(ImportRecord)
        parent_comment = aliased(Comment)
        found = (
            sa.select(parent.comment_id)
            .join(parent_comment, parent_comment.id == parent.comment_id)
            .where(
                parent.site_id == child.site_id,
                parent.source == child.source,
                parent.source_id == child.parent_source_id,
                parent_comment.page_id == Comment.page_id,
            )
            .correlate(child, Comment)
            .scalar_subquery()
        )
        db.session.execute(
            sa.update(Comment)
            .where(
                Comment.id == child.comment_id,
                child.run == self.run,
                child.parent_source_id.is_not(None),
            )
            .values(parent_id=found)
            .execution_options(synchronize_session=False)
        )
        self.summary.orphans = int(
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(ImportRecord)
                .join(Comment, Comment.id == ImportRecord.comment_id)
                .where(
                    ImportRecord.run == self.run,
                    ImportRecord.parent_source_id.is_not(None),
                    Comment.parent_id.is_(None),
                )
            )
            or 0
        )

    def finish_pages(self) -> None:
        """The touched pages' approved counts, versions, URLs and titles, recomputed."""
        if not self.touched_pages:
            return
        ids = sorted(self.touched_pages)
        approved = (
            sa.select(sa.func.count())
            .where(Comment.page_id == Page.id, Comment.status == CommentStatus.APPROVED)
            .scalar_subquery()
        )
        db.session.execute(
            sa.update(Page)
            .where(Page.id.in_(ids))
            .values(approved_count=approved, version=Page.version + 1)
            .execution_options(synchronize_session=False)
        )
        db.session.execute(page_descriptions.DESCRIBE_PAGES, {"page_ids": ids})


def _cut(text: str, width: int) -> str:
    return text[:width]


def _cut_or_none(text: str | None, width: int) -> str | None:
    return text[:width] if text else None


def _web_url(url: str | None) -> str | None:
    """A website only when it is http(s) and fits its column."""
    url = (url or "").strip()
    if url.lower().startswith(("http://", "https://")) and len(url) <= 2000:
        return url
    return None


def import_records(
    slug: str,
    source: str,
    records: Iterable[Record],
    *,
    dry_run: bool = False,
    maps: Sequence[UrlMap] = (),
    progress: Callable[[Record], None] | None = None,
) -> Summary:
    """Import ``records`` of ``source`` into the site ``slug``; what was done."""
    site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
    if site is None:
        raise NotFound(f"There is no site {slug!r}.")
    run = _Run(site, source, maps)
    try:
        with write_transaction():
            _STAGING.create(db.session.connection())
            for record in records:
                if progress is not None:
                    progress(record)
                if isinstance(record, SourceComment):
                    run.add(record)
                elif isinstance(record, Skipped):
                    run.summary.skipped[record.reason] += 1
            run.flush()
            run.write()
            _STAGING.drop(db.session.connection())
            run.link_parents()
            run.finish_pages()
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return run.summary

"""Writing a source's records into a site (DESIGN §9), in one transaction.

- **Idempotent.** Each comment gets an :class:`~commentsvc.models.ImportRecord` (site,
  source, source id); one that has a record already is counted as "already there" and left
  alone. Nothing that exists is changed or deleted.
- **Oldest first.** Comments are staged in a temporary table as they come; once the whole
  file is read they are numbered in time order (ids taken as the database would give
  them, see :meth:`_Run.number`) and moved into the site by two ``INSERT … SELECT``
  statements, comments and records: a thread lists comments in id order, and a source
  does not promise to list them in time order.
- **Parents in two passes.** Each record keeps the source id of its comment's parent; once
  every comment is in, one statement gives every new comment its parent from the records
  (parents of this run or of an earlier one). A reply whose parent is not there (skipped,
  never in the file, on another page) stays top-level and is counted as an orphan.
- **Memory flat.** Records are staged in batches; only the site's pages (key → id) are
  kept.
- **Nothing else hears of it.** No outbox event, no moderator mail, no reply mail, no
  webhook: the comments are old news. A reply opt-in from the source is kept on the
  comment but is not active until its author confirms after a new approval (§8).
- **Text.** HTML is turned into plain text (:mod:`commentsvc.imports.text`) and rendered
  in the site's markup (read once per import), as a new comment with that text would be:
  on a Markdown site as Markdown, not escaped, so ``*really*`` is emphasis there and the
  export of a Markdown site reads back as it was written. Times come from the file, in UTC.
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
from commentsvc.markup import render
from commentsvc.models import Comment, CommentStatus, ImportRecord, Page, Site, utcnow
from commentsvc.security import normalize_origin, origin_of_url
from commentsvc.services import pages as page_descriptions
from commentsvc.services.errors import NotFound
from commentsvc.services.sites import markup_of

#: Comments staged per statement.
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
            "page_id",
            "body",
            "body_html",
            "author_name",
            "author_email",
            "author_url",
            "page_url",
            "page_title",
            "status",
            "created_at",
            "notify_replies",
        )
    ),
    prefixes=["TEMPORARY"],
)
_STAGING_ONLY = {"seq", "source_id", "parent_source_id"}
#: The staged comments' ids in the site, given in time order once all are staged (another
#: temporary table): the comments and their records are then moved by joining it.
_ORDER = sa.Table(
    "import_order",
    sa.MetaData(),
    sa.Column("comment_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)
#: Pages updated per statement, each id a parameter: PostgreSQL takes at most 65,535 in
#: one statement, SQLite 32,766 unless built with more.
PAGE_BATCH = 500


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


@dataclass(frozen=True, slots=True)
class _PageFields:
    """What every comment of one source page gets: the page's id and key, and the URL and
    title the comment keeps."""

    page_id: int
    key: str
    url: str | None
    title: str | None


class _Run:
    """One import into one site."""

    def __init__(self, site: Site, source: str, maps: Sequence[UrlMap]) -> None:
        self.site = site
        self.source = source
        self.maps = maps
        self.origins = {normalize_origin(origin) for origin in site.origins}
        self.markup = markup_of(site.settings)
        self.run = secrets.token_hex(8)
        self.summary = Summary()
        self.page_ids: dict[str, int] = {}
        self.touched_pages: set[int] = set()
        self.batch: list[SourceComment] = []
        self.seq = 0
        # A source lists a page's comments together: its fields are worked out once.
        self.last_page: tuple[SourcePage, _PageFields] | None = None

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

    def _page_fields(self, page: SourcePage) -> _PageFields:
        if self.last_page is not None and self.last_page[0] == page:
            return self.last_page[1]
        page_id = self.page(page)
        self.touched_pages.add(page_id)
        key = self._key(page)
        self.summary.pages.add(key)
        fields = _PageFields(
            page_id,
            key,
            _cut_or_none(self._on_site(page.url), 2000),
            _cut_or_none(page.title, 300),
        )
        self.last_page = (page, fields)
        return fields

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
        rows = []
        statuses = self.summary.statuses
        for comment in batch:
            if comment.source_id in known:
                self.summary.already_there += 1
                continue
            known.add(comment.source_id)  # the same id twice in one batch
            self.seq += 1
            rows.append(self._row(comment, self.seq))
            statuses[_STATUS[comment.status]] += 1
        if rows:
            db.session.execute(sa.insert(_STAGING), rows)

    def write(self) -> None:
        """Move the staged comments into the site, oldest first: number them in time order
        (:meth:`number`), then copy comments and records with one statement each."""
        if not self.seq:
            return
        self.number()
        staged = _ORDER.join(_STAGING, _STAGING.c.seq == _ORDER.c.seq)
        comment_of: dict[str, sa.ColumnElement[Any]] = {
            "id": _ORDER.c.comment_id,
            "site_id": sa.literal(self.site.id, sa.Integer),
            **{column.name: column for column in _STAGING.c if column.name not in _STAGING_ONLY},
            "updated_at": _STAGING.c.created_at,
        }
        db.session.execute(
            sa.insert(Comment).from_select(
                list(comment_of),
                sa.select(*comment_of.values()).select_from(staged).order_by(_ORDER.c.comment_id),
            )
        )
        record_of = {
            "site_id": sa.literal(self.site.id, sa.Integer),
            "source": sa.literal(self.source, ImportRecord.source.type),
            "source_id": _STAGING.c.source_id,
            "parent_source_id": _STAGING.c.parent_source_id,
            "comment_id": _ORDER.c.comment_id,
            "run": sa.literal(self.run, ImportRecord.run.type),
            "created_at": sa.literal(utcnow(), ImportRecord.created_at.type),
        }
        db.session.execute(
            sa.insert(ImportRecord).from_select(
                list(record_of),
                sa.select(*record_of.values()).select_from(staged).order_by(_ORDER.c.comment_id),
            )
        )

    def number(self) -> None:
        """Give each staged comment the id it will have, in time order (then staging order),
        in :data:`_ORDER`.

        On SQLite the ids are the ones after the largest, as SQLite itself would give them;
        the import's transaction holds the write lock, so nobody else can take them. On
        PostgreSQL they are taken from the table's sequence (other sessions may take values
        in between; like any insert, a rolled-back import leaves a gap), then sorted.

        Knowing the ids up front, nothing is read back: an ``INSERT … RETURNING`` with
        ``sort_by_parameter_order`` (SQLAlchemy 2.0's "insertmanyvalues") is batched on
        PostgreSQL, but on SQLite, whose RETURNING order is not promised, it falls back to
        one INSERT per row; and either way every row went through Python twice.
        """
        in_time_order = sa.func.row_number().over(order_by=(_STAGING.c.created_at, _STAGING.c.seq))
        ids: sa.Select[Any]
        if db.session.get_bind().dialect.name == "sqlite":
            largest = db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(Comment.id), 0)))
            ids = sa.select((in_time_order + largest).label("comment_id"), _STAGING.c.seq)
        else:
            sequence = sa.func.pg_get_serial_sequence(Comment.__tablename__, "id")
            taken = (
                sa.select(sa.func.nextval(sequence).label("id"))
                .select_from(sa.func.generate_series(1, self.seq).table_valued("n"))
                .cte("taken")
            )
            sorted_ids = sa.select(
                taken.c.id, sa.func.row_number().over(order_by=taken.c.id).label("n")
            ).subquery("sorted_ids")
            staged = sa.select(_STAGING.c.seq, in_time_order.label("n")).subquery("staged")
            ids = sa.select(sorted_ids.c.id, staged.c.seq).join_from(
                staged, sorted_ids, staged.c.n == sorted_ids.c.n
            )
        db.session.execute(sa.insert(_ORDER).from_select(["comment_id", "seq"], ids))

    def _row(self, comment: SourceComment, seq: int) -> dict[str, Any]:
        page = self._page_fields(comment.page)
        body = site_text(comment.body, comment.body_format)
        return {
            "seq": seq,
            "source_id": comment.source_id,
            "parent_source_id": comment.parent_source_id,
            "page_id": page.page_id,
            "body": body,
            "body_html": render(body, self.markup),
            "author_name": _cut(comment.author_name.strip() or "Anonymous", 200),
            "author_email": _cut((comment.author_email or "").strip(), 320),
            "author_url": _web_url(comment.author_url),
            "page_url": page.url,
            "page_title": page.title,
            "status": _STATUS[comment.status],
            "created_at": comment.created_at,
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
            # updated_at stays the file's time (the column's onupdate would make it now).
            .values(parent_id=found, updated_at=Comment.updated_at)
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
        ids = sorted(self.touched_pages)
        approved = (
            sa.select(sa.func.count())
            .where(Comment.page_id == Page.id, Comment.status == CommentStatus.APPROVED)
            .scalar_subquery()
        )
        for start in range(0, len(ids), PAGE_BATCH):
            chunk = ids[start : start + PAGE_BATCH]
            db.session.execute(
                sa.update(Page)
                .where(Page.id.in_(chunk))
                .values(approved_count=approved, version=Page.version + 1)
                .execution_options(synchronize_session=False)
            )
            db.session.execute(page_descriptions.DESCRIBE_PAGES, {"page_ids": chunk})


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
            _ORDER.create(db.session.connection())
            for record in records:
                if progress is not None:
                    progress(record)
                if isinstance(record, SourceComment):
                    run.add(record)
                elif isinstance(record, Skipped):
                    run.summary.skipped[record.reason] += 1
            run.flush()
            run.write()
            _ORDER.drop(db.session.connection())
            _STAGING.drop(db.session.connection())
            run.link_parents()
            run.finish_pages()
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return run.summary

"""The databases of the load benchmark (``benchmarks.load``): made like production, filled fast.

Each database gets the real schema from ``commentsvc db upgrade`` and its sites, moderator
and API token from the ``commentsvc`` CLI; the comments are then written in bulk, straight
into the tables (SQLite: ``executemany`` of 20,000 rows at a time; PostgreSQL: ``COPY``),
with the comments table's secondary indexes (and, on PostgreSQL, its foreign keys) dropped
during the load and created again from their own stored definitions afterwards. Every NOT
NULL column is filled, ids are explicit (PostgreSQL's sequences are moved past them), each
page's ``approved_count`` equals its approved comments and its ``version`` counts its
moderated ones, and replies point at an earlier approved comment of the same page. Audit
events are not seeded: no workload reads them.

``reads`` (about 109,000 comments, site ``bench``): a page of 100 approved comments (the
thread workloads), pages of 10, 1,000 and 100,000 (the scale workloads), 20 pages for the
counts workload and 200 articles with mixed statuses (2,000 pending: the queue workload),
the comments of all pages interleaved in time as on a real site. A second site, ``guarded``,
has no comments but a blocklist of 1,000 entries of every kind (:func:`blocklist_values`),
none of which matches the benchmark's own submissions: the submit workloads with every abuse
rule on post there, while the plain ``submit`` posts to ``bench``, which has no blocklist.

``queue`` (1,000,000 comments by default): 5 sites of 2,000 pages each, a few pages much
busier than the rest; 70% approved, 23% rejected, 5% spam and 2% pending, spread over the
whole history. Its busiest site, ``bench`` (about 207,000 comments), has the same blocklist of
1,000 entries as ``guarded``: the moderation queue workloads read this database, and so do
the ones that say whether counts and submissions stay flat as the data grows: the counts of
20 of ``bench``'s pages (:data:`QUEUE_COUNT_PAGES`, from its busiest to one of its quietest)
and submissions with every abuse rule on, to ``bench``. The issue's "scale with everything
on" also has 100,000 delivered outbox events; they are not seeded: a submission only appends
an event (its index holds the undispatched ones alone) and reads no delivery.

SQLite files are kept under ``benchmarks/.cache/`` keyed by the migration head (and by
:data:`SEED_FORMAT` and the number of rows), so a rerun copies them instead of seeding.
PostgreSQL databases are made for each run on the server of ``COMMENTSVC_TEST_DATABASE_URL``
as ``commentsvc_bench_<pid>_<name>`` and dropped at the end.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from commentsvc import PROJECT_ROOT
from commentsvc.models import BlocklistEntry, BlocklistKind, Comment, CommentStatus, Page
from commentsvc.services import blocklist
from commentsvc.text import render_body
from tests.support import service

SITE = "bench"
#: The site of the ``reads`` database whose blocklist is seeded, and its number of entries.
GUARDED_SITE = "guarded"
BLOCKLIST_ENTRIES = 1_000
QUEUE_SITES = (SITE, "news", "blog", "docs", "shop")
MODERATOR = service.Moderator("load@example.com", "load-benchmark-password")

THREAD_PAGE = "/thread/100"
SCALE_PAGES = {10: "/scale/10", 1_000: "/scale/1000", 100_000: "/scale/100000"}
COUNT_PAGES = tuple(f"/counts/{number:02d}" for number in range(1, 21))
QUEUE_PAGES_PER_SITE = 2_000
#: The ``queue`` database's site with the blocklist, and the counts workload's there: its
#: busiest (it has page 0, the busiest of all, and every fifth page after it).
QUEUE_GUARDED_SITE = SITE
#: 20 pages of that site for the counts workload, as an article list shows them: a few much
#: discussed, most not. Article numbers from 0, the site's busiest (about 10,000 comments of
#: 1,000,000), to the last, one of its quietest (about 50), spaced by the cube of their rank:
#: busier pages are fewer.
QUEUE_COUNT_PAGES = tuple(
    f"/article/{rank + round((QUEUE_PAGES_PER_SITE - 20) * (rank / 19) ** 3):04d}"
    for rank in range(20)
)

#: Bump when the seeded data changes, so that cached SQLite files are made again.
SEED_FORMAT = 6
SEED = 20251129
BATCH = 20_000
#: Comments that answer an earlier approved comment of their page.
REPLY_SHARE = 0.2
AUTHORS = 40_000
EPOCH = datetime(2025, 1, 1)
HISTORY = timedelta(days=365)
VOCABULARY = (
    "the article makes a good point about how we measure latency under load and why the "
    "median alone hides what readers feel when a page is slow so thanks for the numbers "
    "but I would like to see the same test on a busier machine with more data"
)
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
#: Status codes of a plan, in this order.
STATUSES = (
    CommentStatus.APPROVED,
    CommentStatus.PENDING,
    CommentStatus.REJECTED,
    CommentStatus.SPAM,
)
APPROVED, PENDING, REJECTED, SPAM = range(4)

COMMENT_COLUMNS = (
    "id",
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
    "moderated_at",
    "moderated_by_id",
    "ip_prefix",
    "user_agent",
    "spam_score",
    "spam_reasons",
    "client_hash",
    "idempotency_key",
    "notify_replies",
    "edit_token_hash",
)
PAGE_COLUMNS = ("id", "site_id", "key", "url", "title", "approved_count", "version", "created_at")
BLOCKLIST_COLUMNS = ("id", "site_id", "kind", "value", "created_by", "created_at")

TABLES = Comment.metadata.tables
CACHE_ROOT = Path(__file__).resolve().parent / ".cache"
PG_PREFIX = "commentsvc_bench_"

Log = Callable[[str], None]


class SetupError(RuntimeError):
    """The benchmark cannot prepare what it needs; the message says what to do."""


# --- the commentsvc CLI ----------------------------------------------------------------------


def create_accounts(env: Mapping[str, str], sites: Sequence[str]) -> str:
    """Schema, sites and a moderator of every site, all through the CLI; the API token."""
    token = service.create_accounts(
        env,
        {slug: f"https://{slug}.example" for slug in sites},
        [MODERATOR],
        token_for=MODERATOR.email,
        token_name="load",
    )
    assert token is not None
    return token


def migration_head() -> str:
    """The newest migration, which names the schema the cached files were made with."""
    head = ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_current_head()
    if head is None:
        raise SetupError("migrations/ has no head revision")
    return head


# --- what to seed ----------------------------------------------------------------------------


@dataclass
class Plan:
    """Sites, pages (site index, key) and, in id order, each comment's page index and status;
    the site whose blocklist is seeded, if any."""

    sites: tuple[str, ...]
    pages: list[tuple[int, str]]
    comment_pages: array[int]
    comment_statuses: bytes
    blocklist_site: str | None = None

    @property
    def comments(self) -> int:
        return len(self.comment_statuses)


def reads_plan() -> Plan:
    """The ``reads`` database: thread, scale, counts and queue pages of one site."""
    pages: list[tuple[int, str]] = []
    comments: list[tuple[int, int]] = []

    def add(key: str, **counts: int) -> None:
        index = len(pages)
        pages.append((0, key))
        for status, name in enumerate(("approved", "pending", "rejected", "spam")):
            comments.extend([(index, status)] * counts.get(name, 0))

    add(THREAD_PAGE, approved=100)
    for count, key in SCALE_PAGES.items():
        add(key, approved=count)
    for number, key in enumerate(COUNT_PAGES, start=1):
        add(key, approved=number, pending=1)
    for number in range(200):
        add(f"/article/{number:03d}", approved=20, pending=10, rejected=6, spam=4)
    # Comments of all pages arrive interleaved, as on a real site.
    random.Random(SEED).shuffle(comments)
    return Plan(
        sites=(SITE, GUARDED_SITE),
        pages=pages,
        comment_pages=array("I", (page for page, _ in comments)),
        comment_statuses=bytes(status for _, status in comments),
        blocklist_site=GUARDED_SITE,
    )


def queue_plan(rows: int) -> Plan:
    """The ``queue`` database: ``rows`` comments on the pages of five sites, the busiest
    with a blocklist."""
    sites = QUEUE_SITES
    pages = [
        (number % len(sites), f"/article/{number // len(sites):04d}")
        for number in range(QUEUE_PAGES_PER_SITE * len(sites))
    ]
    rng = random.Random(SEED)
    # Squaring a uniform number makes a few pages (of every site) much busier than the rest.
    comment_pages = array("I", (int(len(pages) * rng.random() ** 2) for _ in range(rows)))
    statuses = bytes(rng.choices(range(4), weights=(70, 2, 23, 5), k=rows))
    return Plan(sites, pages, comment_pages, statuses, blocklist_site=QUEUE_GUARDED_SITE)


def body_variants(rng: random.Random, count: int = 48) -> list[tuple[str, str]]:
    """Comment bodies of one to three paragraphs, some with a link, and their HTML."""
    words = VOCABULARY.split()
    variants = []
    for _ in range(count):
        paragraphs = []
        for _ in range(rng.randint(1, 3)):
            sentence = " ".join(rng.choices(words, k=rng.randint(8, 40)))
            paragraphs.append(sentence.capitalize() + ".")
        if rng.random() < 0.25:
            paragraphs.append(f"More at https://example.org/notes/{rng.randint(1, 999)}")
        body = "\n\n".join(paragraphs)
        variants.append((body, render_body(body)))
    return variants


def page_rows(plan: Plan, site_ids: Sequence[int]) -> Iterator[tuple[Any, ...]]:
    """Rows of the pages table, with counters that agree with the comments."""
    approved = [0] * len(plan.pages)
    moderated = [0] * len(plan.pages)
    for page, status in zip(plan.comment_pages, plan.comment_statuses, strict=True):
        approved[page] += status == APPROVED
        moderated[page] += status != PENDING
    for index, (site, key) in enumerate(plan.pages):
        url, title = page_description(plan, index)
        # Every moderation bumps the version (the thread's ETag) once.
        yield (
            index + 1,
            site_ids[site],
            key,
            url,
            title,
            approved[index],
            moderated[index],
            EPOCH,
        )


def page_description(plan: Plan, page: int) -> tuple[str, str]:
    """The URL and title every comment of a page was sent with, so the page's too."""
    site, key = plan.pages[page]
    return f"https://{plan.sites[site]}.example{key}", f"Article {key}"


def comment_rows(
    plan: Plan, site_ids: Sequence[int], moderator_id: int
) -> Iterator[tuple[Any, ...]]:
    """Rows of the comments table in id order, created evenly over a year."""
    rng = random.Random(SEED + 1)
    bodies = body_variants(rng)
    step = HISTORY / max(plan.comments, 1)
    last_approved: dict[int, int] = {}
    for index in range(plan.comments):
        comment_id = index + 1
        page = plan.comment_pages[index]
        status = plan.comment_statuses[index]
        created = EPOCH + step * comment_id
        parent = last_approved.get(page) if rng.random() < REPLY_SHARE else None
        body, html = bodies[comment_id % len(bodies)]
        author = comment_id * 7919 % AUTHORS
        author_url = f"https://reader{author}.example/" if author % 3 == 0 else None
        if status == PENDING:
            moderated_at, moderated_by, updated = None, None, created
        else:
            moderated_at = created + timedelta(minutes=5 + comment_id % 600)
            moderated_by, updated = moderator_id, moderated_at
        if status == APPROVED:
            last_approved[page] = comment_id
        yield (
            comment_id,
            site_ids[plan.pages[page][0]],
            page + 1,
            parent,
            body,
            html,
            f"Reader {author}",
            f"reader{author}@example.com",
            author_url,
            *page_description(plan, page),
            STATUSES[status].value,
            created,
            updated,
            moderated_at,
            moderated_by,
            "198.51.100.0",
            USER_AGENT,
            # Seeded statuses are moderators' decisions: no rule flagged them; seeded
            # comments count for no client's rate limit and carry no Idempotency-Key; their
            # authors asked for no reply mail, and their edit windows are long over.
            0.0,
            "",
            None,
            None,
            False,
            None,
        )


#: Spam vocabulary of the seeded word entries: terms alone, after a qualifier, and in phrases.
SPAM_TERMS = (
    "casino viagra cialis payday bitcoin forex replica escort lottery jackpot backlinks"
    " followers pharmacy roulette slots airdrop steroids diploma essays likes"
)
SPAM_QUALIFIERS = "cheap free discount instant guaranteed buy best bonus"


def blocklist_values() -> list[tuple[BlocklistKind, str]]:
    """1,000 blocklist entries of every kind, normalized as the service stores them: 200
    addresses, 100 ``@domain``, 250 domains (some ``www.``, some internationalized), 200 IPv4
    and IPv6 addresses and ranges of several prefix lengths, 250 words and phrases. None
    matches what ``benchmarks/lua/submit.lua`` sends from loopback."""
    raw: list[tuple[BlocklistKind, str]] = []
    raw += [(BlocklistKind.EMAIL, f"Seller.{n}@Bulk-Mail-{n % 40}.xyz") for n in range(200)]
    raw += [(BlocklistKind.EMAIL, f"@mailer-{n}.click") for n in range(100)]
    prefixes = ("", "www.", "shop.", "bücher-")
    raw += [(BlocklistKind.DOMAIN, f"{prefixes[n % 4]}cheap-deals-{n}.top") for n in range(250)]
    raw += [(BlocklistKind.IP, f"203.0.113.{n}") for n in range(60)]
    raw += [(BlocklistKind.IP, f"198.18.{n}.0/24") for n in range(50)]
    raw += [(BlocklistKind.IP, f"10.{n}.0.0/16") for n in range(20)]
    raw += [(BlocklistKind.IP, f"2001:db8::{n:x}") for n in range(30)]
    raw += [(BlocklistKind.IP, f"2001:db8:0:{n:x}::/64") for n in range(20)]
    raw += [(BlocklistKind.IP, f"2001:db8:{n + 1:x}::/48") for n in range(20)]
    terms = SPAM_TERMS.split()
    pairs = [f"{qualifier} {term}" for term in terms for qualifier in SPAM_QUALIFIERS.split()]
    phrases = [*terms, *pairs, *(f"{pair} online" for pair in pairs)]
    raw += [(BlocklistKind.WORD, phrase) for phrase in phrases[:250]]
    values = [(kind, blocklist.normalize_value(kind, value)) for kind, value in raw]
    if len(set(values)) != BLOCKLIST_ENTRIES:
        raise SetupError(f"{len(set(values))} distinct blocklist entries, not {BLOCKLIST_ENTRIES}")
    return values


def blocklist_rows(site_id: int) -> Iterator[tuple[Any, ...]]:
    """Rows of the blocklist_entries table: :func:`blocklist_values`, on one site."""
    for number, (kind, value) in enumerate(blocklist_values(), start=1):
        yield number, site_id, kind.value, value, "cli", EPOCH


def batches(rows: Iterable[tuple[Any, ...]], size: int = BATCH) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def check_columns() -> None:
    """Fail loudly when the schema has columns this seed does not fill (or no longer has)."""
    tables = (
        (Comment, COMMENT_COLUMNS),
        (Page, PAGE_COLUMNS),
        (BlocklistEntry, BLOCKLIST_COLUMNS),
    )
    for model, columns in tables:
        actual = set(model.__table__.columns.keys())
        if actual != set(columns):
            changed = sorted(actual ^ set(columns))
            raise SetupError(
                f"the {model.__tablename__} table changed (columns {changed}):"
                f" update {Path(__file__).name} and bump SEED_FORMAT"
            )


# --- writing it ------------------------------------------------------------------------------


def _secondary_indexes(connection: sa.Connection, table: str) -> list[tuple[str, str]]:
    """Name and creating statement of each index of ``table`` that no constraint owns."""
    if connection.dialect.name == "sqlite":
        query = (
            "SELECT name, sql FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL"
        )
    else:
        query = (
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema() AND tablename = :table AND indexname NOT IN"
            " (SELECT conname FROM pg_constraint WHERE conrelid = CAST(:table AS regclass))"
        )
    return [(name, ddl) for name, ddl in connection.execute(sa.text(query), {"table": table})]


def _foreign_keys(connection: sa.Connection, table: str) -> list[tuple[str, str]]:
    """Name and definition of each foreign key of ``table`` (PostgreSQL)."""
    query = (
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = CAST(:table AS regclass) AND contype = 'f'"
    )
    return [(name, ddl) for name, ddl in connection.execute(sa.text(query), {"table": table})]


def _write(
    connection: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
) -> int:
    """Insert ``rows`` (values in ``columns`` order) in bulk; the number of rows."""
    written = 0
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
        return written
    # SQLite: the values go through the columns' own bind processors, so dates are stored in
    # exactly the format the application writes and reads.
    dialect = connection.dialect
    processors = [
        (position, processor)
        for position, name in enumerate(columns)
        if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    for batch in batches(rows):
        converted = []
        for row in batch:
            values = list(row)
            for position, processor in processors:
                values[position] = processor(values[position])
            converted.append(tuple(values))
        connection.exec_driver_sql(statement, converted)
        written += len(batch)
    return written


def seed(url: str, plan: Plan, log: Log) -> None:
    """Write the plan's pages and comments into the migrated database at ``url``."""
    engine = sa.create_engine(url, poolclass=NullPool)
    started = time.monotonic()
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # The load happens once, into a file nobody else has open yet.
            connection.exec_driver_sql("PRAGMA synchronous = OFF")
            connection.exec_driver_sql("PRAGMA cache_size = -262144")
        else:
            # For this session only: index builds sort in memory.
            connection.exec_driver_sql("SET maintenance_work_mem = '256MB'")
        site_id: dict[str, int] = {
            slug: id_ for slug, id_ in connection.execute(sa.text("SELECT slug, id FROM sites"))
        }
        site_ids = [site_id[slug] for slug in plan.sites]
        moderator_id = connection.execute(
            sa.text("SELECT id FROM moderators WHERE email = :email"), {"email": MODERATOR.email}
        ).scalar_one()
        # The recipe of PostgreSQL's "Populating a Database": load without the secondary
        # indexes and foreign keys (checked row by row, they cost most of the load), then put
        # them back from their own definitions; each is then built or checked in one pass.
        indexes = _secondary_indexes(connection, "comments")
        for name, _ in indexes:
            connection.exec_driver_sql(f'DROP INDEX "{name}"')
        foreign_keys = []
        if connection.dialect.name == "postgresql":
            foreign_keys = _foreign_keys(connection, "comments")
            for name, _ in foreign_keys:
                connection.exec_driver_sql(f'ALTER TABLE comments DROP CONSTRAINT "{name}"')
        _write(connection, TABLES["pages"], PAGE_COLUMNS, page_rows(plan, site_ids))
        written = _write(
            connection,
            TABLES["comments"],
            COMMENT_COLUMNS,
            comment_rows(plan, site_ids, moderator_id),
        )
        entries = _seed_blocklist(connection, plan, site_id)
        loaded = time.monotonic()
        for _, ddl in indexes:
            connection.exec_driver_sql(ddl)
        for name, definition in foreign_keys:
            connection.exec_driver_sql(f'ALTER TABLE comments ADD CONSTRAINT "{name}" {definition}')
        move_sequences(connection, ("pages", "comments", "blocklist_entries"))
        connection.commit()
        _check_counters(connection)
    settle(engine, ("pages", "comments"))
    blocklisted = f" and {entries:,} blocklist entries" if entries else ""
    log(
        f"  seeded {written:,} comments on {len(plan.pages):,} pages{blocklisted} in"
        f" {time.monotonic() - started:.0f} s ({loaded - started:.0f} s rows,"
        f" {time.monotonic() - loaded:.0f} s indexes and checks)"
    )


def move_sequences(connection: sa.Connection, tables: Sequence[str]) -> None:
    """On PostgreSQL, move the id sequences of ``tables`` past the ids written explicitly, so
    that the service's own inserts continue after them (SQLite needs nothing)."""
    if connection.dialect.name == "postgresql":
        for table in tables:
            connection.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )


def settle(engine: sa.Engine, tables: Sequence[str]) -> None:
    """After a bulk load, and then let ``engine`` go. PostgreSQL: what autovacuum does after
    a large load on a production server (this test cluster runs with autovacuum off):
    statistics for the planner, a visibility map for index-only scans, for ``tables``.
    SQLite: the write-ahead log folded into the file (no ANALYZE, as in production)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"VACUUM ANALYZE {', '.join(tables)}")
    else:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def _seed_blocklist(connection: sa.Connection, plan: Plan, site_id: dict[str, int]) -> int:
    """The plan's blocklist, and its generation as the service bumps it on a change; the
    number of entries."""
    if plan.blocklist_site is None:
        return 0
    written = _write(
        connection,
        TABLES["blocklist_entries"],
        BLOCKLIST_COLUMNS,
        blocklist_rows(site_id[plan.blocklist_site]),
    )
    connection.execute(sa.insert(TABLES["generations"]).values(name=blocklist.GENERATION, value=1))
    return written


def _check_counters(connection: sa.Connection) -> None:
    wrong = connection.execute(
        sa.text(
            "SELECT count(*) FROM pages WHERE approved_count <> (SELECT count(*) FROM comments"
            " WHERE comments.page_id = pages.id AND comments.status = 'approved')"
        )
    ).scalar_one()
    if wrong:
        raise SetupError(f"{wrong} pages have an approved_count that disagrees with the comments")


# --- the databases of a run ------------------------------------------------------------------


@dataclass
class Databases:
    """The databases of one run, ready to serve."""

    dialect: str
    reads_url: str
    queue_url: str
    #: The moderator's API token in each database ("reads", "queue").
    tokens: dict[str, str]
    queue_rows: int
    notes: list[str] = field(default_factory=list)
    #: Server process ids serving a database (PostgreSQL backends), for CPU accounting.
    backend_pids: Callable[[str], set[int]] = field(default=lambda url: set())


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _build_sqlite(directory: Path, queue_rows: int, secret_key: str, log: Log) -> None:
    check_columns()
    tokens = {}
    for name, plan in (("reads", reads_plan()), ("queue", queue_plan(queue_rows))):
        log(f"seeding SQLite database {name} ({plan.comments:,} comments)…")
        url = _sqlite_url(directory / f"{name}.db")
        tokens[name] = create_accounts(
            service.service_env(url, secret_key, COMMENTSVC_LOG_LEVEL="WARNING"), plan.sites
        )
        seed(url, plan, log)
    meta = {"tokens": tokens, "head": migration_head()}
    (directory / "meta.json").write_text(json.dumps(meta))


@contextmanager
def sqlite_databases(
    work: Path, queue_rows: int, secret_key: str, log: Log, rebuild: bool = False
) -> Iterator[Databases]:
    """Copies, in ``work``, of the cached SQLite files (made first when missing)."""
    key = f"sqlite-{migration_head()}-seed{SEED_FORMAT}-{queue_rows}"
    cached = CACHE_ROOT / key
    if rebuild and cached.exists():
        shutil.rmtree(cached)
    notes = []
    if not cached.exists():
        CACHE_ROOT.mkdir(exist_ok=True)
        current = f"sqlite-{migration_head()}-seed{SEED_FORMAT}-"
        for stale in CACHE_ROOT.glob("sqlite-*"):
            if not stale.name.startswith(current):
                shutil.rmtree(stale)  # made for another schema or seed: never used again
        building = CACHE_ROOT / f"building-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir()
        started = time.monotonic()
        try:
            _build_sqlite(building, queue_rows, secret_key, log)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        building.rename(cached)
        notes.append(f"SQLite files seeded in {time.monotonic() - started:.0f} s (now cached)")
    else:
        notes.append(f"SQLite files from the cache ({cached.relative_to(PROJECT_ROOT)})")
    for name in ("reads", "queue"):
        shutil.copyfile(cached / f"{name}.db", work / f"{name}.db")
    meta = json.loads((cached / "meta.json").read_text())
    yield Databases(
        dialect="sqlite",
        reads_url=_sqlite_url(work / "reads.db"),
        queue_url=_sqlite_url(work / "queue.db"),
        tokens=meta["tokens"],
        queue_rows=queue_rows,
        notes=notes,
    )


@contextmanager
def postgres_databases(
    server_url: str, queue_rows: int, secret_key: str, log: Log
) -> Iterator[Databases]:
    """Databases ``commentsvc_bench_<pid>_*`` on the server, dropped at the end."""
    server = sa.make_url(server_url)
    if server.get_backend_name() != "postgresql":
        raise SetupError(f"COMMENTSVC_TEST_DATABASE_URL must name a PostgreSQL database: {server}")
    admin_engine = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        admin = admin_engine.connect()
    except sa.exc.OperationalError as error:
        raise SetupError(
            f"cannot connect to PostgreSQL at {server.render_as_string()}: {error.orig}\n"
            "start it with scripts/ensure-postgres.sh"
        ) from None
    _drop_stale(admin)
    made: list[str] = []

    def url_of(name: str) -> str:
        return server.set(database=name).render_as_string(hide_password=False)

    def backend_pids(url: str) -> set[int]:
        database = sa.make_url(url).database
        rows = admin.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :name"), {"name": database}
        )
        return {pid for (pid,) in rows}

    try:
        check_columns()
        tokens = {}
        started = time.monotonic()
        for name, plan in (("reads", reads_plan()), ("queue", queue_plan(queue_rows))):
            database = f"{PG_PREFIX}{os.getpid()}_{name}"
            admin.exec_driver_sql(f'CREATE DATABASE "{database}" TEMPLATE template0')
            made.append(database)
            log(f"seeding PostgreSQL database {database} ({plan.comments:,} comments)…")
            tokens[name] = create_accounts(
                service.service_env(url_of(database), secret_key, COMMENTSVC_LOG_LEVEL="WARNING"),
                plan.sites,
            )
            seed(url_of(database), plan, log)
        yield Databases(
            dialect="postgresql",
            reads_url=url_of(made[0]),
            queue_url=url_of(made[1]),
            tokens=tokens,
            queue_rows=queue_rows,
            notes=[f"PostgreSQL databases made and seeded in {time.monotonic() - started:.0f} s"],
            backend_pids=backend_pids,
        )
    finally:
        for database in made:
            admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()
        admin_engine.dispose()


def _drop_stale(admin: sa.Connection) -> None:
    """Drop benchmark databases of earlier runs whose process is gone (killed runs)."""
    names = admin.execute(
        sa.text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
        {"prefix": PG_PREFIX.replace("_", "\\_") + "%"},
    ).scalars()
    for name in list(names):
        match = re.fullmatch(rf"{PG_PREFIX}(\d+)_\w+", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_settings(url: str) -> dict[str, str]:
    """Server version and the settings that change what a benchmark measures."""
    engine = sa.create_engine(url, poolclass=NullPool)
    names = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "autovacuum")
    with engine.connect() as connection:
        settings = {
            name: str(connection.exec_driver_sql(f"SHOW {name}").scalar()) for name in names
        }
    engine.dispose()
    return settings

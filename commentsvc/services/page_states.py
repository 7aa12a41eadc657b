"""Pages' public state (id, version, approved count) as this worker last read it, kept for as
long as the database says nothing changed.

Every thread read, every 304 and every counts request needs the state of its pages: the
version is the thread's ETag, the approved count is the count. Reading it is one indexed
statement, but on the hot path that statement (a pooled connection, SQLAlchemy's execution
and its result) cost more than the rest of a 304 together.

On SQLite, ``PRAGMA data_version`` on a connection of its own answers whether any other
connection committed since it last asked: the other workers, this worker's own writes (made
on other connections), the CLI, a restore. SQLite answers it from the WAL index in shared
memory, without reading a page of the database. While it has not moved, the states read
before are the states now, exactly, in every worker: a change is seen by the first request
that starts after its commit, as without the cache. When it moves, every state is forgotten
and read again as needed. A site only moderating now and then keeps almost every read free;
each submission (a commit) costs every worker one read per page afterwards.

Other databases have no such question at that price (PostgreSQL's would be a round trip,
the price of the read itself): there every state is read per request.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from cachetools import LRUCache
from sqlalchemy.engine import Engine

from commentsvc.caching import worker_cache
from commentsvc.extensions import db, read_connection, sqlite_file
from commentsvc.models import Page

_CACHE = "page_states"
#: How many pages' states a worker keeps: far more than a site's pages read within the time
#: between two commits, at about 300 bytes each.
MAX_PAGES = 20_000
#: How many answers made of pages' states a worker keeps (a site's article lists).
MAX_ANSWERS = 1_000
_STATE = sa.select(Page.id, Page.version, Page.approved_count).where(
    Page.site_id == sa.bindparam("site_id"), Page.key == sa.bindparam("key")
)
_STATES = sa.select(Page.key, Page.id, Page.version, Page.approved_count).where(
    Page.site_id == sa.bindparam("site_id"), Page.key.in_(sa.bindparam("keys", expanding=True))
)


@dataclass(frozen=True, slots=True)
class PageState:
    """What readers see of a page changes exactly when its ``version`` does."""

    id: int
    version: int
    approved_count: int


AnswerT = TypeVar("AnswerT")
#: A page's state by site id and key; None: no such page (nobody commented on it).
StateKey = tuple[int, str]
Generation = tuple[int, int]


class SqliteChanges:
    """``PRAGMA data_version`` of a connection of its own to the database file, which never
    writes: it moves whenever anything committed since it last asked."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        #: Bumped when the connection is opened again: its counter starts anew.
        self._opened = 0

    def generation(self) -> Generation | None:
        """Equal to the last answer if and only if nothing committed in between; None when
        the database cannot tell (then nothing may be kept)."""
        try:
            if self._connection is None or self._pid != os.getpid():
                self._open()
            assert self._connection is not None
            row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            self.close()
            return None
        return (self._opened, int(row[0]))

    def _open(self) -> None:
        # mode=rw: never create a file where the database is not (it may be moving).
        uri = f"file:{self._path}?mode=rw"
        self._connection = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False
        )
        self._pid = os.getpid()
        self._opened += 1

    def close(self) -> None:
        """Close the connection (opened again when next asked), e.g. when the engine goes."""
        connection, self._connection = self._connection, None
        if connection is not None and self._pid == os.getpid():
            connection.close()


class PageStates:
    """This worker's pages' states, valid for one :meth:`Generation` of the database."""

    def __init__(self, changes: SqliteChanges | None) -> None:
        self._changes = changes
        self._lock = threading.Lock()
        self._generation: Generation | None = None
        self._states: LRUCache[StateKey, PageState | None] = LRUCache(MAX_PAGES)
        #: Answers made from pages' states (the counts of a list of pages), kept as long.
        self._answers: LRUCache[Hashable, Any] = LRUCache(MAX_ANSWERS)

    def valid_now(self) -> Generation | None:
        """Forget what a commit since the last call may have changed; the generation to
        read and keep states in, or None when nothing may be kept."""
        if self._changes is None:
            return None
        with self._lock:
            generation = self._changes.generation()
            if generation != self._generation:
                self._states.clear()
                self._answers.clear()
                self._generation = generation
            return generation

    def known(
        self, generation: Generation | None, keys: Iterable[StateKey]
    ) -> dict[StateKey, PageState | None]:
        """The states kept of ``keys`` (those not kept are left out)."""
        if generation is None:
            return {}
        with self._lock:
            if generation != self._generation:
                return {}
            states = self._states
            return {key: states[key] for key in keys if key in states}

    def keep(
        self, generation: Generation | None, found: Mapping[StateKey, PageState | None]
    ) -> None:
        """Keep states read after :meth:`valid_now` answered ``generation``, unless the
        database moved on meanwhile (they may be older than the commit that moved it)."""
        if generation is None:
            return
        with self._lock:
            if generation == self._generation:
                self._states.update(found)

    def answer(self, key: Hashable, make: Callable[[], AnswerT]) -> AnswerT:
        """What ``make()`` answers now (it reads pages' states), kept under ``key`` until
        the database changes."""
        generation = self.valid_now()
        if generation is not None:
            with self._lock:
                if generation == self._generation and key in self._answers:
                    kept: AnswerT = self._answers[key]
                    return kept
        made = make()
        if generation is not None:
            with self._lock:
                if generation == self._generation:
                    self._answers[key] = made
        return made

    def close(self) -> None:
        """Forget everything and close the connection that watches the database."""
        with self._lock:
            self._states.clear()
            self._answers.clear()
            self._generation = None
            if self._changes is not None:
                self._changes.close()


def _make(config: Mapping[str, Any]) -> PageStates:
    engine: Engine = db.engine
    path = sqlite_file(engine)
    states = PageStates(SqliteChanges(path) if path is not None else None)
    sa.event.listen(engine, "engine_disposed", lambda _engine: states.close())
    return states


def _page_states() -> PageStates:
    return worker_cache(_CACHE, _make)


def page_state(site_id: int, key: str) -> PageState | None:
    """The state of one page now, or None when there is no such page."""
    states = _page_states()
    generation = states.valid_now()
    kept = states.known(generation, ((site_id, key),))
    if kept:
        return kept[(site_id, key)]
    with read_connection() as connection:
        row = connection.execute(_STATE, {"site_id": site_id, "key": key}).first()
    state = PageState(row.id, row.version, row.approved_count) if row is not None else None
    states.keep(generation, {(site_id, key): state})
    return state


def page_states(site_id: int, keys: Iterable[str]) -> dict[str, PageState | None]:
    """The states of several pages now, by key (None for pages that do not exist)."""
    states = _page_states()
    generation = states.valid_now()
    wanted = list(dict.fromkeys(keys))
    kept = states.known(generation, ((site_id, key) for key in wanted))
    found: dict[str, PageState | None] = {key: state for (_, key), state in kept.items()}
    missing = [key for key in wanted if key not in found]
    if missing:
        read: dict[StateKey, PageState | None] = dict.fromkeys(
            ((site_id, key) for key in missing), None
        )
        with read_connection() as connection:
            rows = connection.execute(_STATES, {"site_id": site_id, "keys": missing})
            for row in rows:
                read[(site_id, row.key)] = PageState(row.id, row.version, row.approved_count)
        states.keep(generation, read)
        found.update({key: state for (_, key), state in read.items()})
    return {key: found[key] for key in wanted}


def kept_answer(key: Hashable, make: Callable[[], AnswerT]) -> AnswerT:
    """``make()``'s answer, made again only after the database changed (on SQLite; made
    each time elsewhere). ``make`` must depend on nothing but pages' states and ``key``."""
    return _page_states().answer(key, make)

"""Writers of one SQLite file take turns on a lock file (extensions.SqliteWriters): a waiter
gets the lock about as soon as it is free, not after SQLite's millisecond sleeps; a
process's lock is its own, even after a fork, and its threads take turns too; a lock
never held longer than the busy timeout keeps a writer waiting."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from commentsvc.extensions import SqliteWriters, db, sqlite_writers, write_transaction

HOLD = 0.05


def _hold(writers: SqliteWriters, held: threading.Event, released: list[float]) -> None:
    with writers.turn():
        held.set()
        time.sleep(HOLD)
        released.append(time.monotonic())


def _hold_in_child(path: str, held: Any, released: Any) -> None:
    writers = SqliteWriters(path, 5000)
    with writers.turn():
        held.set()
        time.sleep(HOLD)
        released.value = time.monotonic()


def _handover(
    waiter: SqliteWriters, holder: Any, held: Any, released: Callable[[], float]
) -> tuple[float, float]:
    """Start ``holder`` (a thread or a process); once it holds its turn, take one with
    ``waiter``: how long that waited, and how long after the holder let go it got in."""
    holder.start()
    assert held.wait(5)
    asked = time.monotonic()
    with waiter.turn():
        got = time.monotonic()
    holder.join(10)
    return got - asked, got - released()


def test_a_waiting_writer_gets_the_lock_as_soon_as_it_is_free(tmp_path: Path) -> None:
    path = str(tmp_path / "db.writers.lock")
    context = multiprocessing.get_context("fork")
    held, released = context.Event(), context.Value("d", 0.0)
    other_process = context.Process(target=_hold_in_child, args=(path, held, released))
    waited, late = _handover(
        SqliteWriters(path, 5000), other_process, held, lambda: float(released.value)
    )
    assert waited >= HOLD * 0.8  # it waited for the holder
    assert late < 0.004  # and took over within a few tries of 0.1 to 1 ms


def test_after_the_busy_timeout_a_writer_goes_on_without_the_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "db.writers.lock")
    first, second = SqliteWriters(path, 5000), SqliteWriters(path, 20)
    held, released = threading.Event(), list[float]()
    holder = threading.Thread(target=_hold, args=(first, held, released))
    holder.start()
    held.wait(5)
    asked = time.monotonic()
    with second.turn():  # SQLite's own busy handler takes over from here
        waited = time.monotonic() - asked
        assert not released  # the holder still has it
    holder.join()
    assert 0.015 <= waited < HOLD


def test_the_threads_of_one_process_take_turns_too(tmp_path: Path) -> None:
    """The outbox worker's finding: its sending threads share the process's open lock file,
    whose lock is the file's, not a thread's; all of them "held" it at once and met in
    SQLite's busy handler, sleeping whole milliseconds (45% of their time under load)."""
    writers = SqliteWriters(str(tmp_path / "db.writers.lock"), 5000)
    held, released = threading.Event(), list[float]()
    other_thread = threading.Thread(target=_hold, args=(writers, held, released))
    waited, late = _handover(writers, other_thread, held, lambda: released[0])
    assert waited >= HOLD * 0.8  # it waited for the other thread
    assert late < 0.004


def test_a_turn_taken_inside_a_turn_keeps_the_lock_until_the_outer_one_ends(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "db.writers.lock")
    writers = SqliteWriters(path, 5000)
    other = SqliteWriters(path, 5000)._descriptor()  # another process's open file
    assert other is not None
    with writers.turn():
        with writers.turn():
            pass
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _child_waits(writers: SqliteWriters, asking: Any, results: multiprocessing.Queue) -> None:
    asking.set()
    asked = time.monotonic()
    with writers.turn():
        results.put(time.monotonic() - asked)


def test_a_forked_child_takes_its_own_turn(tmp_path: Path) -> None:
    """After a fork the child shares its parent's open file, and would share its lock."""
    writers = SqliteWriters(str(tmp_path / "db.writers.lock"), 5000)
    context = multiprocessing.get_context("fork")
    asking, results = context.Event(), context.Queue()
    with writers.turn():
        child = context.Process(target=_child_waits, args=(writers, asking, results))
        child.start()
        # Held for HOLD from when the child asks: a busy machine may take a while to start it.
        assert asking.wait(5)
        time.sleep(HOLD)
    child.join(10)
    assert results.get(timeout=5) >= HOLD * 0.8


def test_without_a_writable_directory_writers_rely_on_sqlite_alone(tmp_path: Path) -> None:
    writers = SqliteWriters(str(tmp_path / "missing" / "db.writers.lock"), 5000)
    with writers.turn(), writers.turn():  # nothing held, nothing to wait for
        pass


def test_the_app_takes_turns_on_its_sqlite_file(app: Flask) -> None:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            assert sqlite_writers() is None
            return
        writers = sqlite_writers()
        assert writers is not None
        database = db.engine.url.database
        assert database is not None
        other = SqliteWriters(os.path.abspath(database) + ".writers.lock", 5000)
        descriptor = other._descriptor()
        assert descriptor is not None
        # While a write transaction runs, another process's writer waits for it.
        with write_transaction(), pytest.raises(BlockingIOError):
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with other.turn():
            pass  # and gets it once the transaction is over

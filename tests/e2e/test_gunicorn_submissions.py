"""Submissions over real HTTP to real gunicorn workers sharing one database (DESIGN §6: "One
machine: SQLite in WAL mode, several gunicorn workers, no lost writes"; more machines share
PostgreSQL: the run with ``COMMENTSVC_TEST_DATABASE_URL`` set checks it the same way)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
import requests

from tests.e2e.conftest import WORKERS, Server, Template, serve

pytestmark = pytest.mark.e2e

SUBMISSIONS = 200
THREADS = 16
PAGES = 7
TIMEOUT = 15
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

T = TypeVar("T")


@dataclass(frozen=True)
class Sent:
    """What one visitor submitted."""

    page: str
    body: str
    author_name: str
    author_email: str

    def json(self) -> dict[str, str]:
        return {
            "page": self.page,
            "body": self.body,
            "author_name": self.author_name,
            "author_email": self.author_email,
        }


def submission(n: int) -> Sent:
    """The ``n``-th visitor's comment: a distinct body, on one of a few pages."""
    return Sent(
        page=f"/e2e/article-{n % PAGES}",
        body=f"Comment number {n} — «{n * 7919}»\nsecond line of {n}",
        author_name=f"Visitor {n}",
        author_email=f"visitor.{n}@example.com",
    )


def submit(
    server: Server, sent: Sent, session: requests.Session | None = None
) -> requests.Response:
    return (session or requests).post(
        f"{server.base_url}/api/v1/sites/e2e/comments",
        json=sent.json(),
        headers={"Origin": server.base_url},
        timeout=TIMEOUT,
    )


@dataclass
class Tally:
    """What clients submitting from several threads were answered."""

    acknowledged: dict[int, Sent] = field(default_factory=dict)
    duplicate_ids: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    cut_off: list[str] = field(default_factory=list)
    numbers: Iterator[int] = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged_count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def submit_while(self, server: Server, going: Callable[[], bool]) -> None:
        """One client: submit back to back, each comment new, while ``going()``."""
        with requests.Session() as session:
            while going():
                with self.lock:
                    item = submission(next(self.numbers))
                try:
                    response = submit(server, item, session)
                except requests.RequestException as error:
                    # No answer (ConnectionError, ChunkedEncodingError): never acknowledged.
                    with self.lock:
                        self.cut_off.append(f"{item.author_name}: {error!r}")
                    continue
                with self.lock:
                    if response.status_code == 201:
                        comment_id = response.json()["id"]
                        if comment_id in self.acknowledged:
                            self.duplicate_ids.append(comment_id)
                        self.acknowledged[comment_id] = item
                    else:
                        self.refused.append((response.status_code, response.text[:300]))


def stored_comments(server: Server) -> list[dict[str, Any]]:
    """Every stored comment, whatever its status, through the moderation API's pages."""
    comments: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 200}
        if cursor is not None:
            params["cursor"] = cursor
        response = requests.get(
            f"{server.base_url}/api/v1/moderation/comments",
            params=params,
            headers=server.auth,
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        data = response.json()
        comments += data["comments"]
        cursor = data["next_cursor"]
        if cursor is None:
            return comments


def test_concurrent_submissions_are_all_stored_and_each_answers_with_its_own_row(
    server: Server,
) -> None:
    sent = [submission(n) for n in range(SUBMISSIONS)]

    def post(item: Sent) -> tuple[Sent, int, dict[str, Any], str | None]:
        response = submit(server, item)
        allowed_origin = response.headers.get("Access-Control-Allow-Origin")
        return item, response.status_code, response.json(), allowed_origin

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(post, sent))
    elapsed = time.perf_counter() - started
    workers = len(server.gunicorn.worker_pids())
    print(
        f"\n{SUBMISSIONS} submissions from {THREADS} threads to {workers} "
        f"gunicorn workers: {elapsed:.2f} s, {SUBMISSIONS / elapsed:.0f} req/s"
    )

    assert [status for _, status, _, _ in results] == [201] * SUBMISSIONS, results
    for item, _, answer, allowed_origin in results:
        # A submit answers with the row it inserted, never another visitor's.
        assert answer["body"] == item.body
        assert answer["page"] == item.page
        assert answer["author_name"] == item.author_name
        assert answer["status"] == "pending"
        assert "author_email" not in answer
        assert allowed_origin == server.base_url
    acknowledged = {answer["id"]: item for item, _, answer, _ in results}
    assert len(acknowledged) == SUBMISSIONS, "two submissions were answered with the same id"

    stored = stored_comments(server)
    stored_ids = [comment["id"] for comment in stored]
    assert len(stored_ids) == SUBMISSIONS
    assert len(set(stored_ids)) == SUBMISSIONS
    assert set(stored_ids) == set(acknowledged)
    for comment in stored:
        item = acknowledged[comment["id"]]
        assert comment["body"] == item.body
        assert comment["page"]["key"] == item.page
        assert comment["author_email"] == item.author_email
        assert comment["status"] == "pending"


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)
    return value


def test_acknowledged_submissions_survive_a_worker_killed_mid_stream(server: Server) -> None:
    streams = 4
    tally = Tally()
    stop = threading.Event()

    threads = [
        threading.Thread(target=tally.submit_while, args=(server, lambda: not stop.is_set()))
        for _ in range(streams)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: tally.acknowledged_count() >= 30, 10, "submissions before the kill")
        assert len(server.gunicorn.worker_pids()) == WORKERS
        # Kill a worker while it holds a client connection, so a request dies with it.
        victim = wait_for(server.gunicorn.busy_worker, 15, "a worker serving a request")
        os.kill(victim, signal.SIGKILL)
        acknowledged_at_kill = tally.acknowledged_count()
        # The service goes on answering: the other worker, then the master's replacement.
        wait_for(
            lambda: tally.acknowledged_count() >= acknowledged_at_kill + 60,
            15,
            "submissions after the kill",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=TIMEOUT)

    def replaced() -> bool:
        workers = server.gunicorn.worker_pids()
        return len(workers) == WORKERS and victim not in workers

    wait_for(replaced, 10, "gunicorn to replace the killed worker")
    print(
        f"\nkilled worker {victim}: {len(tally.acknowledged)} acknowledged, "
        f"{len(tally.cut_off)} requests cut off"
    )
    assert tally.refused == []
    assert tally.duplicate_ids == []
    # Only requests in flight on the killed worker can fail (a sync worker serves one).
    assert len(tally.cut_off) <= streams, tally.cut_off

    stored = {comment["id"]: comment for comment in stored_comments(server)}
    assert set(tally.acknowledged) <= set(stored), "an acknowledged comment was lost"
    for comment_id, item in tally.acknowledged.items():
        assert stored[comment_id]["body"] == item.body
    # An unacknowledged request may or may not have committed before its worker died,
    # but nothing is stored that nobody sent, and nothing twice.
    attempts = len(tally.acknowledged) + len(tally.cut_off)
    assert len(stored) <= attempts
    assert len({comment["body"] for comment in stored.values()}) == len(stored)


SUSTAINED_CLIENTS = 16
SUSTAINED_WORKERS = 4
SUSTAINED_SECONDS = 20.0


@pytest.fixture
def four_workers(template: Template, tmp_path: Path) -> Iterator[Server]:
    with serve(template, tmp_path, workers=SUSTAINED_WORKERS) as running:
        yield running


def test_sustained_submissions_from_16_clients_to_4_workers_are_all_stored(
    four_workers: Server,
) -> None:
    """Every client submits back to back for 20 s: every answer is a 201, every comment
    acknowledged is stored once as sent, and nothing else is stored."""
    server = four_workers
    tally = Tally()
    deadline = time.monotonic() + SUSTAINED_SECONDS
    started = time.perf_counter()
    threads = [
        threading.Thread(
            target=tally.submit_while, args=(server, lambda: time.monotonic() < deadline)
        )
        for _ in range(SUSTAINED_CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SUSTAINED_SECONDS + 2 * TIMEOUT)
    elapsed = time.perf_counter() - started
    assert not any(thread.is_alive() for thread in threads)
    acknowledged = tally.acknowledged
    workers = len(server.gunicorn.worker_pids())
    print(
        f"\n{SUSTAINED_CLIENTS} clients, {workers} workers, {elapsed:.1f} s: "
        f"{len(acknowledged)} acknowledged ({len(acknowledged) / elapsed:.0f} req/s)"
    )
    assert tally.refused == []
    assert tally.cut_off == []
    assert tally.duplicate_ids == []
    sent_count = next(tally.numbers)  # numbers drawn so far: each was sent
    assert len(acknowledged) == sent_count
    assert sent_count >= SUSTAINED_SECONDS * 10  # it was load, not a trickle

    stored = stored_comments(server)
    stored_ids = [comment["id"] for comment in stored]
    assert len(stored_ids) == len(set(stored_ids)), "a comment is stored twice"
    assert set(stored_ids) == set(acknowledged)
    for comment in stored:
        item = acknowledged[comment["id"]]
        assert (comment["body"], comment["page"]["key"], comment["author_email"]) == (
            item.body,
            item.page,
            item.author_email,
        )


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """``data`` as an iterator, which requests sends with ``Transfer-Encoding: chunked``."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_chunked_body_over_the_limit_is_refused_with_413(server: Server) -> None:
    url = f"{server.base_url}/api/v1/sites/e2e/comments"
    small = requests.post(
        url,
        data=chunks(json.dumps(submission(0).json()).encode()),
        headers={"Content-Type": JSON},
        timeout=TIMEOUT,
    )
    assert small.status_code == 201, small.text

    padding = "x" * 2 * 1024 * 1024
    oversized = {
        JSON: json.dumps({**submission(1).json(), "body": padding}).encode(),
        # Everything valid first: a body cut at the limit would still parse and be stored.
        FORM: urlencode({**submission(2).json(), "padding": padding}).encode(),
    }
    answers = {
        content_type: requests.post(
            url, data=chunks(body), headers={"Content-Type": content_type}, timeout=TIMEOUT
        )
        for content_type, body in oversized.items()
    }

    assert {kind: answer.status_code for kind, answer in answers.items()} == {JSON: 413, FORM: 413}
    for answer in answers.values():
        assert answer.headers["Content-Type"] == "application/problem+json"
    assert [comment["id"] for comment in stored_comments(server)] == [small.json()["id"]]

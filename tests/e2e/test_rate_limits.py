"""Submission rate limits over real HTTP to real gunicorn workers (DESIGN §7): they hold
across the workers of one instance and across instances sharing a database or a Redis,
``X-Forwarded-For`` counts only through trusted proxies, a Redis that goes away is answered
as configured (never a 500), and a malformed limit or storage URL stops the service at start.

Each test is its own client: it connects from its own loopback address (127.0.0.0/8 is all
this machine's), so the tests share one database and its gunicorns without sharing counters.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from tests.e2e.conftest import GRACEFUL_TIMEOUT, Server, Template, serve
from tests.e2e.test_gunicorn_submissions import wait_for
from tests.support.redis import RedisServer, quick_options
from tests.support.server import LOOPBACK, GunicornServer, connection_owners_by_peer
from tests.support.service import commentsvc_script, service_env

pytestmark = pytest.mark.e2e

LIMIT = 3
WORKERS = 4
TIMEOUT = 15
SUBMISSIONS = "/api/v1/sites/e2e/comments"
PROBLEM_JSON = "application/problem+json"
LIMITED = {
    "COMMENTSVC_RATELIMIT_ENABLED": "true",
    "COMMENTSVC_SUBMIT_RATE_LIMIT": f"{LIMIT}/minute",
}


@pytest.fixture(scope="module")
def limited(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """4 workers, limits counted in the run's database, no proxy trusted."""
    tmp_path = tmp_path_factory.mktemp("limited")
    with serve(template, tmp_path, workers=WORKERS, **LIMITED) as running:
        yield running


@contextmanager
def another_gunicorn(server: Server, log: Path, **variables: str) -> Iterator[Server]:
    """Another instance on ``server``'s database: its own gunicorn on its own port, with
    ``variables`` added to its settings."""
    gunicorn = GunicornServer(
        {**server.gunicorn.env, **variables}, log, graceful_timeout=GRACEFUL_TIMEOUT
    )
    with gunicorn:
        gunicorn.wait_every_worker()
        yield Server(gunicorn, server.token)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, however it was fetched."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def of(cls, response: requests.Response) -> Answer:
        return cls(response.status_code, response.headers, response.content)

    def json(self) -> Any:
        return json.loads(self.body)


def comment(page: str, n: int) -> dict[str, str]:
    """The ``n``-th comment of a test on its ``page``: a body of its own (the same body
    twice would be a duplicate, 409)."""
    return {
        "page": page,
        "body": f"Comment {n} on {page}",
        "author_name": "Rate Tester",
        "author_email": "rate.tester@example.com",
    }


class FromAddress(HTTPAdapter):
    """Connections from one local address: the server sees another client."""

    def __init__(self, address: str) -> None:
        self.address = address  # before super().__init__, which makes the pool
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


@contextmanager
def client_at(address: str) -> Iterator[requests.Session]:
    """A client on loopback ``address`` (not 127.0.0.1: one of its own)."""
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: the server is on loopback
        session.mount("http://", FromAddress(address))
        yield session


def submit(
    session: requests.Session,
    server: Server,
    page: str,
    n: int,
    forwarded_for: str | None = None,
) -> Answer:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    response = session.post(
        server.base_url + SUBMISSIONS, json=comment(page, n), headers=headers, timeout=TIMEOUT
    )
    return Answer.of(response)


def assert_problem(answer: Answer, status: int) -> None:
    """``answer`` is a problem+json of ``status`` with a ``Retry-After`` in whole seconds,
    at most a window of the limit away."""
    assert answer.status == status, answer
    assert answer.headers["Content-Type"] == PROBLEM_JSON, answer
    problem = answer.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    retry_after = answer.headers.get("Retry-After", "")
    assert re.fullmatch(r"[0-9]+", retry_after), answer
    assert 1 <= int(retry_after) <= 60, answer


def created_ids(answers: list[Answer]) -> set[int]:
    return {answer.json()["id"] for answer in answers if answer.status == 201}


# --- Across the workers of one instance ---------------------------------------------------


def held_requests(
    server: Server, address: str, bodies: list[bytes]
) -> tuple[list[int], list[Answer]]:
    """Submit ``bodies`` at once, spread over every worker, each on its own connection from
    ``address``; the pids of the workers that took them, and the answers in order.

    Requests are sent but for their last line, so the workers hold them. A worker takes any
    number of connections, and an idle one tends to take every new one: once a worker holds
    its share it is paused (SIGSTOP) so that the next connections go to another; all are
    resumed, then every request is finished at once.
    """
    port = server.gunicorn.port
    workers = server.gunicorn.worker_pids()
    share = -(-len(bodies) // len(workers))
    head = (
        f"POST {SUBMISSIONS} HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: application/json\r\n"
    ).encode()
    held: list[tuple[socket.socket, int]] = []
    paused: list[int] = []
    try:
        for _ in bodies:
            connection = socket.create_connection(
                (LOOPBACK, port), timeout=TIMEOUT, source_address=(address, 0)
            )
            connection.sendall(head)
            local = connection.getsockname()[1]
            worker = wait_for(
                lambda: connection_owners_by_peer(port).get(local),  # noqa: B023
                TIMEOUT,
                "a worker to take the connection",
            )
            held.append((connection, worker))
            if sum(owner == worker for _, owner in held) == share and len(paused) + 1 < len(
                workers
            ):
                os.kill(worker, signal.SIGSTOP)
                paused.append(worker)
        for worker in paused:
            os.kill(worker, signal.SIGCONT)
        paused.clear()
        for (connection, _), body in zip(held, bodies, strict=True):
            connection.sendall(
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )
        answers = []
        for connection, _ in held:
            response = http.client.HTTPResponse(connection)
            response.begin()
            headers = CaseInsensitiveDict(response.getheaders())
            answers.append(Answer(response.status, headers, response.read()))
        return [worker for _, worker in held], answers
    finally:
        for worker in paused:
            os.kill(worker, signal.SIGCONT)
        for connection, _ in held:
            connection.close()


def test_the_limit_holds_across_the_workers_of_one_instance(limited: Server) -> None:
    page = "/limits/workers"
    bodies = [json.dumps(comment(page, n)).encode() for n in range(10)]

    serving, answers = held_requests(limited, "127.0.0.11", bodies)

    assert len(set(serving)) == WORKERS  # each worker took one of them
    statuses = sorted(answer.status for answer in answers)
    assert statuses == [201] * LIMIT + [429] * (len(bodies) - LIMIT), answers
    for answer in answers:
        if answer.status == 429:
            assert_problem(answer, 429)
    stored = limited.comments_on(page)
    assert set(stored) == created_ids(answers)
    assert len(stored) == LIMIT


# --- Across instances sharing a Redis ------------------------------------------------------


def test_the_limit_holds_across_two_instances_sharing_a_redis(
    limited: Server, tmp_path: Path, redis_url: str
) -> None:
    page = "/limits/replicas"
    address = "127.0.0.12"
    in_redis = {"COMMENTSVC_RATELIMIT_STORAGE_URI": redis_url}
    with (
        another_gunicorn(limited, tmp_path / "first.log", **in_redis) as first,
        another_gunicorn(limited, tmp_path / "second.log", **in_redis) as second,
        client_at(address) as session,
    ):
        assert first.base_url != second.base_url
        answers = [submit(session, (first, second)[n % 2], page, n) for n in range(10)]

    # Two by the first instance and one by the second, then neither takes more.
    assert [answer.status for answer in answers] == [201] * LIMIT + [429] * 7, answers
    for answer in answers[LIMIT:]:
        assert_problem(answer, 429)
    stored = limited.comments_on(page)
    assert set(stored) == created_ids(answers)
    assert len(stored) == LIMIT
    with redis.Redis.from_url(redis_url, **quick_options()) as client:
        counters = [key.decode() for key in client.keys("*") if "/submit/" in key.decode()]
        assert counters, client.keys("*")
        assert all(int(client.get(key) or 0) >= LIMIT for key in counters)
        # Redis learns a keyed hash of the client, never its address.
        assert not any(address in key for key in counters)


# --- X-Forwarded-For -------------------------------------------------------------------------


def test_a_client_cannot_escape_the_limit_by_sending_x_forwarded_for(limited: Server) -> None:
    page = "/limits/spoofed"
    with client_at("127.0.0.13") as session:
        answers = [
            submit(session, limited, page, n, forwarded_for=f"203.0.113.{n + 1}") for n in range(10)
        ]

    assert [answer.status for answer in answers] == [201] * LIMIT + [429] * 7, answers
    assert len(limited.comments_on(page)) == LIMIT


def test_behind_a_trusted_proxy_clients_are_limited_by_the_address_it_saw(
    limited: Server, tmp_path: Path
) -> None:
    """The proxy (127.0.0.14, one hop) appends the address it saw; whatever a client sent
    before that is the client's own, and does not count."""
    page = "/limits/proxied"
    first, second = "198.51.100.7", "198.51.100.8"
    with (
        another_gunicorn(
            limited, tmp_path / "gunicorn.log", COMMENTSVC_TRUSTED_PROXIES="1"
        ) as proxied,
        client_at("127.0.0.14") as proxy,
    ):
        numbers = iter(range(100))

        def send(forwarded_for: str) -> int:
            return submit(proxy, proxied, page, next(numbers), forwarded_for).status

        assert [send(first) for _ in range(LIMIT)] == [201] * LIMIT
        # Another client through the same proxy has a limit of its own.
        assert [send(second) for _ in range(LIMIT)] == [201] * LIMIT
        # Spoofed entries before the proxy's own do not make the first client a new one.
        rotated = [send(f"203.0.113.{n}, 10.{n}.0.1, {first}") for n in range(1, 4)]
        assert rotated == [429] * 3
        assert send(second) == 429

    assert len(limited.comments_on(page)) == 2 * LIMIT


# --- Redis going away --------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One submission of the load: when it was sent and answered, and the answer."""

    started: float
    finished: float
    answer: Answer | None
    error: str = ""


@dataclass
class Load:
    """One client submitting back to back from its own address, recording every exchange;
    :meth:`paused` holds it for a while."""

    server: Server
    address: str
    page: str
    exchanges: list[Exchange] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    going: threading.Event = field(default_factory=threading.Event)
    sending: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.going.set()

    def run(self) -> None:
        with client_at(self.address) as session:
            n = 0
            while not self.stopping.is_set():
                self.going.wait()
                with self.sending:
                    started = time.monotonic()
                    try:
                        answer: Answer | None = submit(session, self.server, self.page, n)
                        error = ""
                    except requests.RequestException as failure:
                        answer, error = None, repr(failure)
                    with self.lock:
                        self.exchanges.append(Exchange(started, time.monotonic(), answer, error))
                n += 1

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No submission is under way inside the block: the one being sent is answered
        first, and the next is sent after it."""
        self.going.clear()
        try:
            with self.sending:
                yield
        finally:
            self.going.set()

    def between(self, start: float, end: float = float("inf")) -> list[Exchange]:
        """The exchanges sent after ``start`` and answered before ``end``."""
        with self.lock:
            return [e for e in self.exchanges if e.started > start and e.finished < end]

    def statuses(self, exchanges: list[Exchange]) -> list[int | None]:
        return [e.answer.status if e.answer else None for e in exchanges]

    def when(self, condition: Callable[[list[Exchange]], bool], what: str) -> None:
        def met() -> bool:
            with self.lock:
                return condition(list(self.exchanges))

        wait_for(met, TIMEOUT, what)


def storage_errors(server: Server) -> float:
    """``commentsvc_rate_limit_storage_errors_total`` of ``server``, from ``/metrics``."""
    text = requests.get(server.base_url + "/metrics", timeout=TIMEOUT).text
    match = re.search(r"^commentsvc_rate_limit_storage_errors_total (\S+)$", text, re.MULTILINE)
    assert match, text
    return float(match.group(1))


#: Answers, while Redis is down, before it is started again.
OUTAGE_ANSWERS = 8


@pytest.mark.parametrize("fail_open", [False, True], ids=["fail-closed", "fail-open"])
def test_redis_going_away_under_load(
    limited: Server, tmp_path: Path, redis_server: RedisServer, fail_open: bool
) -> None:
    page = f"/limits/redis-gone-{'open' if fail_open else 'closed'}"
    settings = {
        "COMMENTSVC_RATELIMIT_STORAGE_URI": redis_server.url,
        "COMMENTSVC_RATELIMIT_FAIL_OPEN": str(fail_open).lower(),
    }
    with another_gunicorn(limited, tmp_path / "gunicorn.log", **settings) as server:
        load = Load(server, "127.0.0.15" if fail_open else "127.0.0.16", page)
        thread = threading.Thread(target=load.run)
        thread.start()
        try:
            load.when(lambda done: any(e.answer and e.answer.status == 429 for e in done), "429")
            stopping = time.monotonic()
            redis_server.stop()
            stopped = time.monotonic()
            load.when(
                lambda done: sum(e.started > stopped for e in done) >= OUTAGE_ANSWERS,
                "answers while Redis is gone",
            )
            # Started again with no submission under way, so that each one after it is
            # counted in the new Redis (while it starts, they would fail as above).
            with load.paused():
                restarting = time.monotonic()
                redis_server.start()
                restarted = time.monotonic()
            load.when(
                lambda done: sum(e.started > restarted for e in done) >= LIMIT + 2,
                "answers after Redis is back",
            )
        finally:
            load.stopping.set()
            thread.join(TIMEOUT)
        errors_counted = storage_errors(server)
        log = server.gunicorn.log.read_text(errors="replace")

    exchanges = load.exchanges
    assert not thread.is_alive()
    assert [e.error for e in exchanges if e.answer is None] == []
    # Never a 500: limited, or let through, or refused as unavailable, as configured.
    assert set(load.statuses(exchanges)) <= ({201, 429} if fail_open else {201, 429, 503})
    before = load.between(float("-inf"), stopping)
    outage = load.between(stopped, restarting)
    after = load.between(restarted)
    assert load.statuses(before)[: LIMIT + 1] == [201] * LIMIT + [429]
    assert set(load.statuses(before)[LIMIT:]) == {429}
    assert len(outage) >= OUTAGE_ANSWERS
    if fail_open:
        assert set(load.statuses(outage)) == {201}
        # At least those; others in flight when Redis stopped or started may count too.
        in_between = len(exchanges) - len(before) - len(after)
        assert len(outage) <= errors_counted <= in_between
        assert "rate-limit storage unreachable" in log and "letting submissions through" in log
    else:
        for exchange in outage:
            assert exchange.answer is not None
            assert_problem(exchange.answer, 503)
        assert errors_counted == load.statuses(exchanges).count(503)
        assert "rate-limit storage unreachable" in log and "refusing submissions" in log
    # Redis started again, empty: a fresh window, limited again.
    statuses_after = load.statuses(after)
    assert statuses_after[:LIMIT] == [201] * LIMIT, statuses_after
    assert set(statuses_after[LIMIT:]) == {429}, statuses_after
    # Every comment acknowledged is stored, and nothing else.
    answered = [e.answer for e in exchanges if e.answer is not None]
    assert set(limited.comments_on(page)) == created_ids(answered)


# --- Malformed settings -------------------------------------------------------------------

MALFORMED = [
    ("COMMENTSVC_SUBMIT_RATE_LIMIT", "five per minute"),
    ("COMMENTSVC_RATELIMIT_STORAGE_URI", "redis://localhost:notaport"),
    ("COMMENTSVC_RATELIMIT_STORAGE_URI", "http://x"),
]
MALFORMED_IDS = ["limit", "redis-port", "not-redis"]


def refusal_env(tmp_path: Path, name: str, value: str) -> dict[str, str]:
    # The database is never opened: the settings are read first.
    return service_env(
        f"sqlite:///{tmp_path}/never-made.db",
        COMMENTSVC_RATELIMIT_ENABLED="true",
        **{name: value},
    )


def assert_one_line_naming(output: str, name: str) -> None:
    assert "Traceback" not in output, output
    naming = [line for line in output.splitlines() if name in line]
    assert len(naming) == 1, output
    assert naming[0].startswith(f"commentsvc: configuration error: {name}: "), output


@pytest.mark.parametrize(("name", "value"), MALFORMED, ids=MALFORMED_IDS)
def test_the_cli_refuses_a_malformed_setting_in_one_line(
    tmp_path: Path, name: str, value: str
) -> None:
    result = subprocess.run(
        [commentsvc_script(), "sites", "list"],
        env=refusal_env(tmp_path, name, value),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode != 0
    assert_one_line_naming(result.stderr, name)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(("name", "value"), MALFORMED, ids=MALFORMED_IDS)
def test_gunicorn_refuses_a_malformed_setting_in_one_line(
    tmp_path: Path, name: str, value: str
) -> None:
    gunicorn = GunicornServer(refusal_env(tmp_path, name, value), tmp_path / "gunicorn.log")
    gunicorn.start()
    try:
        status = gunicorn.running().wait(timeout=TIMEOUT)
    finally:
        gunicorn.stop()
    assert status != 0
    assert_one_line_naming(gunicorn.log.read_text(errors="replace"), name)

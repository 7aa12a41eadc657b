"""Slow clients against real gunicorn workers (commentsvc/worker.py): they hold a socket,
never a worker, so ordinary requests keep their usual latency; and each has a deadline."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import WORKERS, Server, Template, serve
from tests.support.server import LOOPBACK, connection_owners_by_peer

pytestmark = pytest.mark.e2e

SLOW_CONNECTIONS = 50
TIMEOUT = 15
PAGE = "/e2e/slow-clients"
_ordinary = itertools.count()


def connect(server: Server, receive_buffer: int | None = None) -> socket.socket:
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connecting, so the window stays small
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    connection.settimeout(TIMEOUT)
    connection.connect((LOOPBACK, server.gunicorn.port))
    return connection


def submission_body(n: int) -> bytes:
    return json.dumps(
        {
            "page": PAGE,
            "body": f"Typed very slowly, number {n}",
            "author_name": "Slow Typist",
            "author_email": f"slow.{n}@example.com",
        }
    ).encode()


class Tricklers:
    """Slow clients, each sending a little of its request every ``interval`` seconds:
    a third trickle header lines, a third their body after whole headers, and a third
    send nothing at all after connecting."""

    def __init__(self, server: Server, count: int, interval: float = 0.5) -> None:
        self.server = server
        self.interval = interval
        self.connections: list[socket.socket] = []
        self.pending: list[list[bytes]] = []
        for n in range(count):
            connection = connect(self.server)
            self.connections.append(connection)
            self.pending.append(self._pieces(n))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _pieces(self, n: int) -> list[bytes]:
        host = f"Host: {LOOPBACK}\r\n".encode()
        if n % 3 == 0:  # the head, a header line at a time, never finished
            return [b"GET /healthz HTTP/1.1\r\n", host] + [b"X-Slow: %d\r\n" % i for i in range(99)]
        if n % 3 == 1:  # whole headers, then the body a byte at a time
            body = submission_body(n)
            head = (
                f"POST /api/v1/sites/e2e/comments HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            return [head] + [body[i : i + 1] for i in range(len(body) - 1)]
        return []  # connected, silent

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            for connection, pieces in zip(self.connections, self.pending, strict=True):
                if pieces:
                    connection.sendall(pieces.pop(0))

    def __enter__(self) -> Tricklers:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=TIMEOUT)
        for connection in self.connections:
            connection.close()

    def still_open(self) -> int:
        """How many of the slow connections the server still holds open."""
        owners = connection_owners_by_peer(self.server.gunicorn.port)
        return sum(connection.getsockname()[1] in owners for connection in self.connections)


def ordinary_latencies(server: Server, rounds: int) -> list[float]:
    """Seconds each of ``rounds`` rounds of ordinary requests took (a thread read, a
    submission, a health check), each on a new connection as a browser's first visit."""
    took = []
    for _ in range(rounds):
        n = next(_ordinary)
        started = time.perf_counter()
        thread = requests.get(
            f"{server.base_url}/api/v1/sites/e2e/comments", params={"page": PAGE}, timeout=TIMEOUT
        )
        submitted = requests.post(
            f"{server.base_url}/api/v1/sites/e2e/comments",
            json={
                "page": PAGE,
                "body": f"An ordinary comment {n}",
                "author_name": "Ordinary Reader",
                "author_email": f"reader.{n}@example.com",
            },
            timeout=TIMEOUT,
        )
        health = requests.get(f"{server.base_url}/healthz", timeout=TIMEOUT)
        took.append(time.perf_counter() - started)
        assert (thread.status_code, submitted.status_code, health.status_code) == (200, 201, 200)
    return took


def test_fifty_slow_clients_do_not_slow_ordinary_requests(server: Server) -> None:
    usual = ordinary_latencies(server, 30)

    with Tricklers(server, SLOW_CONNECTIONS) as slow:
        time.sleep(1.0)  # every slow client has sent something, the body ones a whole head
        during = ordinary_latencies(server, 30)
        held = slow.still_open()

    assert held == SLOW_CONNECTIONS  # none was dropped or refused: they really were held
    usual_median, during_median = statistics.median(usual), statistics.median(during)
    print(f"median round: {usual_median * 1000:.1f} ms alone, {during_median * 1000:.1f} ms with")
    print(f"slowest round: {max(usual) * 1000:.1f} ms alone, {max(during) * 1000:.1f} ms with")
    # A sync worker blocks on the first slow client it takes: rounds then wait for the
    # workers' timeout (30 s). Here they take their usual time, give or take the noise.
    assert during_median < usual_median * 2 + 0.010
    assert max(during) < max(usual) * 3 + 0.100


def test_clients_that_do_not_read_their_answer_hold_no_worker(server: Server) -> None:
    """The widget script, without compression, is larger than what a client with a small
    receive window takes at once: a sync worker would wait for these clients to read."""
    readers = [connect(server, receive_buffer=4096) for _ in range(4 * WORKERS)]
    try:
        for connection in readers:
            connection.sendall(
                f"GET /widget.js HTTP/1.1\r\nHost: {LOOPBACK}\r\nConnection: close\r\n\r\n".encode()
            )
        time.sleep(0.5)
        took = ordinary_latencies(server, 10)
        assert max(took) < 1.0
        # They still get the whole answer when they read it.
        data = b""
        while chunk := readers[0].recv(65536):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
        assert len(body) == length > 4096 * 4
    finally:
        for connection in readers:
            connection.close()


@contextmanager
def quick_deadline(template: Template, tmp_path: Path) -> Iterator[Server]:
    with serve(template, tmp_path, GUNICORN_READ_TIMEOUT="1.5") as running:
        yield running


def read_all(connection: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := connection.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_a_request_not_sent_within_the_read_timeout_gets_408_and_is_closed(
    template: Template, tmp_path: Path
) -> None:
    with quick_deadline(template, tmp_path) as server:
        connections = [connect(server) for _ in range(3)]
        header_trickler, body_trickler, _silent = connections
        try:
            started = time.monotonic()
            header_trickler.sendall(b"GET /healthz HTTP/1.1\r\n")
            body = submission_body(0)
            body_trickler.sendall(
                (
                    f"POST /api/v1/sites/e2e/comments HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body[:5]
            )
            # They keep sending, but stop short of the deadline (1.5 s): bytes sent to a
            # connection the server has closed would make the answer's reading fail.
            for n in range(3):
                time.sleep(0.3)
                header_trickler.sendall(b"X-Slow: %d\r\n" % n)
                body_trickler.sendall(body[5 + n : 6 + n])
            answers = [read_all(connection) for connection in connections]
            closed_after = time.monotonic() - started
        finally:
            for connection in connections:
                connection.close()

        for answer in answers:
            head, _, problem = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), answer
            assert b"application/problem+json" in head
            assert json.loads(problem)["status"] == 408
        assert 1.5 <= closed_after < 2.5
        assert server.comments_on(PAGE) == {}  # the late body stored nothing
        # The service itself never noticed.
        assert requests.get(f"{server.base_url}/healthz", timeout=TIMEOUT).status_code == 200


def test_a_request_sent_slowly_but_in_time_is_served(template: Template, tmp_path: Path) -> None:
    with quick_deadline(template, tmp_path) as server:
        connection = connect(server)
        body = submission_body(1)
        request = (
            f"POST /api/v1/sites/e2e/comments HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + body
        for start in range(0, len(request), len(request) // 4 + 1):
            connection.sendall(request[start : start + len(request) // 4 + 1])
            time.sleep(0.2)
        answer = read_all(connection)
        connection.close()
        assert answer.startswith(b"HTTP/1.1 201 "), answer
        assert list(server.comments_on(PAGE).values()) == ["Typed very slowly, number 1"]


def test_expect_100_continue_is_answered_once_and_the_body_served(server: Server) -> None:
    connection = connect(server)
    body = submission_body(2)
    connection.sendall(
        (
            f"POST /api/v1/sites/e2e/comments HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    assert connection.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
    connection.sendall(body)
    answer = read_all(connection)
    connection.close()
    assert answer.startswith(b"HTTP/1.1 201 "), answer  # no second 100 Continue before it


def test_keep_alive_and_chunked_bodies(server: Server) -> None:
    with requests.Session() as session:
        chunks = iter([submission_body(3)[:20], submission_body(3)[20:]])
        first = session.post(
            f"{server.base_url}/api/v1/sites/e2e/comments",
            data=chunks,  # a generator: sent with Transfer-Encoding: chunked
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT,
        )
        second = session.get(f"{server.base_url}/healthz", timeout=TIMEOUT)
    assert (first.status_code, second.status_code) == (201, 200)


def test_gunicorns_own_refusals_are_problem_json(server: Server) -> None:
    connection = connect(server)
    connection.sendall(b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = read_all(connection)
    connection.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert b"Content-Type: application/problem+json" in head
    problem = json.loads(body)
    assert problem["status"] == 400 and "too large" in problem["detail"].lower()

    connection = connect(server)
    connection.sendall(b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n")
    answer = read_all(connection)
    connection.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == 431


def requests_total(server: Server) -> float:
    text = requests.get(f"{server.base_url}/metrics", timeout=TIMEOUT).text
    return sum(
        float(value)
        for value in re.findall(r"^commentsvc_http_requests_total\{[^}]*\} (\S+)$", text, re.M)
    )


def test_a_replaced_workers_metrics_are_folded_into_the_archive(
    template: Template, tmp_path: Path
) -> None:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    with serve(template, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics)) as server:
        for _ in range(20):
            requests.get(f"{server.base_url}/healthz", timeout=TIMEOUT)
        before = requests_total(server)
        # A worker that answered some of them (one may have answered all): its histogram
        # file exists only once it observed a request.
        answered = {
            int(found.group(1))
            for name in os.listdir(metrics)
            if (found := re.fullmatch(r"histogram_(\d+)\.db", name))
        }
        victim = next(pid for pid in server.gunicorn.worker_pids() if pid in answered)

        os.kill(victim, signal.SIGTERM)
        deadline = time.monotonic() + TIMEOUT
        while victim in server.gunicorn.worker_pids() or len(server.gunicorn.worker_pids()) < 2:
            assert time.monotonic() < deadline, "the worker was not replaced"
            time.sleep(0.05)
        server.gunicorn.wait_every_worker()
        deadline = time.monotonic() + TIMEOUT
        while any(f"_{victim}.db" in name for name in os.listdir(metrics)):
            assert time.monotonic() < deadline, sorted(os.listdir(metrics))
            time.sleep(0.05)

        assert {"counter_archive.db", "histogram_archive.db"} <= set(os.listdir(metrics))
        # Its counts stay in the totals (the scrapes themselves add to them).
        assert requests_total(server) >= before


def test_a_body_larger_than_what_is_read_ahead_is_refused_unread(server: Server) -> None:
    connection = connect(server)
    connection.sendall(
        b"POST /api/v1/sites/e2e/comments HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{"
    )
    answer = read_all(connection)
    connection.close()
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == 413

"""Graceful shutdown of a real gunicorn: SIGTERM lets the requests in flight finish."""

from __future__ import annotations

import json
import signal
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

SLOW_REQUESTS = 2
#: How long each request's body takes to arrive after SIGTERM (below graceful_timeout).
DRIP_SECONDS = 1.5


def start_slow_submission(server: Server, n: int) -> tuple[socket.socket, bytes]:
    """Open a submission whose headers and half of its body are sent; return the rest."""
    body = json.dumps(
        {
            "page": "/e2e/shutdown",
            "body": f"Sent slowly, number {n}",
            "author_name": "Slow Reader",
            "author_email": f"slow.{n}@example.com",
        }
    ).encode()
    address = urlsplit(server.base_url)
    connection = socket.create_connection((address.hostname, address.port), timeout=15)
    head = (
        f"POST /api/v1/sites/e2e/comments HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n"
    ).encode()
    half = len(body) // 2
    connection.sendall(head + body[:half])
    return connection, body[half:]


def read_response(connection: socket.socket) -> tuple[int, dict[str, object]]:
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    connection.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_sigterm_lets_requests_in_flight_finish_then_exits_0(server: Server) -> None:
    slow = [start_slow_submission(server, n) for n in range(SLOW_REQUESTS)]
    # Both workers are now inside a request, reading a body that is not all there yet.
    deadline = time.monotonic() + 5
    while server.gunicorn.busy_worker() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.gunicorn.busy_worker() is not None, "no worker picked up the slow requests"

    master = server.gunicorn.running()
    master.send_signal(signal.SIGTERM)
    time.sleep(DRIP_SECONDS)
    assert master.poll() is None, "gunicorn quit with requests in flight"

    answers = []
    for connection, rest in slow:
        connection.sendall(rest)
        answers.append(read_response(connection))
    assert [status for status, _ in answers] == [201] * SLOW_REQUESTS, answers
    assert all(answer["status"] == "pending" for _, answer in answers)

    assert master.wait(timeout=10) == 0
    log = server.gunicorn.log.read_text()
    assert "Handling signal: term" in log
    assert "Shutting down: Master" in log

    # Stopped for good: nothing listens any more.
    address = urlsplit(server.base_url)
    with pytest.raises(OSError):
        socket.create_connection((address.hostname, address.port), timeout=2).close()

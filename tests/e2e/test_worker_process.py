"""The outbox worker as a real process beside a real gunicorn: comments posted over HTTP
reach a real webhook receiver and a real SMTP server; a worker killed with SIGKILL in the
middle of a delivery loses nothing, and what it may have sent twice carries the same
``webhook-id``; SIGTERM finishes what is in flight; gunicorn can run the worker itself."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from commentsvc import PROJECT_ROOT
from commentsvc.models import Delivery, DeliveryState
from tests.e2e.conftest import MODERATOR, Server, Template, serve
from tests.support.receiver import WebhookReceiver
from tests.support.service import commentsvc_script, run_cli
from tests.support.smtp import SmtpServer

#: Settings of the worker (and of gunicorn, for its embedded one) in these tests: a quick
#: poll, and a dead worker known as such within 2 s.
WORKER_SETTINGS = {
    "COMMENTSVC_WORKER_POLL_MS": "50",
    "COMMENTSVC_WORKER_STALE_SECONDS": "2",
    "COMMENTSVC_WEBHOOK_ALLOW_PRIVATE": "true",
}


@contextmanager
def worker_process(
    server: Server, log: Path, **variables: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``commentsvc worker`` on the server's database; killed at the end if still running."""
    env = {**server.gunicorn.env, **WORKER_SETTINGS, **variables}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [commentsvc_script(), "worker"], env=env, cwd=PROJECT_ROOT, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def post(server: Server, body: str, email: str = "reader@example.com") -> int:
    response = requests.post(
        f"{server.base_url}/api/v1/sites/e2e/comments",
        json={"page": "/e2e", "body": body, "author_name": "Reader", "author_email": email},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def add_webhook(server: Server, receiver: WebhookReceiver) -> None:
    """``commentsvc webhooks add`` for comment.submitted, its secret given to the receiver."""
    output = run_cli(
        {**server.gunicorn.env, **WORKER_SETTINGS},
        "webhooks",
        "add",
        "e2e",
        receiver.url,
        "--event",
        "comment.submitted",
    )
    receiver.secret = output.split()[-1]


@pytest.fixture
def running(template: Template, tmp_path: Path) -> Iterator[Server]:
    with serve(template, tmp_path, workers=2, **WORKER_SETTINGS) as server:
        yield server


def submitted_ids(receiver: WebhookReceiver) -> Counter[int]:
    return Counter(call.json["data"]["id"] for call in receiver.calls)


def delivered_comments(server: Server) -> set[int]:
    """The comments whose webhook delivery is recorded as delivered, read from the database."""
    engine = sa.create_engine(server.gunicorn.env["COMMENTSVC_DATABASE_URL"], poolclass=NullPool)
    statement = sa.select(Delivery.comment_id).where(
        Delivery.kind == "webhook", Delivery.state == DeliveryState.DELIVERED
    )
    try:
        with engine.connect() as connection:
            return {comment for comment in connection.scalars(statement) if comment is not None}
    finally:
        engine.dispose()


def test_sigkill_mid_delivery_loses_nothing_and_repeats_only_with_the_same_id(
    running: Server, tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    add_webhook(running, webhook_receiver)
    # The first call hangs: the worker is killed while it waits for the answer.
    webhook_receiver.then("slow:3")
    log = tmp_path / "worker.log"
    first = post(running, "the one in flight")
    with worker_process(running, log) as worker:
        webhook_receiver.wait_for(1)
        for number in range(10):
            post(running, f"comment {number}")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    recorded = delivered_comments(running)
    assert first not in recorded
    # Another worker takes over what the dead one held once its heartbeat is stale.
    with worker_process(running, log):
        deadline = time.monotonic() + 30
        while len(submitted_ids(webhook_receiver)) < 11 and time.monotonic() < deadline:
            time.sleep(0.1)
        while len(delivered_comments(running)) < 11 and time.monotonic() < deadline:
            time.sleep(0.1)
    seen = submitted_ids(webhook_receiver)
    assert len(seen) == 11, seen  # every comment reached the receiver
    assert delivered_comments(running) == set(seen)
    twice = {comment for comment, count in seen.items() if count > 1}
    # Sent again: the one in flight, and any whose answer came but was not recorded yet
    # when the worker died; never one recorded as delivered.
    assert first in twice
    assert not twice & recorded
    for comment in twice:  # … each time with the same webhook-id, for the receiver to drop
        ids = {
            call.webhook_id for call in webhook_receiver.calls if call.json["data"]["id"] == comment
        }
        assert len(ids) == 1, (comment, ids)
    assert all(call.verified for call in webhook_receiver.calls)


def test_sigterm_finishes_the_delivery_in_flight_and_exits(
    running: Server, tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    add_webhook(running, webhook_receiver)
    webhook_receiver.then("slow:2")
    log = tmp_path / "worker.log"
    post(running, "slow to deliver")
    with worker_process(running, log) as worker:
        webhook_receiver.wait_for(1)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
        assert time.monotonic() - started >= 1.0  # it waited for the answer
    assert "stopping: finishing 1 deliveries" in log.read_text()
    # A new worker finds nothing left to send: the answer was recorded before it exited.
    with worker_process(running, log):
        time.sleep(1.5)
    assert len(webhook_receiver.calls) == 1


def test_check_sees_a_running_worker_and_then_its_absence(running: Server, tmp_path: Path) -> None:
    env = {**running.gunicorn.env, **WORKER_SETTINGS}
    with worker_process(running, tmp_path / "worker.log") as worker:
        deadline = time.monotonic() + 20
        while True:
            result = subprocess.run(
                [commentsvc_script(), "worker", "--check"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"worker {os.uname().nodename}:{worker.pid}: alive" in result.stdout
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
    result = subprocess.run(
        [commentsvc_script(), "worker", "--check"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "no worker has beaten" in result.stdout


def test_gunicorn_runs_the_worker_itself_and_restarts_it(
    template: Template, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """COMMENTSVC_RUN_WORKER=true: one process tree serves and mails (the single container)."""
    mail = {
        "COMMENTSVC_RUN_WORKER": "true",
        "COMMENTSVC_SMTP_URL": smtp_server.url,
        "COMMENTSVC_PUBLIC_URL": "https://comments.example.test",
    }
    with serve(template, tmp_path, workers=2, **WORKER_SETTINGS, **mail) as server:
        sent = time.monotonic()
        post(server, "tell the moderator")
        [message] = smtp_server.wait_for(1, timeout=20)
        delay = time.monotonic() - sent
        assert message.recipients == [MODERATOR.email]
        assert delay < 5, delay
        # The worker dies: gunicorn's master starts another, which delivers the next one.
        log = server.gunicorn.log_text()
        pid = int(log.split("commentsvc worker started (pid ")[1].split(")")[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while server.gunicorn.log_text().count("commentsvc worker started") < 2:
            assert time.monotonic() < deadline, server.gunicorn.log_tail()
            time.sleep(0.2)
        post(server, "and again")
        smtp_server.wait_for(2, timeout=20)

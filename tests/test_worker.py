"""``commentsvc worker --check`` and ``--once``, and the outbox in ``/metrics``."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from commentsvc.delivery import ROUND, Worker
from commentsvc.extensions import db, write_transaction
from commentsvc.models import OutboxEvent, WorkerHeartbeat, utcnow
from tests.conftest import valid_submission

SUBMIT = "/api/v1/sites/news/comments"


def test_check_fails_without_a_live_worker(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["worker", "--check"])
    assert result.exit_code == 1
    assert "no worker has beaten: start one with `commentsvc worker`" in result.output


def test_check_passes_with_a_live_worker_and_tells_the_queue(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    assert client.post(SUBMIT, json=valid_submission()).status_code == 201
    with app.app_context():
        Worker(app, name="box:42").beat(force=True)
    result = runner.invoke(args=["worker", "--check"])
    assert result.exit_code == 0, result.output
    assert "queue: 1 events to plan, 0 deliveries to send" in result.output
    assert "worker box:42: alive, last beat 0 s ago" in result.output


def test_check_fails_when_the_only_worker_went_stale(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():
        Worker(app, name="box:42").beat(force=True)
        with write_transaction():
            db.session.execute(
                sa.update(WorkerHeartbeat).values(beat_at=utcnow() - timedelta(minutes=2))
            )
    result = runner.invoke(args=["worker", "--check"])
    assert result.exit_code == 1
    # Two minutes, and the time the check took to start (a busy machine: a second or more).
    found = re.search(r"worker box:42: stale, last beat (\d+) s ago", result.output)
    assert found is not None, result.output
    assert 120 <= int(found.group(1)) < 150


def test_once_plans_what_is_waiting_and_exits(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    assert client.post(SUBMIT, json=valid_submission()).status_code == 201
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        [event] = db.session.scalars(sa.select(OutboxEvent))
        assert event.dispatched_at is not None
        # The one-off run leaves no heartbeat behind.
        assert db.session.scalars(sa.select(WorkerHeartbeat)).all() == []


def test_metrics_tell_the_queue_and_each_workers_outcomes(app: Flask, client: FlaskClient) -> None:
    assert client.post(SUBMIT, json=valid_submission()).status_code == 201
    with app.app_context():
        worker = Worker(app, name="box:7")
        worker.counts.update({"delivered": 5, "retry": 2})
        worker.beat(force=True)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'commentsvc_outbox_queue{kind="events"} 1.0' in text
    assert 'commentsvc_outbox_queue{kind="deliveries"} 0.0' in text
    assert 'commentsvc_worker_deliveries_total{outcome="delivered",worker="box:7"} 5.0' in text
    assert 'commentsvc_worker_deliveries_total{outcome="retry",worker="box:7"} 2.0' in text
    assert 'commentsvc_worker_last_beat_seconds{worker="box:7"}' in text
    oldest = next(
        line for line in text.splitlines() if line.startswith("commentsvc_outbox_oldest_seconds ")
    )
    assert 0 <= float(oldest.split()[1]) < 60


def test_a_sending_worker_goes_round_every_round_not_every_poll(app: Flask) -> None:
    """With deliveries out, the next round comes after ROUND (its free threads have their
    next deliveries already): waiting the poll interval held the worker to a few deliveries
    per interval; going round at once wrote a transaction per delivery."""
    app.config["WORKER_POLL_MS"] = 5000
    worker = Worker(app, name="box:1", threads=2)
    with ThreadPoolExecutor(2) as pool:
        worker._in_flight[pool.submit(time.sleep, 3)] = 1
        began = time.monotonic()
        worker._pause(work=0, began=began)
        assert ROUND * 0.9 <= time.monotonic() - began < 1
        # Idle (nothing found, nothing out): it sleeps the poll interval, unless stopped.
        worker._in_flight.clear()
        worker.stopping.set()
        began = time.monotonic()
        worker._pause(work=0, began=began)
        assert time.monotonic() - began < 1

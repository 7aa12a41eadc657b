"""The outbox: an event per change, in the change's transaction; planned once; each delivery
leased to one worker at a time, retried with backoff, given up after its channel's window."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from commentsvc import create_app
from commentsvc.delivery import Worker
from commentsvc.extensions import db, init_migrate, write_transaction
from commentsvc.models import (
    CommentStatus,
    Delivery,
    DeliveryState,
    Moderator,
    OutboxEvent,
    Site,
    WorkerHeartbeat,
    utcnow,
)
from commentsvc.services import moderation, outbox, sites, submissions
from commentsvc.services.errors import Invalid
from commentsvc.services.outbox import Outcome, Planned

KIND = "test-outbox"


def submit(body: str = "Hello", email: str = "ada@example.com") -> int:
    site = sites.get_site("news")
    assert site is not None
    submission = submissions.Submission(page="/a", body=body, author_name="Ada", author_email=email)
    return submissions.submit_comment(site, submission, submissions.ClientInfo(None, None)).id


def events() -> list[OutboxEvent]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id)))


def deliveries() -> list[Delivery]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(Delivery).order_by(Delivery.id)))


class Channel:
    """A test channel: one delivery per event; its sender gives the next of ``answers``
    (an Outcome, or an exception to raise; then delivered), recording in ``sent`` the
    (delivery id, event type) of every attempt."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.answers: list[Outcome | Exception] = []

    def plan(self, event: OutboxEvent) -> list[Planned]:
        return [Planned(channel="webhook", kind=KIND, comment_id=event.comment_id)]

    def send(self, delivery: Delivery, event: OutboxEvent | None) -> Outcome:
        self.sent.append((delivery.id, event.type if event else "-"))
        answer = self.answers.pop(0) if self.answers else Outcome.delivered(200)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def channel() -> Iterator[Channel]:
    made = Channel()
    outbox._PLANNERS.append(made.plan)
    outbox._SENDERS[KIND] = made.send
    yield made
    outbox._PLANNERS.remove(made.plan)
    del outbox._SENDERS[KIND]


def ours() -> list[Delivery]:
    return [delivery for delivery in deliveries() if delivery.kind == KIND]


def test_a_submission_writes_its_event_with_the_moderation_view(context: None) -> None:
    comment_id = submit()
    [event] = events()
    assert (event.type, event.comment_id, event.actor) == ("comment.submitted", comment_id, None)
    assert event.dispatched_at is None
    assert event.data["id"] == comment_id
    assert event.data["status"] == "pending"
    assert event.data["author_email"] == "ada@example.com"
    assert event.data["site"] == "news"
    assert event.data["page"] == {"key": "/a", "url": None, "title": None}


def test_a_refused_submission_writes_no_event(context: None) -> None:
    with pytest.raises(Invalid):
        sites_news = sites.get_site("news")
        assert sites_news is not None
        bad = submissions.Submission(
            page="/a", body="x", author_name="A", author_email="a@example.com", parent_id=999
        )
        submissions.submit_comment(sites_news, bad, submissions.ClientInfo(None, None))
    assert events() == []


def test_a_rolled_back_change_leaves_no_event(
    context: None, make_moderator: Callable[..., Moderator]
) -> None:
    moderator = make_moderator()
    comment_id = submit()
    with pytest.raises(RuntimeError), write_transaction():
        moderation.Changes(moderator).set_status(
            moderation._one(moderator, comment_id), CommentStatus.APPROVED
        )
        raise RuntimeError("the request failed after the change")
    assert [event.type for event in events()] == ["comment.submitted"]


def test_moderation_writes_an_event_per_change_with_the_actor(
    context: None, make_moderator: Callable[..., Moderator]
) -> None:
    moderator = make_moderator()
    comment_id = submit()
    moderation.update_comment(moderator, comment_id, CommentStatus.APPROVED, "Edited")
    moderation.delete_comment(moderator, comment_id)
    found = events()
    assert [event.type for event in found] == [
        "comment.submitted",
        "comment.edited",
        "comment.approved",
        "comment.deleted",
    ]
    assert {event.actor for event in found[1:]} == {"mod@example.com"}
    approved, deleted = found[2], found[3]
    assert approved.data["status"] == "approved"
    assert approved.data["body"] == "Edited"
    # The deleted comment is gone; its event still tells what it was.
    assert deleted.data["id"] == comment_id
    assert deleted.data["body"] == "Edited"
    assert deleted.data["author_email"] == "ada@example.com"


def test_each_event_is_planned_once(context: None, channel: Channel) -> None:
    first, second = submit("one"), submit("two")
    assert outbox.dispatch() == 2
    assert outbox.dispatch() == 0
    planned = ours()
    assert [delivery.comment_id for delivery in planned] == [first, second]
    assert all(event.dispatched_at is not None for event in events())


def test_the_worker_sends_and_records_delivered(
    app: Flask, context: None, channel: Channel
) -> None:
    submit()
    Worker(app, name="w1").run_once()
    [delivery] = ours()
    assert channel.sent == [(delivery.id, "comment.submitted")]
    assert delivery.state == DeliveryState.DELIVERED
    assert (delivery.attempts, delivery.last_code, delivery.lease_owner) == (1, 200, None)
    assert delivery.finished_at is not None


def test_a_failed_attempt_is_retried_later_with_a_growing_backoff(
    app: Flask, context: None, channel: Channel
) -> None:
    channel.answers.extend(
        [Outcome.retry("HTTP 500", 500), Outcome.retry("timed out"), Outcome.delivered(204)]
    )
    submit()
    worker = Worker(app, name="w1")
    worker.run_once()
    [delivery] = ours()
    first_wait = delivery.next_attempt_at - utcnow()
    assert (delivery.state, delivery.last_code, delivery.last_error) == (
        DeliveryState.PENDING,
        500,
        "HTTP 500",
    )
    assert timedelta(seconds=20) < first_wait <= timedelta(seconds=36)
    worker.run_once()
    assert len(channel.sent) == 1  # not due yet

    def make_due() -> None:
        with write_transaction():
            db.session.execute(sa.update(Delivery).values(next_attempt_at=utcnow()))

    make_due()
    worker.run_once()
    [delivery] = ours()
    assert delivery.attempts == 2
    assert delivery.next_attempt_at - utcnow() > timedelta(seconds=45)  # doubled
    make_due()
    worker.run_once()
    [delivery] = ours()
    assert (delivery.state, delivery.attempts, delivery.last_code) == (
        DeliveryState.DELIVERED,
        3,
        204,
    )
    assert [sent for sent, _ in channel.sent] == [delivery.id] * 3


def test_a_round_records_the_outcomes_of_the_last_one_in_one_transaction(
    app: Flask, context: None, channel: Channel
) -> None:
    """Claimed ahead and recorded in batches: at 200 submissions a second, a transaction per
    delivery (its claim, its outcome) held the worker to about 100 a second on SQLite."""
    for number in range(6):
        submit(f"comment {number}", email=f"reader{number}@example.com")
    worker = Worker(app, name="w1", threads=2)
    with ThreadPoolExecutor(2) as pool:
        worker.run_once(pool)  # plans the six events, claims all six ahead, hands them out
        # Leased to it, and nothing recorded yet (the outcomes wait for the next round).
        leases = [(delivery.lease_owner, delivery.attempts) for delivery in ours()]
        assert leases == [("w1", 1)] * 6
        db.session.rollback()
    assert len(channel.sent) == 6
    commits = []

    def committed(connection: sa.Connection) -> None:
        commits.append(connection)

    sa.event.listen(db.engine, "commit", committed)
    try:
        assert worker._record() == 6
    finally:
        sa.event.remove(db.engine, "commit", committed)
    assert len(commits) == 1
    assert {(delivery.state, delivery.attempts, delivery.lease_owner) for delivery in ours()} == {
        (DeliveryState.DELIVERED, 1, None)
    }
    assert worker.counts["delivered"] == 6


def test_a_clean_stop_gives_back_the_deliveries_claimed_and_not_sent(
    app: Flask, context: None, channel: Channel
) -> None:
    for number in range(5):
        submit(f"comment {number}", email=f"reader{number}@example.com")
    sending, go_on = threading.Event(), threading.Event()
    send = channel.send

    def slow_send(delivery: Delivery, event: OutboxEvent | None) -> Outcome:
        sending.set()
        go_on.wait(10)
        return send(delivery, event)

    outbox._SENDERS[KIND] = slow_send
    worker = Worker(app, name="w1", threads=1)
    serving = threading.Thread(target=worker.serve)
    serving.start()
    try:
        assert sending.wait(10)
        assert {delivery.lease_owner for delivery in ours()} == {"w1"}  # all five claimed
        worker.stop()  # SIGTERM: the delivery being sent is finished, the rest given back
        deadline = time.monotonic() + 10
        while len(worker._in_flight) > 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # the loop takes back what no thread started
    finally:
        go_on.set()
        serving.join(10)
    [(sent, _)] = channel.sent
    states = {d.id: (d.state, d.attempts, d.lease_owner, d.lease_until) for d in ours()}
    assert states.pop(sent) == (DeliveryState.DELIVERED, 1, None, None)
    assert list(states.values()) == [(DeliveryState.PENDING, 0, None, None)] * 4
    assert outbox.queue_state().workers == []  # its heartbeat went with it
    # Another worker takes them at once, not when the leases would have run out.
    assert len(outbox.claim("w2", 10)) == 4


def test_backoff_doubles_up_to_its_cap() -> None:
    waits = [outbox.backoff(attempt) for attempt in range(1, 16)]
    assert timedelta(seconds=24) <= waits[0] <= timedelta(seconds=36)
    assert timedelta(seconds=48) <= waits[1] <= timedelta(seconds=72)
    assert max(waits) <= outbox.MAX_BACKOFF * 1.2
    # About a day of retries: the sum of the waits passes 24 hours within 15 attempts.
    assert sum((outbox.backoff(a) for a in range(1, 16)), timedelta()) > timedelta(hours=24)


def test_a_delivery_failing_past_its_window_is_given_up(
    app: Flask, context: None, channel: Channel
) -> None:
    channel.answers.append(Outcome.retry("HTTP 503", 503))
    submit()
    outbox.dispatch()
    with write_transaction():
        db.session.execute(sa.update(Delivery).values(created_at=utcnow() - timedelta(hours=24)))
    Worker(app, name="w1").run_once()
    [delivery] = ours()
    assert (delivery.state, delivery.last_code) == (DeliveryState.FAILED, 503)


def test_a_sender_that_raises_is_retried_and_the_worker_goes_on(
    app: Flask, context: None, channel: Channel
) -> None:
    channel.answers.append(ValueError("a bug"))
    submit()
    Worker(app, name="w1").run_once()
    [delivery] = ours()
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_error == "internal error: ValueError"


def test_a_permanent_failure_and_a_skip_are_final(
    app: Flask, context: None, channel: Channel
) -> None:
    channel.answers.extend([Outcome.failed("550 no such user", 550), Outcome.skipped("moot")])
    submit("one")
    submit("two")
    Worker(app, name="w1").run_once()
    states = {delivery.last_error: delivery.state for delivery in ours()}
    assert states == {"550 no such user": DeliveryState.FAILED, "moot": DeliveryState.SKIPPED}


def test_a_leased_delivery_is_not_claimed_by_another_worker(
    context: None, channel: Channel
) -> None:
    submit()
    outbox.dispatch()
    Worker(current_app_of(), name="alive").beat(force=True)
    [claimed] = outbox.claim("alive", 10)
    assert outbox.claim("other", 10) == []
    # The owner died (its heartbeat went stale): the lease is free for another worker.
    with write_transaction():
        db.session.execute(
            sa.update(WorkerHeartbeat).values(beat_at=utcnow() - outbox.stale_after() * 2)
        )
    assert outbox.claim("other", 10) == [claimed]
    # The dead worker's late result does not count: the lease is the other worker's.
    outbox.finish("alive", {claimed: Outcome.delivered(200)})
    [delivery] = ours()
    assert (delivery.state, delivery.lease_owner, delivery.attempts) == (
        DeliveryState.PENDING,
        "other",
        2,
    )


def test_an_expired_lease_is_free_even_if_its_worker_lives(context: None, channel: Channel) -> None:
    submit()
    outbox.dispatch()
    Worker(current_app_of(), name="alive").beat(force=True)
    [claimed] = outbox.claim("alive", 10)
    with write_transaction():
        db.session.execute(sa.update(Delivery).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert outbox.claim("other", 10) == [claimed]


def test_an_attempt_reads_the_delivery_as_it_is_now_and_sends_only_under_its_lease(
    context: None, channel: Channel
) -> None:
    """One statement before the sender (the delivery and its event, read as they are now,
    no transaction around it): it was seven round trips a call with the webhook's read, and
    the worker on PostgreSQL did not keep up with 200 submissions a second."""
    submit()
    outbox.dispatch()
    [claimed] = outbox.claim("w1", 10)
    statements: list[str] = []

    def executed(*args: object) -> None:
        statements.append(" ".join(str(args[2]).split()))

    sa.event.listen(db.engine, "before_cursor_execute", executed)
    try:
        assert outbox.attempt(claimed, "w1") == Outcome.delivered(200)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", executed)
    [read] = statements
    assert "FROM deliveries LEFT OUTER JOIN outbox_events" in read
    assert channel.sent == [(claimed, "comment.submitted")]
    assert not db.session().in_transaction()
    # Its lease went to another worker (w1 was taken for dead): w1 sends nothing.
    with write_transaction():
        db.session.execute(sa.update(Delivery).values(lease_owner="w2"))
    assert outbox.attempt(claimed, "w1") is None
    # Finished meanwhile: nobody sends it again.
    outbox.finish("w2", {claimed: Outcome.delivered(200)})
    assert outbox.attempt(claimed, "w2") is None
    assert channel.sent == [(claimed, "comment.submitted")]


def _generic_plan(statement: sa.Select[Any], values: dict[str, Any]) -> str:
    """PostgreSQL's plan of ``statement`` prepared and planned once for any values, as it
    may plan a statement psycopg has prepared (after five runs)."""
    from psycopg.sql import Literal  # the PostgreSQL run only

    compiled = statement.params(values).compile(
        db.engine, compile_kwargs={"render_postcompile": True}
    )
    names: list[str] = []

    def numbered(found: re.Match[str]) -> str:
        names.append(found.group(1))
        return f"${len(names)}"

    sql = re.sub(r"%\((\w+)\)s", numbered, str(compiled))
    parameters = compiled.params
    with db.engine.connect() as connection:
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql(f"PREPARE planned AS {sql}")
        raw = connection.connection.driver_connection
        arguments = ", ".join(Literal(parameters[name]).as_string(raw) for name in names)
        plan = connection.exec_driver_sql(f"EXPLAIN EXECUTE planned({arguments})").all()
        connection.exec_driver_sql("DEALLOCATE planned")
        connection.exec_driver_sql("RESET plan_cache_mode")
        connection.rollback()
    return "\n".join(row[0] for row in plan)


@pytest.mark.postgresql_only
def test_the_rounds_reads_of_due_deliveries_use_their_index_in_a_generic_plan(
    context: None,
) -> None:
    """Every round reads whether anything is due, then claims. psycopg prepares a statement
    after five runs and PostgreSQL may plan it once for all values: with ``state = $1`` the
    partial index of pending deliveries could not be used, and the soak's PostgreSQL read the
    whole deliveries table about 20 times a second, more CPU each minute as it grew."""
    now = utcnow()
    due = _generic_plan(outbox._DUE.limit(1), {"now": now})
    claimable = _generic_plan(outbox._claimable(now, 10), {})
    for plan in (due, claimable):
        assert "ix_deliveries_due" in plan, plan
        assert "Seq Scan on deliveries" not in plan, plan


def current_app_of() -> Flask:
    from flask import current_app

    return current_app._get_current_object()  # type: ignore[attr-defined]


def test_workers_racing_plan_each_event_once_and_claim_each_delivery_once(
    app: Flask, context: None, channel: Channel
) -> None:
    """Four workers at once on one database (PostgreSQL: side by side, skipping each
    other's locked rows; SQLite: one writer at a time)."""
    for number in range(40):
        submit(f"comment {number}", email=f"reader{number}@example.com")
    barrier = threading.Barrier(4)
    claimed: dict[str, list[int]] = {}
    planned: dict[str, int] = {}

    def work(name: str) -> None:
        with app.app_context():
            barrier.wait()
            planned[name] = sum(outbox.dispatch(limit=5) for _ in range(10))
            claimed[name] = [i for _ in range(10) for i in outbox.claim(name, 3)]
            db.session.remove()

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(planned.values()) == 40
    assert len(ours()) == 40
    everything = [i for ids in claimed.values() for i in ids]
    assert len(everything) == len(set(everything)) == 40


def test_the_heartbeat_and_the_queue_state(app: Flask, context: None) -> None:
    submit()
    worker = Worker(app, name="host:1")
    worker.beat(force=True)
    state = outbox.queue_state()
    assert (state.undispatched, state.pending) == (1, 0)
    assert state.oldest_seconds < 60
    assert [beat.name for beat in state.workers] == ["host:1"]
    worker._remove_heartbeat()
    assert outbox.queue_state().workers == []


def test_prune_keeps_recent_and_unfinished_deliveries(
    app: Flask, context: None, channel: Channel
) -> None:
    channel.answers.extend([Outcome.delivered(200), Outcome.retry("later")])
    submit("old")
    submit("waiting")
    Worker(app, name="w1").run_once()
    long_ago = utcnow() - timedelta(days=31)
    with write_transaction():
        db.session.execute(sa.update(Delivery).values(finished_at=long_ago, created_at=long_ago))
        db.session.execute(sa.update(OutboxEvent).values(dispatched_at=long_ago))
    assert outbox.prune() == 2  # the delivered one and its event
    [left] = ours()
    assert left.state == DeliveryState.PENDING
    assert len(events()) == 1


def test_a_site_deleted_takes_its_outbox_along(context: None) -> None:
    submit()
    with write_transaction():
        db.session.execute(sa.delete(Site).where(Site.slug == "news"))
    assert events() == []


@pytest.mark.sqlite_only
def test_an_outcome_the_database_could_not_take_is_recorded_once_it_is_back(
    tmp_path: Path, channel: Channel
) -> None:
    """The soak's finding: the database went away between a send and the write of its
    outcome; the thread's error went unread and the delivery stayed leased, sent again only
    when the lease ran out, minutes later. Now the outcome is kept and recorded in the next
    round: sent once, delivered at once."""
    database = tmp_path / "away.db"
    app = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": f"sqlite:///{database}",
            "SQLITE_BUSY_TIMEOUT_MS": 200,
            "RATELIMIT_ENABLED": False,
        }
    )
    init_migrate(app)
    holder = sqlite3.connect(database, isolation_level=None)
    with app.app_context():
        upgrade()
        db.session.add(Site(slug="news", name="News", origins=["https://news.example"]))
        db.session.commit()
        submit()
        original = channel.send

        def send_then_lose_the_database(delivery: Delivery, event: OutboxEvent | None) -> Outcome:
            outcome = original(delivery, event)
            holder.execute("BEGIN EXCLUSIVE")  # the outcome's write now finds it locked
            return outcome

        outbox._SENDERS[KIND] = send_then_lose_the_database
        worker = Worker(app, name="w1")
        try:
            with pytest.raises(sa.exc.OperationalError):
                worker.run_once()  # sends; cannot record (the run loop waits and goes on)
            holder.execute("ROLLBACK")
            [delivery] = ours()
            assert (delivery.state, delivery.lease_owner) == (DeliveryState.PENDING, "w1")

            worker.run_once()  # the database is back
            [delivery] = ours()
            assert (delivery.state, delivery.attempts, delivery.last_code) == (
                DeliveryState.DELIVERED,
                1,
                200,
            )
            assert len(channel.sent) == 1
            assert worker.counts["delivered"] == 1
        finally:
            outbox._SENDERS[KIND] = original
            db.engine.dispose()
            holder.close()

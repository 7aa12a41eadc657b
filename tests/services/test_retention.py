"""Retention (DESIGN §9): old spam and rejected comments deleted, old client facts cleared,
in batches, by the worker daily and by ``commentsvc retention [--dry-run]``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from commentsvc import delivery
from commentsvc.delivery import Worker
from commentsvc.extensions import db, write_transaction
from commentsvc.models import (
    Comment,
    CommentStatus,
    Delivery,
    ImportRecord,
    ModerationEvent,
    OutboxEvent,
    Page,
    Subscriber,
    Subscription,
    utcnow,
)
from commentsvc.services import retention
from commentsvc.services.retention import RetentionResult, RuleOutcome, apply_retention

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
SPAM, REJECTED = CommentStatus.SPAM, CommentStatus.REJECTED
APPROVED, PENDING = CommentStatus.APPROVED, CommentStatus.PENDING
FACTS = {"ip_prefix": "192.0.2.0", "user_agent": "Mozilla/5.0", "client_hash": "ab" * 16}


Store = Callable[..., int]


@pytest.fixture
def store(app: Flask, make_comment: Callable[..., int]) -> Store:
    """Store a comment created ``age`` before ``at`` (moderated ``moderated`` before it, if
    given), with client facts; its id."""

    def make(
        status: CommentStatus,
        age: timedelta,
        *,
        moderated: timedelta | None = None,
        at: datetime = NOW,
        **options: Any,
    ) -> int:
        comment_id = make_comment(status=status, **options)
        values = {"created_at": at - age, "updated_at": at - age, **FACTS}
        if moderated is not None:
            values["moderated_at"] = at - moderated
        with app.app_context(), write_transaction():
            db.session.execute(sa.update(Comment).where(Comment.id == comment_id).values(values))
        return comment_id

    return make


def comment_ids() -> set[int]:
    db.session.rollback()
    return set(db.session.scalars(sa.select(Comment.id)))


def rows(model: Any) -> list[tuple[Any, ...]]:
    """Every row of ``model``'s table, as stored."""
    db.session.rollback()
    table = model.__table__
    return [tuple(row) for row in db.session.execute(sa.select(table).order_by(*table.primary_key))]


def pages() -> list[Page]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(Page)))


def parent_of(comment_id: int) -> int | None:
    db.session.rollback()
    return db.session.scalar(sa.select(Comment.parent_id).where(Comment.id == comment_id))


def facts(comment_id: int) -> tuple[Any, ...]:
    db.session.rollback()
    columns = (Comment.ip_prefix, Comment.user_agent, Comment.client_hash)
    return tuple(db.session.execute(sa.select(*columns).where(Comment.id == comment_id)).one())


def test_spam_goes_once_its_last_moderation_is_older_than_the_setting(
    context: None, store: Store
) -> None:
    days = timedelta(days=30)
    inside = store(SPAM, days * 3, moderated=days - SECOND)
    outside = store(SPAM, days * 3, moderated=days + SECOND)
    # Stored as spam on submission: never moderated, so its age is counted from creation.
    unmoderated_inside = store(SPAM, days - SECOND)
    unmoderated_outside = store(SPAM, days + SECOND)

    result = apply_retention(NOW)

    assert result.spam == RuleOutcome(30, 2)
    assert comment_ids() == {inside, unmoderated_inside}
    assert {outside, unmoderated_outside}.isdisjoint(comment_ids())


def test_rejected_go_by_their_own_setting(app: Flask, context: None, store: Store) -> None:
    app.config["RETENTION_REJECTED_DAYS"] = 10
    days = timedelta(days=10)
    inside = store(REJECTED, days * 20, moderated=days - SECOND)
    outside = store(REJECTED, days * 20, moderated=days + SECOND)
    spam_of_the_same_age = store(SPAM, days + SECOND)

    result = apply_retention(NOW)

    assert result.rejected == RuleOutcome(10, 1)
    assert result.spam == RuleOutcome(30, 0)
    assert comment_ids() == {inside, spam_of_the_same_age}
    assert outside not in comment_ids()


def test_approved_and_pending_comments_are_never_deleted(context: None, store: Store) -> None:
    ancient = timedelta(days=3650)
    kept = {store(APPROVED, ancient, moderated=ancient), store(PENDING, ancient)}

    result = apply_retention(NOW)

    assert (result.spam.comments, result.rejected.comments) == (0, 0)
    assert comment_ids() == kept


def test_client_facts_are_cleared_by_age_and_nothing_else_is(context: None, store: Store) -> None:
    days = timedelta(days=90)
    inside = store(APPROVED, days - SECOND)
    outside = store(APPROVED, days + SECOND)
    pending = store(PENDING, days * 2)
    before = {row[0]: row for row in rows(Comment)}

    result = apply_retention(NOW)

    assert result.client_facts == RuleOutcome(90, 2)
    assert facts(inside) == tuple(FACTS.values())
    assert facts(outside) == facts(pending) == (None, None, None)
    after = {row[0]: row for row in rows(Comment)}
    names = [column.name for column in Comment.__table__.columns]
    for comment_id in (outside, pending):
        changed = {
            name
            for name, old, new in zip(names, before[comment_id], after[comment_id], strict=True)
            if old != new
        }
        # Housekeeping: not even updated_at moves.
        assert changed == {"ip_prefix", "user_agent", "client_hash"}
    assert after[inside] == before[inside]
    # A second run finds nothing left to clear.
    assert apply_retention(NOW).client_facts == RuleOutcome(90, 0)


def test_a_setting_of_zero_keeps_and_says_so(app: Flask, context: None, store: Store) -> None:
    app.config.update(
        RETENTION_SPAM_DAYS=0, RETENTION_REJECTED_DAYS=0, RETENTION_CLIENT_FACTS_DAYS=0
    )
    ancient = timedelta(days=3650)
    ids = {store(SPAM, ancient), store(REJECTED, ancient, moderated=ancient)}
    before = rows(Comment)

    result = apply_retention(NOW)

    assert result == RetentionResult(RuleOutcome(0), RuleOutcome(0), RuleOutcome(0))
    assert comment_ids() == ids
    assert rows(Comment) == before
    assert result.summary() == (
        "spam comments are kept (COMMENTSVC_RETENTION_SPAM_DAYS is 0); "
        "rejected comments are kept (COMMENTSVC_RETENTION_REJECTED_DAYS is 0); "
        "client facts are kept (COMMENTSVC_RETENTION_CLIENT_FACTS_DAYS is 0)"
    )


def test_a_dry_run_counts_what_a_run_then_does_and_changes_nothing(
    context: None, store: Store
) -> None:
    old = timedelta(days=365)
    for _ in range(3):
        store(SPAM, old)
    store(REJECTED, old, moderated=old)
    store(APPROVED, old)
    store(PENDING, old)
    store(SPAM, timedelta(days=1))
    tables = (Comment, Page, Subscription, ImportRecord, ModerationEvent, OutboxEvent)
    before = {model: rows(model) for model in tables}

    planned = apply_retention(NOW, dry_run=True)

    assert {model: rows(model) for model in tables} == before
    assert planned.summary() == (
        "would delete 3 spam comments (older than 30 days) and 1 rejected (older than 90 days); "
        # Not those of the comments the run deletes first.
        "would clear client facts of 2 comments (older than 90 days)"
    )
    done = apply_retention(NOW)
    assert (done.spam, done.rejected, done.client_facts) == (
        planned.spam,
        planned.rejected,
        planned.client_facts,
    )
    assert done.summary() == (
        "deleted 3 spam comments (older than 30 days) and 1 rejected (older than 90 days); "
        "cleared client facts of 2 comments (older than 90 days)"
    )


def test_the_summary_names_one_comment_and_one_day_in_the_singular() -> None:
    result = RetentionResult(RuleOutcome(1, 1), RuleOutcome(0), RuleOutcome(1, 1))
    assert result.summary() == (
        "deleted 1 spam comment (older than 1 day); "
        "rejected comments are kept (COMMENTSVC_RETENTION_REJECTED_DAYS is 0); "
        "cleared client facts of 1 comment (older than 1 day)"
    )


def test_more_comments_than_a_batch_all_go(context: None, store: Store) -> None:
    old = timedelta(days=400)
    for _ in range(7):
        store(SPAM, old)
    for _ in range(4):
        store(REJECTED, old)
    kept = {store(APPROVED, old) for _ in range(5)}

    result = apply_retention(NOW, batch_size=3)

    assert (result.spam.comments, result.rejected.comments) == (7, 4)
    assert result.client_facts.comments == 5
    assert result.complete
    assert comment_ids() == kept
    assert all(facts(comment_id) == (None, None, None) for comment_id in kept)


def test_a_run_out_of_time_does_a_batch_per_rule_and_leaves_the_rest(
    context: None, store: Store
) -> None:
    old = timedelta(days=400)
    for status in (SPAM, REJECTED, APPROVED):
        for _ in range(5):
            store(status, old)

    first = apply_retention(NOW, batch_size=2, time_budget=timedelta(0))

    assert (first.spam.comments, first.rejected.comments, first.client_facts.comments) == (2, 2, 2)
    assert not first.complete
    assert first.summary().endswith("; more is left for the next run")
    rest = apply_retention(NOW, batch_size=2)
    assert (rest.spam.comments, rest.rejected.comments) == (3, 3)
    assert rest.complete
    assert len(comment_ids()) == 5


def test_replies_to_deleted_spam_stay_top_level_and_their_page_is_drawn_again(
    context: None, store: Store
) -> None:
    old = timedelta(days=60)
    parent = store(SPAM, old, moderated=old)
    reply = store(APPROVED, old, parent_id=parent)
    pending_reply = store(PENDING, old, page="/other", parent_id=store(REJECTED, old * 2))
    lonely_spam = store(SPAM, old, page="/third")
    with write_transaction():
        db.session.execute(sa.update(Page).values(url="https://news.example/x", title="X"))
    before = {
        page.key: (page.version, page.approved_count, page.url, page.title) for page in pages()
    }

    result = apply_retention(NOW)

    assert (result.spam.comments, result.rejected.comments) == (2, 1)
    assert comment_ids() == {reply, pending_reply}
    assert parent_of(reply) is None
    assert parent_of(pending_reply) is None
    after = {
        page.key: (page.version, page.approved_count, page.url, page.title) for page in pages()
    }
    thread = "/2025/10/us-china-talks"
    # Readers see the approved reply's parent_id change: its page gets a new version; the
    # counts and descriptions (approved comments only) stay, as do pages readers see no
    # change of.
    assert after[thread] == (before[thread][0] + 1, *before[thread][1:])
    assert after["/other"] == before["/other"]
    assert after["/third"] == before["/third"]
    assert lonely_spam not in comment_ids()


def test_a_deletion_takes_subscriptions_keeps_import_records_and_writes_no_events(
    context: None, store: Store
) -> None:
    spam = store(SPAM, timedelta(days=60))
    site_id = db.session.scalar(sa.select(Comment.site_id).where(Comment.id == spam))
    assert site_id is not None
    with write_transaction():
        subscriber = Subscriber(site_id=site_id, email="reader@example.com")
        db.session.add(subscriber)
        db.session.flush()
        db.session.add(Subscription(subscriber_id=subscriber.id, comment_id=spam))
        db.session.add(
            ImportRecord(
                site_id=site_id, source="wordpress", source_id="42", comment_id=spam, run="r1"
            )
        )
        db.session.add(
            Delivery(site_id=site_id, channel="mail", kind="reply", comment_id=spam, payload={})
        )
    events = rows(ModerationEvent), rows(OutboxEvent)

    assert apply_retention(NOW).spam.comments == 1

    assert spam not in comment_ids()
    assert rows(Subscription) == []
    assert len(rows(Subscriber)) == 1
    [record] = db.session.scalars(sa.select(ImportRecord))
    # Kept, so that importing the same file again does not bring the comment back.
    assert (record.source_id, record.comment_id) == ("42", None)
    [kept] = db.session.scalars(sa.select(Delivery))
    assert kept.comment_id == spam
    assert (rows(ModerationEvent), rows(OutboxEvent)) == events


def test_runs_at_once_share_the_work_and_delete_each_comment_once(
    app: Flask, context: None, store: Store
) -> None:
    for _ in range(40):
        store(SPAM, timedelta(days=60))

    def run() -> RetentionResult:
        with app.app_context():
            try:
                return apply_retention(NOW, batch_size=5)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(3) as pool:
        results = [future.result() for future in [pool.submit(run) for _ in range(3)]]

    assert sum(result.spam.comments for result in results) == 40
    assert comment_ids() == set()


def test_the_worker_applies_retention_at_its_start_then_daily(
    app: Flask, context: None, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    assert (timedelta(days=1), retention.apply_daily) in delivery._PERIODIC
    now = utcnow()
    first = store(SPAM, timedelta(days=31), at=now)
    worker = Worker(app, name="box:1")
    caplog.set_level(logging.INFO, logger=retention.__name__)

    worker._run_jobs()

    assert first not in comment_ids()
    assert [
        record.getMessage() for record in caplog.records if record.name == retention.log.name
    ] == [
        "retention: deleted 1 spam comment (older than 30 days) and 0 rejected "
        "(older than 90 days); cleared client facts of 0 comments (older than 90 days)"
    ]
    [job] = [job for job in worker._jobs if job.job is retention.apply_daily]
    assert timedelta(hours=23) < job.due - now <= timedelta(days=1, minutes=1)
    # Not due again until a day has passed.
    second = store(SPAM, timedelta(days=31), at=now)
    worker._run_jobs()
    assert second in comment_ids()
    job.due = utcnow()
    worker._run_jobs()
    assert second not in comment_ids()


def test_a_one_off_worker_run_applies_retention(
    app: Flask, store: Store, deliver: Callable[[], None]
) -> None:
    spam = store(SPAM, timedelta(days=31), at=utcnow())
    deliver()
    with app.app_context():
        assert spam not in comment_ids()
        db.session.remove()


def test_the_command_says_what_would_go_then_what_went(
    app: Flask, runner: FlaskCliRunner, store: Store
) -> None:
    now = utcnow()
    spam = store(SPAM, timedelta(days=31), at=now)
    store(REJECTED, timedelta(days=91), at=now)
    store(APPROVED, timedelta(days=91), at=now)

    dry = runner.invoke(args=["retention", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output == (
        "would delete 1 spam comment (older than 30 days) and 1 rejected (older than 90 days); "
        "would clear client facts of 1 comment (older than 90 days)\n"
    )
    with app.app_context():
        assert spam in comment_ids()
        db.session.remove()

    app.config["RETENTION_CLIENT_FACTS_DAYS"] = 0
    done = runner.invoke(args=["retention"])
    assert done.exit_code == 0, done.output
    assert done.output == (
        "deleted 1 spam comment (older than 30 days) and 1 rejected (older than 90 days); "
        "client facts are kept (COMMENTSVC_RETENTION_CLIENT_FACTS_DAYS is 0)\n"
    )
    with app.app_context():
        assert len(comment_ids()) == 1
        db.session.remove()

"""Retention (DESIGN §9): old spam and rejected comments are deleted, and old comments lose
their client facts; the worker applies it daily, ``commentsvc retention`` on demand.

Three rules, each off when its setting is ``0``:

- ``RETENTION_SPAM_DAYS``: a ``spam`` comment goes that long after it was last moderated
  (``moderated_at``; a comment stored as spam on submission was never moderated, so its
  ``created_at``);
- ``RETENTION_REJECTED_DAYS``: the same for ``rejected`` comments;
- ``RETENTION_CLIENT_FACTS_DAYS``: a comment that old (by ``created_at``) keeps no IP prefix,
  user agent or client hash. The hash is what the stored rate limits count a client by, over
  the limits' periods (an hour by default), so clearing it after days loses no count.

What a deletion keeps consistent, all in the batch's transaction: replies to a deleted
comment stay, top-level (their ``parent_id`` cleared first, which is what the foreign key
would do, so that the pages whose *approved* replies changed are known); those pages get a
new thread version, since readers see a reply's ``parent_id``. Nothing else readers see
changes: counts, threads, feeds and a page's URL and title are made of approved comments
only (:mod:`~commentsvc.services.visibility`, :mod:`~commentsvc.services.pages`). The
foreign keys delete the comment's reply subscriptions and detach its import records (which
stay, so that an import run again does not bring the comment back); deliveries, outbox and
audit events keep their comment id without a foreign key. No audit or outbox event is
written per comment: the worker logs one line per run instead.

Work is done in batches of :data:`BATCH_SIZE` comments, each its own short write transaction,
so that SQLite's one writer is never held for long and PostgreSQL never locks a large share
of the table at once. Several workers may run it at once: each batch locks its rows with
``SKIP LOCKED`` and re-checks the rule on the locked rows, so two runs never wait on each
other, delete nothing twice and cannot deadlock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
from flask import current_app

from commentsvc.delivery import periodic
from commentsvc.extensions import db, read_connection, write_transaction
from commentsvc.models import Comment, CommentStatus, Page, utcnow
from commentsvc.services.outbox import stale_after
from commentsvc.settings import ENV_PREFIX

log = logging.getLogger(__name__)

#: Comments deleted or cleared by one statement, in one write transaction.
BATCH_SIZE = 1000
#: How often the worker applies the rules.
EVERY = timedelta(days=1)


@dataclass(frozen=True)
class RuleOutcome:
    """What one rule did, or would do: how many comments, older than ``days`` (``0``: the
    rule is off and keeps them)."""

    days: int
    comments: int = 0


@dataclass(frozen=True)
class RetentionResult:
    """What a run did (or, in a dry run, would do), rule by rule."""

    spam: RuleOutcome
    rejected: RuleOutcome
    client_facts: RuleOutcome
    dry_run: bool = False
    #: False when the run stopped at its time budget with comments left for the next run.
    complete: bool = True

    def summary(self) -> str:
        """One line saying what went (or would go), and which rules keep everything."""
        would = "would " if self.dry_run else ""
        delete, clear = ("delete", "clear") if self.dry_run else ("deleted", "cleared")
        clauses = []
        deleting = [
            (label, outcome)
            for label, outcome in (("spam", self.spam), ("rejected", self.rejected))
            if outcome.days
        ]
        if deleting:
            (label, first), *rest = deleting
            text = f"{would}{delete} {_comments(first.comments, label)} ({_older(first.days)})"
            for label, outcome in rest:
                text += f" and {outcome.comments} {label} ({_older(outcome.days)})"
            clauses.append(text)
        for label, outcome, setting in (
            ("spam comments are", self.spam, "RETENTION_SPAM_DAYS"),
            ("rejected comments are", self.rejected, "RETENTION_REJECTED_DAYS"),
            ("client facts are", self.client_facts, "RETENTION_CLIENT_FACTS_DAYS"),
        ):
            if not outcome.days:
                clauses.append(f"{label} kept ({ENV_PREFIX}{setting} is 0)")
        if self.client_facts.days:
            clauses.append(
                f"{would}{clear} client facts of {_comments(self.client_facts.comments)} "
                f"({_older(self.client_facts.days)})"
            )
        if not self.complete:
            clauses.append("more is left for the next run")
        return "; ".join(clauses)


def _comments(count: int, label: str = "") -> str:
    noun = "comment" if count == 1 else "comments"
    return f"{count} {label} {noun}" if label else f"{count} {noun}"


def _older(days: int) -> str:
    return f"older than {days} day{'' if days == 1 else 's'}"


def _expired(status: CommentStatus, cutoff: datetime) -> sa.ColumnElement[bool]:
    """Comments of ``status`` last moderated (else created) before ``cutoff``."""
    return sa.and_(
        Comment.status == status,
        sa.func.coalesce(Comment.moderated_at, Comment.created_at) < cutoff,
    )


def _with_old_client_facts(cutoff: datetime) -> sa.ColumnElement[bool]:
    """Comments created before ``cutoff`` that still hold a client fact."""
    return sa.and_(
        Comment.created_at < cutoff,
        sa.or_(
            Comment.ip_prefix.is_not(None),
            Comment.user_agent.is_not(None),
            Comment.client_hash.is_not(None),
        ),
    )


def _delete(ids: Sequence[int]) -> int:
    """Delete the (locked) comments ``ids``, their replies made top-level: how many went."""
    detached = db.session.execute(
        sa.update(Comment)
        .where(Comment.parent_id.in_(ids))
        # Housekeeping, not a change of the reply: its updated_at stays.
        .values(parent_id=None, updated_at=Comment.updated_at)
        .returning(Comment.page_id, Comment.status)
        .execution_options(synchronize_session=False)
    ).all()
    deleted = db.session.execute(
        sa.delete(Comment).where(Comment.id.in_(ids)).execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    # After the comments, in id order: the order moderation locks comments, then pages in.
    for page_id in sorted({page for page, status in detached if status == CommentStatus.APPROVED}):
        db.session.execute(
            sa.update(Page).where(Page.id == page_id).values(version=Page.version + 1)
        )
    return int(deleted)


def _clear_client_facts(ids: Sequence[int]) -> int:
    """Clear the client facts of the (locked) comments ``ids``: how many."""
    cleared = db.session.execute(
        sa.update(Comment)
        .where(Comment.id.in_(ids))
        # Housekeeping, not an edit: updated_at stays.
        .values(ip_prefix=None, user_agent=None, client_hash=None, updated_at=Comment.updated_at)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return int(cleared)


def _in_batches(
    rule: sa.ColumnElement[bool],
    deletes: bool,
    batch_size: int,
    deadline: float | None,
) -> tuple[int, bool]:
    """Delete the comments ``rule`` selects (or clear their client facts), a batch per
    write transaction: how many, and whether none is left (False: stopped at ``deadline``,
    a :func:`time.monotonic` time, after at least one batch).

    Candidates are read outside any transaction (no write lock held while the table is
    scanned), in id order after the last batch, so rows another run holds locked are passed
    over rather than found again and again; the batch then locks the candidates that still
    match the rule. Clearing locks ``FOR NO KEY UPDATE``, which leaves a new reply free to
    reference the comment meanwhile.
    """
    act = _delete if deletes else _clear_client_facts
    done = 0
    after = 0
    while True:
        with read_connection() as connection:
            ids = (
                connection.execute(
                    sa.select(Comment.id)
                    .where(rule, Comment.id > after)
                    .order_by(Comment.id)
                    .limit(batch_size)
                )
                .scalars()
                .all()
            )
        if not ids:
            return done, True
        with write_transaction():
            locked = db.session.scalars(
                sa.select(Comment.id)
                .where(Comment.id.in_(ids), rule)
                .order_by(Comment.id)
                .with_for_update(skip_locked=True, key_share=not deletes)
            ).all()
            if locked:
                done += act(locked)
        if len(ids) < batch_size:
            return done, True
        after = ids[-1]
        if deadline is not None and time.monotonic() >= deadline:
            return done, False


def _count(rule: sa.ColumnElement[bool]) -> int:
    with read_connection() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(Comment).where(rule)).scalar()
            or 0
        )


class _Run:
    """One application of the rules: the batches' size and time, and whether all was done."""

    def __init__(self, dry_run: bool, batch_size: int, time_budget: timedelta | None) -> None:
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.deadline = (
            None if time_budget is None else time.monotonic() + time_budget.total_seconds()
        )
        self.complete = True
        #: What the rules so far delete: a dry run counts no later rule's work on them.
        self.deleted: list[sa.ColumnElement[bool]] = []

    def rule(
        self,
        days: int,
        selects: Callable[[datetime], sa.ColumnElement[bool]],
        now: datetime,
        *,
        deletes: bool,
    ) -> RuleOutcome:
        """Apply (or count) one rule of ``days`` (``0``: off) as of ``now``: it deletes the
        comments it selects, or clears their client facts."""
        if not days:
            return RuleOutcome(0)
        rule = selects(now - timedelta(days=days))
        if self.dry_run:
            left = sa.and_(rule, sa.not_(sa.or_(*self.deleted))) if self.deleted else rule
            if deletes:
                self.deleted.append(rule)
            return RuleOutcome(days, _count(left))
        count, finished = _in_batches(rule, deletes, self.batch_size, self.deadline)
        self.complete = self.complete and finished
        return RuleOutcome(days, count)


def apply_retention(
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    time_budget: timedelta | None = None,
) -> RetentionResult:
    """Apply the retention settings as of ``now``: delete expired spam and rejected comments
    and clear old client facts, or with ``dry_run`` only count what would go.

    With a ``time_budget``, no further batch starts once it is spent (every rule that is on
    still gets one batch); the result says whether anything was left.
    """
    now = now or utcnow()
    config = current_app.config
    run = _Run(dry_run, batch_size, time_budget)
    spam = run.rule(
        int(config["RETENTION_SPAM_DAYS"]),
        partial(_expired, CommentStatus.SPAM),
        now,
        deletes=True,
    )
    rejected = run.rule(
        int(config["RETENTION_REJECTED_DAYS"]),
        partial(_expired, CommentStatus.REJECTED),
        now,
        deletes=True,
    )
    client_facts = run.rule(
        int(config["RETENTION_CLIENT_FACTS_DAYS"]), _with_old_client_facts, now, deletes=False
    )
    return RetentionResult(spam, rejected, client_facts, dry_run=dry_run, complete=run.complete)


@periodic(EVERY)
def apply_daily() -> None:
    """The worker's daily run (the first at its start), logged in one line.

    It stops after a third of ``WORKER_STALE_SECONDS`` and leaves the rest for the next day:
    the worker beats only between jobs, and a run on a large backlog (the first after an
    upgrade) must not make it look dead, which would hand its deliveries to another worker
    and fail ``commentsvc worker --check``.
    """
    result = apply_retention(time_budget=stale_after() / 3)
    log.info("retention: %s", result.summary())

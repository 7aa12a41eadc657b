"""Moderators hear of new comments that await them, by mail (DESIGN §8).

- **Planning** (in the outbox's dispatch transaction): a ``comment.submitted`` event of a
  comment that awaits moderation (pending: not stored as spam, not approved at once) becomes
  a ``moderator_comment`` delivery for every active moderator of its site whose ``notify``
  is not ``off``. With ``each`` it is due at once while the moderator got fewer than
  ``NOTIFY_MAX_PER_HOUR`` such mails in the last hour; past that, and always with
  ``digest``, it is held for a digest.
- **Digests** (a periodic job of the worker): once a moderator's oldest held mail is
  ``NOTIFY_DIGEST_MINUTES`` old, their held mails are folded into one ``moderator_digest``
  delivery, in one transaction.
- **Sending** reads everything again: a comment moderated or deleted meanwhile, or a
  moderator who left its site, turned notifications off or was deactivated, is not mailed
  about. Each mail carries one-click links (:mod:`commentsvc.services.mail_links`).

What a commenter wrote reaches a mail only as text: headers pass
:func:`commentsvc.mail.header_text`, the HTML part escapes everything, single-line fields are
made one line, and the body is quoted (``> ``) in the text part, so that it cannot pass for
the mail's own words or links.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from commentsvc.delivery import periodic
from commentsvc.extensions import db, read_connection, write_transaction
from commentsvc.mail import (
    compose,
    header_text,
    mail_enabled,
    public_url,
)
from commentsvc.models import (
    CommentStatus,
    Delivery,
    DeliveryState,
    ModerationAction,
    Moderator,
    NotifyMode,
    OutboxEvent,
    moderator_sites,
    utcnow,
)
from commentsvc.notifications.links import link_url
from commentsvc.notifications.sending import deliver
from commentsvc.panel.helpers import ascii_url, reason_label, site_url
from commentsvc.services.events import SYSTEM_ACTOR, EventType
from commentsvc.services.mail_links import comment_rows, create_links
from commentsvc.services.outbox import Outcome, Planned, once_per_batch, planner, sender

MAIL = "mail"
MODERATOR_COMMENT = "moderator_comment"
MODERATOR_DIGEST = "moderator_digest"
#: Most comments one digest lists, each with its links; it counts the rest and links to
#: the queue.
DIGEST_LISTED = 50
#: How often the worker looks for digests that are due.
DIGEST_EVERY = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
#: Mails that count against the hourly cap: all but those not sent as such (held for a
#: digest, folded into one, or skipped). Named rather than excluded, so that the lookup
#: uses all of ``ix_deliveries_moderator`` (moderator, state, time): with ``NOT IN`` it
#: stopped at the moderator and read their whole history, once per new comment.
_MAILED = tuple(
    state for state in DeliveryState if state not in (DeliveryState.HELD, DeliveryState.SKIPPED)
)
#: Longest line made of a commenter's single-line field (a website may be 2,000 characters).
_LONGEST_LINE = 2000


# -- planning -------------------------------------------------------------------------


def _watchers(site_id: int) -> Sequence[Moderator]:
    """The active moderators of a site who want mails of new comments, as stored now (the
    worker's session may hold them from an earlier transaction)."""
    of_site = sa.select(moderator_sites.c.moderator_id).where(moderator_sites.c.site_id == site_id)
    return db.session.scalars(
        sa.select(Moderator)
        .where(
            Moderator.is_active,
            Moderator.notify != NotifyMode.OFF,
            sa.or_(Moderator.is_admin, Moderator.all_sites, Moderator.id.in_(of_site)),
        )
        .order_by(Moderator.id)
        .execution_options(populate_existing=True)
    ).all()


def mailed_last_hour_statement(
    moderator_ids: Sequence[int], now: datetime, cap: int
) -> sa.Select[Any] | sa.CompoundSelect:
    """How many mails of new comments each of these moderators got in the last hour, counted
    up to ``cap``: whether they are under the cap is all planning asks, and counting a whole
    hour's mails at a high cap read every one of them again for each new comment."""
    counts = [
        sa.select(
            sa.literal(moderator_id, sa.Integer).label("moderator_id"),
            sa.func.count().label("mailed"),
        ).select_from(
            sa.select(Delivery.id)
            .where(
                Delivery.moderator_id == moderator_id,
                Delivery.kind == MODERATOR_COMMENT,
                Delivery.created_at > now - _HOUR,
                Delivery.state.in_(_MAILED),
            )
            .limit(cap)
            .subquery()
        )
        for moderator_id in moderator_ids
    ]
    return counts[0] if len(counts) == 1 else sa.union_all(*counts)


def _mailed_last_hour(moderator_ids: Sequence[int], now: datetime, cap: int) -> dict[int, int]:
    counted = db.session.execute(mailed_last_hour_statement(moderator_ids, now, cap))
    return {moderator_id: int(count) for moderator_id, count in counted}


def awaits_moderation(event: OutboxEvent) -> bool:
    """Whether an event is a comment a moderator should hear of: submitted and pending (not
    stored as spam, not approved at once), or sent back to pending by the system (its
    author edited it after it was approved, DESIGN §10)."""
    if event.data.get("status") != CommentStatus.PENDING.value:
        return False
    return event.type == EventType.SUBMITTED.value or (
        event.type == EventType.REQUEUED.value and event.actor == SYSTEM_ACTOR
    )


@planner
def plan_moderator_mails(event: OutboxEvent) -> list[Planned]:
    """A mail of a new pending comment for each moderator of its site who wants one: due
    now (``each``, under the hourly cap) or held for a digest."""
    if not awaits_moderation(event) or not mail_enabled():
        return []
    watchers = once_per_batch(("watchers", event.site_id), lambda: _watchers(event.site_id))
    if not watchers:
        return []
    cap = int(current_app.config["NOTIFY_MAX_PER_HOUR"])
    # Per moderator, for the whole batch: a moderator may watch several sites.
    mailed: dict[int, int] = once_per_batch("moderators mailed", dict)
    unknown = [moderator.id for moderator in watchers if moderator.id not in mailed]
    if unknown:
        mailed.update(dict.fromkeys(unknown, 0) | _mailed_last_hour(unknown, utcnow(), cap))
    planned = []
    for moderator in watchers:
        due = moderator.notify == NotifyMode.EACH and mailed[moderator.id] < cap
        if due:
            mailed[moderator.id] += 1
        planned.append(
            Planned(
                channel=MAIL,
                kind=MODERATOR_COMMENT,
                recipient=moderator.email,
                moderator_id=moderator.id,
                comment_id=event.comment_id,
                state=DeliveryState.PENDING if due else DeliveryState.HELD,
            )
        )
    return planned


# -- digests --------------------------------------------------------------------------


def _not_mailing(moderator: Moderator | None) -> str | None:
    """Why a moderator gets no mail of new comments now, or None."""
    if moderator is None:
        return "the moderator was deleted"
    if not moderator.is_active:
        return "the moderator is inactive"
    if moderator.notify == NotifyMode.OFF:
        return "the moderator turned notifications off"
    if not mail_enabled():
        return "mail is off (COMMENTSVC_SMTP_URL is not set)"
    return None


def _set_aside(held: Iterable[Delivery], reason: str, now: datetime) -> None:
    for delivery in held:
        delivery.state = DeliveryState.SKIPPED
        delivery.last_error = reason
        delivery.finished_at = now


def _fold(moderator_id: int, now: datetime, cutoff: datetime) -> bool:
    """Fold a moderator's held mails into one digest, if the oldest is older than
    ``cutoff`` (still: another worker may have folded them meanwhile); whether one was made.

    A digest may list comments of several sites; it is filed under the site of the oldest.
    """
    with write_transaction():
        held = db.session.scalars(
            sa.select(Delivery)
            .where(
                Delivery.moderator_id == moderator_id,
                Delivery.kind == MODERATOR_COMMENT,
                Delivery.state == DeliveryState.HELD,
            )
            .order_by(Delivery.created_at, Delivery.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        if not held or held[0].created_at > cutoff:
            return False
        moderator = db.session.get(Moderator, moderator_id, populate_existing=True)
        reason = _not_mailing(moderator)
        if moderator is None or reason is not None:
            _set_aside(held, reason or "", now)
            return False
        ids = [delivery.comment_id for delivery in held if delivery.comment_id is not None]
        digest = Delivery(
            site_id=held[0].site_id,
            channel=MAIL,
            kind=MODERATOR_DIGEST,
            recipient=moderator.email,
            moderator_id=moderator.id,
            payload={"comment_ids": list(dict.fromkeys(ids))},
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        db.session.add(digest)
        db.session.flush()
        _set_aside(held, f"in digest {digest.id}", now)
        return True


@periodic(DIGEST_EVERY)
def make_digests(now: datetime | None = None) -> int:
    """Fold the held mails of every moderator whose oldest is ``NOTIFY_DIGEST_MINUTES``
    old into one digest each: how many digests were made."""
    if not mail_enabled():
        return 0  # held mails wait for mail to be configured again
    now = now or utcnow()
    cutoff = now - timedelta(minutes=int(current_app.config["NOTIFY_DIGEST_MINUTES"]))
    with read_connection() as connection:
        moderator_ids = list(connection.execute(digests_due_statement(cutoff)).scalars())
    return sum(_fold(moderator_id, now, cutoff) for moderator_id in moderator_ids)


def digests_due_statement(cutoff: datetime) -> sa.Select[tuple[int]]:
    """The moderators whose oldest held mail is older than ``cutoff``: for each moderator,
    their held mails on ``ix_deliveries_moderator``. Grouping the held mails of the whole
    table read every delivery there is, once a minute: on PostgreSQL a parallel scan of
    both cores of a small machine, longer as the table grew."""
    oldest_held = (
        sa.select(sa.func.min(Delivery.created_at))
        .where(
            Delivery.moderator_id == Moderator.id,
            Delivery.state == DeliveryState.HELD,
            Delivery.kind == MODERATOR_COMMENT,
        )
        .scalar_subquery()
    )
    return sa.select(Moderator.id).where(oldest_held <= cutoff).order_by(Moderator.id)


# -- sending --------------------------------------------------------------------------


def _line(value: object) -> str:
    """A commenter's single-line field as one line: no line breaks or control characters."""
    return header_text(value, _LONGEST_LINE)


def _quoted(text: str) -> str:
    """A comment's text quoted for the plain-text part, every line marked ``> ``."""
    return "\n".join(f"> {line}".rstrip() for line in text.splitlines() or [""])


def _panel_url(endpoint: str, **values: Any) -> str:
    """The external URL of a panel page (the worker has no request to build URLs from)."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return public_url(path)


@dataclass(frozen=True)
class MailedComment:
    """One comment as a mail shows it: the commenter's fields made safe for a mail, and its
    links (one-click approve, reject and spam, and the panel's page)."""

    id: int
    site_name: str
    #: The page's title, else its key.
    page: str
    #: A link to the page, only when it is on one of the site's origins.
    page_url: str | None
    author_name: str
    author_email: str
    author_url: str | None
    body: str
    quoted_body: str
    #: The abuse rules' reasons for holding it, in words.
    reasons: list[str]
    approve_url: str
    reject_url: str
    spam_url: str
    panel_url: str


def _mailed(row: Any, tokens: Mapping[ModerationAction, str]) -> MailedComment:
    website = ascii_url(row.author_url) or row.author_url
    return MailedComment(
        id=row.id,
        site_name=_line(row.site_name),
        page=_line(row.page_title or row.page_key),
        page_url=site_url(row.page_url, row.site_origins),
        author_name=_line(row.author_name),
        author_email=_line(row.author_email),
        author_url=_line(website) if website else None,
        body=row.body,
        quoted_body=_quoted(row.body),
        reasons=[reason_label(code) for code in row.spam_reasons.split()],
        approve_url=link_url(tokens[ModerationAction.APPROVE]),
        reject_url=link_url(tokens[ModerationAction.REJECT]),
        spam_url=link_url(tokens[ModerationAction.SPAM]),
        panel_url=_panel_url("panel.detail", comment_id=row.id),
    )


def _common(moderator: Moderator) -> dict[str, Any]:
    """What every moderator mail says besides its comments."""
    return {
        "moderator": moderator,
        "link_hours": int(current_app.config["MAIL_LINK_HOURS"]),
        "settings_url": _panel_url("panel.my_settings"),
        "queue_url": _panel_url("panel.queue"),
    }


def _send(template: str, to: str, context: Mapping[str, Any]) -> Outcome:
    """Compose and send one mail: delivered, retried (4xx, unreachable) or failed (5xx)."""
    return deliver(compose(template, to, context))


def _in_scope(moderator: Moderator, site_id: int) -> bool:
    scope = moderator.site_scope()
    return scope is None or site_id in scope


@sender(MODERATOR_COMMENT)
def send_comment_mail(delivery: Delivery, event: OutboxEvent | None) -> Outcome:
    """The mail of one new comment, unless it was moderated meanwhile or the moderator no
    longer wants or may have it."""
    comment_id = delivery.comment_id
    row = comment_rows([comment_id]).get(comment_id) if comment_id is not None else None
    if row is None:
        return Outcome.skipped("the comment was deleted before the mail was sent")
    if row.status != CommentStatus.PENDING:
        who = f" by {row.moderated_by_email}" if row.moderated_by_email else ""
        return Outcome.skipped(f"already moderated: {row.status.value}{who}")
    moderator = db.session.get(Moderator, delivery.moderator_id) if delivery.moderator_id else None
    reason = _not_mailing(moderator)
    if moderator is None or reason is not None:
        return Outcome.skipped(reason or "")
    if not _in_scope(moderator, row.site_id):
        return Outcome.skipped("the moderator no longer moderates the site")
    tokens = create_links(moderator.id, [row.id])
    context = {**_common(moderator), "comment": _mailed(row, tokens[row.id])}
    return _send("moderator_comment", moderator.email, context)


def _comment_ids(payload: Mapping[str, object]) -> list[int]:
    ids = payload.get("comment_ids")
    return [value for value in ids if isinstance(value, int)] if isinstance(ids, list) else []


@sender(MODERATOR_DIGEST)
def send_digest(delivery: Delivery, event: OutboxEvent | None) -> Outcome:
    """One mail listing the comments of a digest that still await the moderator, and how
    many were moderated meanwhile; none if no comment is left."""
    moderator = db.session.get(Moderator, delivery.moderator_id) if delivery.moderator_id else None
    reason = _not_mailing(moderator)
    if moderator is None or reason is not None:
        return Outcome.skipped(reason or "")
    ids = _comment_ids(delivery.payload)
    rows = comment_rows(ids)
    pending = [rows[i] for i in ids if i in rows and rows[i].status == CommentStatus.PENDING]
    waiting = [row for row in pending if _in_scope(moderator, row.site_id)]
    moderated = len(ids) - len(pending)
    if not waiting:
        return Outcome.skipped(f"nothing left to moderate: {moderated} of {len(ids)} moderated")
    listed = waiting[:DIGEST_LISTED]
    tokens = create_links(moderator.id, [row.id for row in listed])
    context = {
        **_common(moderator),
        "comments": [_mailed(row, tokens[row.id]) for row in listed],
        "waiting": len(waiting),
        "unlisted": len(waiting) - len(listed),
        "moderated": moderated,
        "sites": sorted({_line(row.site_name) for row in waiting}),
    }
    return _send("moderator_digest", moderator.email, context)

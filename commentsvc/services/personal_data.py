"""Personal data of commenters (DESIGN §9): everything stored about one address, as JSON,
and its erasure. The CLI, the moderation API (administrators) and the commenter's own
mailed link all come here.

**Whose data.** An address matches whatever its case: the comments store the address as
email-validator normalized it (the domain in lower case), imported ones as their file had
it, and no mail provider tells ``Ann@`` from ``ann@``.

**What erasure does,** in one transaction, on every comment of the address (on one site,
or on all):

- the name becomes ``Anonymous``; email, website, IP prefix, user agent, the rate limits'
  client hash and the Idempotency-Key are cleared, and the reply opt-in is off;
  ``delete_comments`` deletes the comments instead (replies to them stay, top-level);
- the audit log records it (``edit`` or ``delete``, note ``personal data erased``), and
  the notes of the comments' earlier audit events are cleared: a moderator's note may quote
  the author; who acted and when stays;
- the outbox events of those comments keep no author (nor text, when deleted), so a
  webhook call not yet sent carries none; mails not yet sent to the address are not sent,
  and no delivery keeps the address;
- the address's reply subscriptions, and its personal-data requests, are deleted;
- the thread of each page is drawn again (its cached version is replaced).

A blocklist entry naming the address stays: it is the site's rule, written by a moderator,
not the commenter's data (``commentsvc blocklist remove`` lifts it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from commentsvc.extensions import db, write_transaction
from commentsvc.models import (
    Comment,
    Delivery,
    DeliveryState,
    ModerationAction,
    ModerationEvent,
    Moderator,
    OutboxEvent,
    Page,
    PersonalDataRequest,
    Site,
    Subscriber,
    Subscription,
    utcnow,
)
from commentsvc.services.errors import Invalid
from commentsvc.services.moderation import Changes

#: The name an erased author is shown with.
ANONYMOUS = "Anonymous"
#: The audit note of an erasure.
ERASED_NOTE = "personal data erased"
#: The fields of an outbox event's comment that tell who wrote it, and what they become.
_AUTHOR_FIELDS: dict[str, Any] = {
    "author_name": ANONYMOUS,
    "author_email": "",
    "author_url": None,
    "ip_prefix": None,
    "user_agent": None,
}
#: What an outbox event of a deleted comment loses besides: its text.
_TEXT_FIELDS: dict[str, Any] = {"body": "", "body_html": ""}
#: Comments handled per statement (the ``IN`` lists stay short).
CHUNK = 500


def address(value: object) -> str:
    """``value`` as the comments store an address; Invalid (on ``email``) otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid.on("email", "An email address is required.")
    try:
        info = validate_email(
            value.strip(), check_deliverability=False, allow_smtputf8=True, strict=True
        )
    except EmailNotValidError as error:
        raise Invalid.on("email", str(error)) from None
    return info.normalized


def same_address(column: Any, email: str) -> sa.ColumnElement[bool]:
    """``column`` holds ``email``, whatever the case of its letters."""
    return sa.func.lower(column) == email.lower()


def _comments_of(email: str, site_id: int | None) -> sa.Select[Any]:
    statement = sa.select(Comment).where(same_address(Comment.author_email, email))
    if site_id is not None:
        statement = statement.where(Comment.site_id == site_id)
    return statement


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _comment_json(comment: Comment, site: str, page: Page) -> dict[str, Any]:
    return {
        "id": comment.id,
        "site": site,
        "page": {"key": page.key, "url": page.url, "title": page.title},
        "parent_id": comment.parent_id,
        "status": comment.status.value,
        "body": comment.body,
        "author_name": comment.author_name,
        "author_email": comment.author_email,
        "author_url": comment.author_url,
        "notify_replies": comment.notify_replies,
        "ip_prefix": comment.ip_prefix,
        "user_agent": comment.user_agent,
        "created_at": _time(comment.created_at),
        "updated_at": _time(comment.updated_at),
        "moderated_at": _time(comment.moderated_at),
    }


def export(email: str, site_id: int | None = None) -> dict[str, Any]:
    """Every comment, reply subscription and mail of ``email`` (on one site, or all), as
    the JSON document a commenter downloads: nothing of anyone else."""
    email = address(email)
    slugs = dict(db.session.execute(sa.select(Site.id, Site.slug)).tuples().all())
    rows = db.session.execute(
        _comments_of(email, site_id)
        .add_columns(Page)
        .join(Page, Page.id == Comment.page_id)
        .order_by(Comment.id)
    ).all()
    comments = [_comment_json(comment, slugs[comment.site_id], page) for comment, page in rows]
    subscribers = db.session.scalars(
        _scoped(sa.select(Subscriber), Subscriber.site_id, site_id)
        .where(same_address(Subscriber.email, email))
        .order_by(Subscriber.id)
    ).all()
    subscriptions = []
    for subscriber in subscribers:
        comment_ids = db.session.execute(
            sa.select(Subscription.comment_id, Subscription.unsubscribed_at)
            .where(Subscription.subscriber_id == subscriber.id)
            .order_by(Subscription.comment_id)
        ).all()
        subscriptions.append(
            {
                "site": slugs[subscriber.site_id],
                "confirmed_at": _time(subscriber.confirmed_at),
                "unsubscribed_at": _time(subscriber.unsubscribed_at),
                "comments": [
                    {"comment_id": row.comment_id, "unsubscribed_at": _time(row.unsubscribed_at)}
                    for row in comment_ids
                ],
            }
        )
    mails = db.session.execute(
        _scoped(
            sa.select(Delivery.site_id, Delivery.kind, Delivery.state, Delivery.created_at),
            Delivery.site_id,
            site_id,
        )
        .where(Delivery.channel == "mail", same_address(Delivery.recipient, email))
        .order_by(Delivery.id)
    ).all()
    db.session.rollback()  # a read: no transaction stays open
    return {
        "email": email,
        "exported_at": _time(utcnow()),
        "comments": comments,
        "reply_subscriptions": subscriptions,
        "mails": [
            {
                "site": slugs[mail.site_id],
                "kind": mail.kind,
                "state": mail.state.value,
                "created_at": _time(mail.created_at),
            }
            for mail in mails
        ],
    }


def _scoped(statement: sa.Select[Any], column: Any, site_id: int | None) -> sa.Select[Any]:
    return statement if site_id is None else statement.where(column == site_id)


@dataclass(frozen=True)
class Erased:
    """What an erasure did."""

    email: str
    #: Comments anonymized, or deleted with ``deleted``.
    comments: int
    deleted: bool
    #: Reply subscriptions ended.
    subscriptions: int
    #: Mails to the address that were still to be sent, and now are not.
    mails_cancelled: int

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "comments": self.comments,
            "deleted_comments": self.deleted,
            "subscriptions": self.subscriptions,
            "mails_cancelled": self.mails_cancelled,
        }

    def summary(self) -> str:
        done = "deleted" if self.deleted else "anonymized"
        return (
            f"{done} {self.comments} comments of {self.email}; ended {self.subscriptions} "
            f"reply subscriptions; cancelled {self.mails_cancelled} mails"
        )


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _anonymize(comment: Comment) -> None:
    comment.author_name = ANONYMOUS
    comment.author_email = ""
    comment.author_url = None
    comment.ip_prefix = None
    comment.user_agent = None
    comment.client_hash = None
    comment.idempotency_key = None
    comment.notify_replies = False


def _redact_events(comment_ids: Sequence[int], deleted: bool) -> None:
    """The outbox events of these comments, without their author (and text, if deleted)."""
    redacted = {**_AUTHOR_FIELDS, **(_TEXT_FIELDS if deleted else {})}
    for chunk in _chunks(comment_ids):
        events = db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.comment_id.in_(chunk))
        ).all()
        for event in events:
            data = dict(event.data)
            data.update({key: value for key, value in redacted.items() if key in data})
            event.data = data


def _forget_mails(email: str, site_id: int | None, now: datetime) -> int:
    """Mails to ``email`` not yet sent are not sent; no delivery keeps the address.
    How many were cancelled."""
    same = same_address(Delivery.recipient, email)
    site = Delivery.site_id == site_id if site_id is not None else sa.true()
    cancelled = db.session.execute(
        sa.update(Delivery)
        .where(same, site, Delivery.state.in_([DeliveryState.PENDING, DeliveryState.HELD]))
        .values(
            state=DeliveryState.SKIPPED,
            last_error=ERASED_NOTE,
            finished_at=now,
            lease_until=None,
            lease_owner=None,
        )
    ).rowcount  # type: ignore[attr-defined]
    db.session.execute(sa.update(Delivery).where(same, site).values(recipient=None))
    return int(cancelled or 0)


def _forget_subscriptions(email: str, site_id: int | None) -> int:
    subscribers = sa.select(Subscriber.id).where(same_address(Subscriber.email, email))
    if site_id is not None:
        subscribers = subscribers.where(Subscriber.site_id == site_id)
    ended = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Subscription)
        .where(Subscription.subscriber_id.in_(subscribers))
    )
    db.session.execute(sa.delete(Subscription).where(Subscription.subscriber_id.in_(subscribers)))
    db.session.execute(sa.delete(Subscriber).where(Subscriber.id.in_(subscribers)))
    return int(ended or 0)


def erase(
    email: str,
    *,
    delete_comments: bool = False,
    site_id: int | None = None,
    moderator: Moderator | None = None,
    actor: str | None = None,
    keep_request: int | None = None,
) -> Erased:
    """Erase the personal data of ``email`` (on one site, or all) as the module says.

    The audit log names ``moderator`` (an administrator of the moderation API), else
    ``actor`` (``commenter`` for their own mailed link, an address at the command line).
    ``keep_request``: the id of the request
    whose link is doing this, which stays (used, without its address) so that the link
    says it was used.
    """
    email = address(email)
    with write_transaction():
        now = utcnow()
        comments = db.session.scalars(
            _comments_of(email, site_id).order_by(Comment.id).with_for_update()
        ).all()
        ids = [comment.id for comment in comments]
        changes = Changes(moderator, actor=actor)
        for comment in comments:
            if delete_comments:
                changes.apply(comment, ModerationAction.DELETE, None, ERASED_NOTE)
            else:
                _anonymize(comment)
                changes.apply(comment, ModerationAction.EDIT, comment.status, ERASED_NOTE)
        changes.finish()
        for chunk in _chunks(ids):
            db.session.execute(
                sa.update(ModerationEvent)
                .where(ModerationEvent.comment_id.in_(chunk), ModerationEvent.note != ERASED_NOTE)
                .values(note=None)
            )
        _redact_events(ids, delete_comments)
        mails_cancelled = _forget_mails(email, site_id, now)
        subscriptions = _forget_subscriptions(email, site_id)
        requests = sa.delete(PersonalDataRequest).where(
            same_address(PersonalDataRequest.email, email)
        )
        if site_id is not None:
            requests = requests.where(PersonalDataRequest.site_id == site_id)
        if keep_request is not None:
            requests = requests.where(PersonalDataRequest.id != keep_request)
            db.session.execute(
                sa.update(PersonalDataRequest)
                .where(PersonalDataRequest.id == keep_request)
                .values(email=None, used_at=now)
            )
        db.session.execute(requests)
    return Erased(email, len(ids), delete_comments, subscriptions, mails_cancelled)

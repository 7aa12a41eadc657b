"""Reply notifications (DESIGN §8): a commenter who ticked *Notify me of follow-up comments
by email.* hears of each approved reply to that comment, once the address is confirmed.

Nothing is mailed before a moderator approves the comment that asked. Then, unless its
address is already confirmed for the site, it gets one confirmation mail, and at most one a
day per address and site: the form must not become a way to mail-bomb someone else's
address. Once confirmed, each approved reply by another address is mailed, with a one-click
unsubscribe link (RFC 8058), at most ``REPLY_MAILS_PER_HOUR`` an hour per address; past
that, the mail is planned as skipped (reason ``hourly cap``). Both senders check again at
send time that what they are about to mail still holds.

The links carry tokens signed with ``SECRET_KEY`` (itsdangerous, a salt per purpose): a
confirmation link names the subscriber and its address and expires after
:data:`CONFIRM_LINK_AGE`; an unsubscribe link names the subscription and its comment and
never expires, since an old mail must still be able to stop the mails. A token's payload
is only base64, and URLs end up in logs: the address is named by a keyed digest, never
written out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy.dialects import postgresql, sqlite

from commentsvc.extensions import db, write_transaction
from commentsvc.mail import (
    compose,
    header_text,
    mail_enabled,
    public_url,
)
from commentsvc.models import (
    Comment,
    CommentStatus,
    Delivery,
    DeliveryState,
    OutboxEvent,
    Site,
    Subscriber,
    Subscription,
    utcnow,
)
from commentsvc.notifications.sending import deliver
from commentsvc.services.errors import NotFound, ServiceError
from commentsvc.services.events import EventType
from commentsvc.services.outbox import Outcome, Planned, planner, sender, write_planned

RowT = TypeVar("RowT")

MAIL = "mail"
CONFIRM_KIND = "reply_confirm"
REPLY_KIND = "reply"
#: How long a confirmation link works.
CONFIRM_LINK_AGE = timedelta(days=7)
#: At most one confirmation mail per address and site in this time.
CONFIRM_EVERY = timedelta(hours=24)
#: The window of ``REPLY_MAILS_PER_HOUR``.
CAP_WINDOW = timedelta(hours=1)
HOURLY_CAP = "hourly cap"
#: The one-click unsubscribe POST's body (RFC 8058).
ONE_CLICK = "List-Unsubscribe=One-Click"
#: How much of a comment a mail quotes when it only reminds its reader which one it was.
EXCERPT_LENGTH = 300
_CONFIRM_SALT = "commentsvc.replies.confirm"
_UNSUBSCRIBE_SALT = "commentsvc.replies.unsubscribe"


# -- tokens ---------------------------------------------------------------------------


def _confirm_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_CONFIRM_SALT)


def _unsubscribe_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT)


def _address_tag(email: str) -> str:
    """A keyed digest of an address: names it in a token without writing it out."""
    key = str(current_app.config["SECRET_KEY"]).encode("utf-8")
    digest = hmac.new(key, b"reply-confirm:" + email.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:24]


def confirm_token(subscriber_id: int, email: str) -> str:
    """The token of a link that confirms the subscriber ``subscriber_id``, for ``email``.

    The address is in it (as :func:`_address_tag`) so that a link never confirms another
    address that came to have the same id (SQLite hands out the ids of deleted rows again).
    """
    return str(_confirm_serializer().dumps([subscriber_id, _address_tag(email)]))


def unsubscribe_token(subscription_id: int, comment_id: int) -> str:
    """The token of a link that ends one subscription (of the comment ``comment_id``)."""
    return str(_unsubscribe_serializer().dumps([subscription_id, comment_id]))


@dataclass(frozen=True)
class ConfirmLink:
    """What a confirmation token names, and whether it is past its age."""

    subscriber_id: int
    #: The :func:`_address_tag` of the address it was sent to.
    address_tag: str
    expired: bool

    def names(self, subscriber: Subscriber) -> bool:
        """Whether the link was sent to this subscriber (its id and its address)."""
        return subscriber.id == self.subscriber_id and hmac.compare_digest(
            _address_tag(subscriber.email), self.address_tag
        )


def read_confirm_token(token: str) -> ConfirmLink | None:
    """The link ``token`` names, expired or not; None if it is not one of ours."""
    serializer = _confirm_serializer()
    try:
        value = serializer.loads(token, max_age=int(CONFIRM_LINK_AGE.total_seconds()))
        expired = False
    except SignatureExpired:
        value = serializer.loads(token)  # the signature holds: only its age is past
        expired = True
    except BadData:
        return None
    match value:
        case [int(subscriber_id), str(address_tag)]:
            return ConfirmLink(subscriber_id, address_tag, expired)
    return None


def read_unsubscribe_token(token: str) -> tuple[int, int] | None:
    """The subscription id and comment id ``token`` names; None if it is not one of ours."""
    try:
        value = _unsubscribe_serializer().loads(token)
    except BadData:
        return None
    match value:
        case [int(subscription_id), int(comment_id)]:
            return subscription_id, comment_id
    return None


# -- planning -------------------------------------------------------------------------


def _is_confirmed(subscriber: Subscriber) -> bool:
    """Whether the address gets reply mails on its site: confirmed, and not unsubscribed
    from the whole site since."""
    return subscriber.confirmed_at is not None and subscriber.unsubscribed_at is None


def _dialect_insert(table: type[Any]) -> Any:
    """An INSERT of ``table`` that can be told to do nothing on conflict (both databases)."""
    name = db.session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def _subscriber(site_id: int, email: str, now: datetime) -> Subscriber:
    """The site's subscriber of ``email`` (case aside), made now if there is none.

    Two workers may plan for a new address at once: the second insert waits for the
    first and does nothing, and both then read the same row.
    """
    same = (
        sa.select(Subscriber)
        .where(
            Subscriber.site_id == site_id,
            sa.func.lower(Subscriber.email) == sa.func.lower(email),
        )
        .execution_options(populate_existing=True)
    )
    found = db.session.scalars(same.order_by(Subscriber.id).limit(1)).first()
    if found is not None:
        return found
    db.session.execute(
        _dialect_insert(Subscriber)
        .values(site_id=site_id, email=email, created_at=now)
        .on_conflict_do_nothing(index_elements=[Subscriber.site_id, Subscriber.email])
    )
    return db.session.scalars(same.order_by(Subscriber.id).limit(1)).one()


def _subscribe(subscriber_id: int, comment_id: int, now: datetime) -> None:
    """Subscribe to the replies of ``comment_id``, unless it already is (an unsubscribed
    subscription stays so: approving the comment again does not undo the reader's wish)."""
    db.session.execute(
        _dialect_insert(Subscription)
        .values(subscriber_id=subscriber_id, comment_id=comment_id, created_at=now)
        .on_conflict_do_nothing(
            index_elements=[Subscription.comment_id, Subscription.subscriber_id]
        )
    )


def _planned_since(kind: str, recipient: str, since: datetime) -> sa.Select[tuple[int]]:
    """Deliveries of ``kind`` to ``recipient`` made since ``since`` (on their index)."""
    return sa.select(Delivery.id).where(
        Delivery.recipient == recipient,
        Delivery.kind == kind,
        Delivery.created_at >= since,
    )


def _plan_confirmation(comment: Comment, now: datetime) -> Iterator[Planned]:
    """The comment asked for reply mails: subscribe it, and ask its address to confirm
    unless it is confirmed already or was asked in the last :data:`CONFIRM_EVERY`."""
    subscriber = _subscriber(comment.site_id, comment.author_email, now)
    _subscribe(subscriber.id, comment.id, now)
    if _is_confirmed(subscriber):
        return
    asked = _planned_since(CONFIRM_KIND, subscriber.email, now - CONFIRM_EVERY).where(
        Delivery.site_id == subscriber.site_id
    )
    if db.session.execute(asked.limit(1)).first() is not None:
        return
    yield Planned(
        channel=MAIL,
        kind=CONFIRM_KIND,
        recipient=subscriber.email,
        comment_id=comment.id,
        payload={"subscriber_id": subscriber.id},
    )


#: The active subscriptions to a comment's replies, with their addresses.
_ACTIVE_SUBSCRIPTIONS = (
    sa.select(Subscription.id, Subscriber.email)
    .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
    .where(
        Subscription.comment_id == sa.bindparam("comment_id"),
        Subscription.unsubscribed_at.is_(None),
        Subscriber.confirmed_at.is_not(None),
        Subscriber.unsubscribed_at.is_(None),
    )
)


def _plan_reply_mails(reply: Comment, event: OutboxEvent, now: datetime) -> Iterator[Planned]:
    """Mail the reply to the author of the comment it replies to, if that author asked
    and confirmed, is not the replier, and was not mailed this reply before (an approval
    after a requeue is not news)."""
    subscriptions = db.session.execute(_ACTIVE_SUBSCRIPTIONS, {"comment_id": reply.parent_id})
    for subscription_id, email in subscriptions.all():
        if email.casefold() == reply.author_email.casefold():
            continue
        mailed = sa.select(Delivery.id).where(
            Delivery.recipient == email,
            Delivery.kind == REPLY_KIND,
            Delivery.comment_id == reply.id,
            Delivery.state != DeliveryState.SKIPPED,
        )
        if db.session.execute(mailed.limit(1)).first() is not None:
            continue
        planned = Planned(
            channel=MAIL,
            kind=REPLY_KIND,
            recipient=email,
            comment_id=reply.id,
            payload={"subscription_id": subscription_id},
        )
        if _over_hourly_cap(email, now):
            planned = replace(planned, state=DeliveryState.SKIPPED, reason=HOURLY_CAP)
        yield planned


def _over_hourly_cap(email: str, now: datetime) -> bool:
    """Whether ``email`` has had ``REPLY_MAILS_PER_HOUR`` reply mails in the last hour."""
    sent = _planned_since(REPLY_KIND, email, now - CAP_WINDOW).where(
        Delivery.state != DeliveryState.SKIPPED
    )
    count = db.session.scalar(sa.select(sa.func.count()).select_from(sent.subquery()))
    return (count or 0) >= int(current_app.config["REPLY_MAILS_PER_HOUR"])


@planner
def plan_reply_notifications(event: OutboxEvent) -> Iterator[Planned]:
    """On ``comment.approved`` (when mail is on): the confirmation the comment's author
    asked for, and the reply mail to the author of the comment it replies to."""
    if event.type != EventType.APPROVED or event.comment_id is None or not mail_enabled():
        return
    # The worker's session keeps what it read in earlier transactions (nothing expires on
    # commit): read the comment as it is now.
    comment = db.session.get(Comment, event.comment_id, populate_existing=True)
    if comment is None or comment.status != CommentStatus.APPROVED:
        return  # moderated again before it was planned: nothing goes out before approval
    write_planned()  # what follows reads deliveries: those of the batch's earlier events too
    now = utcnow()
    if comment.notify_replies:
        yield from _plan_confirmation(comment, now)
    if comment.parent_id is not None:
        yield from _plan_reply_mails(comment, event, now)


# -- sending --------------------------------------------------------------------------


def _excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _comment_link(comment: Comment) -> str | None:
    """The comment on its page (``#comment-{id}``), if the page's URL is known."""
    url = comment.page.url or comment.page_url
    return f"{url.split('#', 1)[0]}#comment-{comment.id}" if url else None


def _page_context(comment: Comment) -> dict[str, Any]:
    """What every reply mail says of the site and the page a comment is on."""
    site = db.session.get(Site, comment.site_id)
    return {
        "site_name": site.name if site is not None else "",
        "page_title": comment.page.title or comment.page_title or comment.page.key,
    }


def _with_unsubscribe(message: EmailMessage, url: str) -> EmailMessage:
    """Add the RFC 8058 headers. ``List-Unsubscribe`` is stored as written: folding it,
    the ``email`` package would turn a URL longer than a line into RFC 2047 encoded words,
    which mail providers do not decode in this header. One long line is allowed (up to 998
    characters, RFC 5322), and the value is ours (the public URL and a token)."""
    message.set_raw("List-Unsubscribe", f"<{header_text(url, 2000)}>")
    message["List-Unsubscribe-Post"] = ONE_CLICK
    message.policy = cast(EmailPolicy, message.policy).clone(refold_source="none")
    return message


def _row(model: type[RowT], row_id: object) -> RowT | None:
    """The row of ``model`` with the id a delivery names (None: no such row, or no id)."""
    return db.session.get(model, row_id) if isinstance(row_id, int) else None


def _confirmation_mail(delivery: Delivery) -> EmailMessage | str:
    """The confirmation mail of ``delivery``, or why it is no longer to be sent."""
    subscriber = _row(Subscriber, delivery.payload.get("subscriber_id"))
    comment = _row(Comment, delivery.comment_id)
    if subscriber is None:
        return "the address is no longer subscribed"
    if _is_confirmed(subscriber):
        return "the address is confirmed already"
    if comment is None or comment.status != CommentStatus.APPROVED:
        return "the comment is no longer approved"
    context = {
        **_page_context(comment),
        "comment_link": _comment_link(comment),
        "excerpt": _excerpt(comment.body),
        "confirm_url": public_url(
            f"/notifications/confirm/{confirm_token(subscriber.id, subscriber.email)}"
        ),
        "days": CONFIRM_LINK_AGE.days,
    }
    return compose(CONFIRM_KIND, subscriber.email, context)


def _reply_mail(delivery: Delivery) -> EmailMessage | str:
    """The reply mail of ``delivery``, or why it is no longer to be sent."""
    subscription = _row(Subscription, delivery.payload.get("subscription_id"))
    reply = _row(Comment, delivery.comment_id)
    if reply is None or reply.status != CommentStatus.APPROVED:
        return "the reply is no longer approved"
    if (
        subscription is None
        or subscription.unsubscribed_at is not None
        or not _is_confirmed(subscription.subscriber)
    ):
        return "unsubscribed"
    parent = db.session.get(Comment, subscription.comment_id)
    unsubscribe_url = public_url(
        f"/notifications/unsubscribe/{unsubscribe_token(subscription.id, subscription.comment_id)}"
    )
    context = {
        **_page_context(reply),
        "name": reply.author_name,
        "body": reply.body,
        "reply_link": _comment_link(reply),
        "excerpt": _excerpt(parent.body) if parent is not None else "",
        "unsubscribe_url": unsubscribe_url,
    }
    message = compose(REPLY_KIND, subscription.subscriber.email, context)
    return _with_unsubscribe(message, unsubscribe_url)


@sender(CONFIRM_KIND)
def send_confirmation(delivery: Delivery, event: OutboxEvent | None) -> Outcome:
    """Mail the link that confirms an address for reply mails, if it still needs one."""
    message = _confirmation_mail(delivery)
    db.session.rollback()  # read; no transaction stays open while the server answers
    if isinstance(message, str):
        return Outcome.skipped(message)
    return deliver(message)


@sender(REPLY_KIND)
def send_reply(delivery: Delivery, event: OutboxEvent | None) -> Outcome:
    """Mail a reply to the author of the comment it replies to, if both still hold."""
    message = _reply_mail(delivery)
    db.session.rollback()
    if isinstance(message, str):
        return Outcome.skipped(message)
    return deliver(message)


# -- the links' use cases -------------------------------------------------------------


class LinkExpired(ServiceError):
    """A confirmation link older than :data:`CONFIRM_LINK_AGE`."""

    title = "Link expired"


_NO_LINK = "This link is not valid. Please check that it was copied whole."


@dataclass(frozen=True)
class Confirmation:
    """A confirmation link's state: the site it is for, and whether the address was
    confirmed before this request (``already``) and is now (``confirmed``)."""

    site_name: str
    confirmed: bool
    already: bool


def _linked_subscriber(token: str) -> Subscriber:
    """The subscriber the confirmation link ``token`` names; NotFound for a link that is not
    ours (or whose address is gone), LinkExpired for an old one not used in time."""
    link = read_confirm_token(token)
    subscriber = db.session.get(Subscriber, link.subscriber_id) if link is not None else None
    if link is None or subscriber is None or not link.names(subscriber):
        raise NotFound(_NO_LINK)
    if link.expired and not _is_confirmed(subscriber):
        raise LinkExpired(
            f"This link has expired: links to confirm work for {CONFIRM_LINK_AGE.days} days. "
            "Tick the box again with your next comment to get a new one."
        )
    return subscriber


def _site_name(site_id: int) -> str:
    site = db.session.get(Site, site_id)
    return site.name if site is not None else ""


def confirmation(token: str) -> Confirmation:
    """What the confirmation link ``token`` would do (it changes nothing); NotFound for a
    link that is not ours, LinkExpired for an old one."""
    subscriber = _linked_subscriber(token)
    confirmed = _is_confirmed(subscriber)
    found = Confirmation(_site_name(subscriber.site_id), confirmed, confirmed)
    db.session.rollback()
    return found


def confirm(token: str) -> Confirmation:
    """Confirm the address of the link ``token`` for its site's reply mails (again, after
    it unsubscribed from them all: following the link is a new request); confirming twice
    changes nothing."""
    with write_transaction():
        subscriber = _linked_subscriber(token)
        already = _is_confirmed(subscriber)
        if not already:
            subscriber.confirmed_at = utcnow()
            subscriber.unsubscribed_at = None
        return Confirmation(_site_name(subscriber.site_id), True, already)


@dataclass(frozen=True)
class Unsubscription:
    """An unsubscribe link's state: the site and page, and what is stopped now."""

    site_name: str
    page_title: str | None
    #: No more mails about this comment (unsubscribed, or the comment is gone).
    stopped: bool
    #: No more reply mails from the whole site.
    site_stopped: bool
    #: The comment (and with it the subscription) was deleted.
    gone: bool = False


_GONE = Unsubscription("", None, stopped=True, site_stopped=False, gone=True)


def _linked_subscription(token: str) -> Subscription | None:
    """The subscription the unsubscribe link ``token`` names; None if it is gone;
    NotFound for a link that is not ours."""
    ids = read_unsubscribe_token(token)
    if ids is None:
        raise NotFound(_NO_LINK)
    subscription = db.session.get(Subscription, ids[0])
    if subscription is None or subscription.comment_id != ids[1]:
        return None  # deleted with its comment (its id may be another's by now)
    return subscription


def _unsubscription(subscription: Subscription) -> Unsubscription:
    subscriber = subscription.subscriber
    comment = db.session.get(Comment, subscription.comment_id)
    title = (comment.page.title or comment.page_title) if comment is not None else None
    return Unsubscription(
        site_name=_site_name(subscriber.site_id),
        page_title=title,
        stopped=subscription.unsubscribed_at is not None or subscriber.unsubscribed_at is not None,
        site_stopped=subscriber.unsubscribed_at is not None,
    )


def unsubscription(token: str) -> Unsubscription:
    """What the unsubscribe link ``token`` is about (it changes nothing); NotFound for a
    link that is not ours."""
    subscription = _linked_subscription(token)
    found = _unsubscription(subscription) if subscription is not None else _GONE
    db.session.rollback()
    return found


def unsubscribe(token: str, whole_site: bool = False) -> Unsubscription:
    """Stop the mails of the link ``token``: of its comment, or with ``whole_site`` every
    reply mail of its site to that address. At once and idempotent (RFC 8058's one click
    may come more than once); NotFound for a link that is not ours."""
    with write_transaction():
        subscription = _linked_subscription(token)
        if subscription is None:
            return _GONE
        now = utcnow()
        if subscription.unsubscribed_at is None:
            subscription.unsubscribed_at = now
        if whole_site and subscription.subscriber.unsubscribed_at is None:
            subscription.subscriber.unsubscribed_at = now
        return _unsubscription(subscription)

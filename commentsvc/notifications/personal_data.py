"""A commenter's own request for their personal data, or for its erasure (DESIGN §9).

``POST /api/v1/sites/{site}/personal-data-requests`` ``{"email", "kind"}`` answers 202
whatever the address: whether it has comments is told only to its mailbox. The request
is mailed to the address as a link (an outbox delivery, retried like any mail); the link's
``GET`` page says what it will do and changes nothing (mail scanners follow links), its
button ``POST``s: the export as a JSON download, or the erasure of
:func:`commentsvc.services.personal_data.erase` on that site.

Limits: ``PERSONAL_DATA_REQUESTS_PER_DAY`` per address and site (past it the request is
answered 202 and not mailed: the form must not mail-bomb someone else's address), ten
times as many per client and site (past it: 429). A link works for
``PERSONAL_DATA_LINK_HOURS``; an erasure link once. The worker deletes requests a day
after they expired, so the address is not kept longer than its link works.

The link's token names the request and a keyed digest of its address (never the address
itself: URLs end up in logs), signed with ``SECRET_KEY``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadData, URLSafeSerializer

from commentsvc.delivery import periodic
from commentsvc.extensions import db, write_transaction
from commentsvc.mail import compose, mail_enabled, public_url
from commentsvc.models import (
    Comment,
    Delivery,
    DeliveryState,
    OutboxEvent,
    PersonalDataKind,
    PersonalDataRequest,
    Site,
    utcnow,
)
from commentsvc.notifications.sending import deliver
from commentsvc.services import personal_data
from commentsvc.services.errors import Invalid, NotFound, ServiceError, Throttled
from commentsvc.services.outbox import Outcome, Planned, add_deliveries, sender
from commentsvc.services.throttling import client_hash, keyed_hash

log = logging.getLogger(__name__)

KIND = "personal_data"
KINDS = tuple(kind.value for kind in PersonalDataKind)
#: The window of ``PERSONAL_DATA_REQUESTS_PER_DAY``.
WINDOW = timedelta(days=1)
#: A client may ask this many times as often as one address.
CLIENT_FACTOR = 10
#: Requests are deleted this long after their link expired.
KEEP_AFTER_EXPIRY = timedelta(days=1)
NO_MAIL = "mail is not configured (COMMENTSVC_SMTP_URL)"
_SALT = "commentsvc.personal-data"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _address_tag(email: str) -> str:
    return keyed_hash("personal-data:" + email.lower())[:24]


def link_token(request: PersonalDataRequest) -> str:
    """The token of the link that carries out ``request``."""
    return str(_serializer().dumps([request.id, _address_tag(request.email or "")]))


def link_path(request: PersonalDataRequest) -> str:
    return f"/notifications/personal-data/{link_token(request)}"


# -- asking ---------------------------------------------------------------------------


def _kind(value: object) -> PersonalDataKind:
    if isinstance(value, str) and value in KINDS:
        return PersonalDataKind(value)
    raise Invalid.on("kind", f"Must be one of: {', '.join(KINDS)}.")


def _count(*conditions: sa.ColumnElement[bool]) -> int:
    counted = sa.select(sa.func.count()).select_from(PersonalDataRequest).where(*conditions)
    return int(db.session.scalar(counted) or 0)


def ask(site_id: int, email: object, kind: object, client_address: str | None) -> None:
    """Take a commenter's request: Invalid naming the fields at fault, Throttled past the
    client's limit; otherwise mailed (unless past the address's limit), and nothing said
    about whether the address has comments."""
    errors: dict[str, list[str]] = {}
    checked_email = checked_kind = None
    try:
        checked_email = personal_data.address(email)
    except Invalid as error:
        errors.update(error.errors)
    try:
        checked_kind = _kind(kind)
    except Invalid as error:
        errors.update(error.errors)
    if errors or checked_email is None or checked_kind is None:
        raise Invalid(errors)
    per_address = int(current_app.config["PERSONAL_DATA_REQUESTS_PER_DAY"])
    client = client_hash(client_address)
    with write_transaction():
        now = utcnow()
        since = PersonalDataRequest.created_at >= now - WINDOW
        on_site = PersonalDataRequest.site_id == site_id
        if _count(on_site, since, PersonalDataRequest.client_hash == client) >= (
            per_address * CLIENT_FACTOR
        ):
            raise Throttled(
                "Too many personal-data requests from this network today. Try again tomorrow.",
                retry_after=int(WINDOW.total_seconds()),
            )
        same = personal_data.same_address(PersonalDataRequest.email, checked_email)
        over = _count(on_site, since, same) >= per_address
        request = PersonalDataRequest(
            site_id=site_id,
            email=None if over else checked_email,
            kind=checked_kind,
            client_hash=client,
            created_at=now,
            expires_at=now + timedelta(hours=int(current_app.config["PERSONAL_DATA_LINK_HOURS"])),
            used_at=now if over else None,
        )
        db.session.add(request)
        if over:
            return  # counted against the client, never mailed
        db.session.flush()
        add_deliveries(site_id, [_planned(request)], now=now)


def _planned(request: PersonalDataRequest) -> Planned:
    if mail_enabled():
        state, reason = DeliveryState.PENDING, None
    else:
        log.warning("a personal-data request could not be mailed: %s", NO_MAIL)
        state, reason = DeliveryState.SKIPPED, NO_MAIL
    return Planned(
        channel="mail",
        kind=KIND,
        recipient=request.email,
        payload={"request_id": request.id},
        state=state,
        reason=reason,
    )


# -- mailing --------------------------------------------------------------------------


def _site_name(site_id: int) -> str:
    site = db.session.get(Site, site_id)
    return site.name if site is not None else ""


def _mail(delivery: Delivery, now: datetime) -> EmailMessage | str:
    """The mail of ``delivery``, or why it is no longer to be sent."""
    request_id = delivery.payload.get("request_id")
    request = db.session.get(PersonalDataRequest, request_id) if request_id else None
    if request is None or request.email is None:
        return "the request is gone"
    if request.expires_at <= now:
        return "the link has expired"
    context = {
        "kind": request.kind.value,
        "site_name": _site_name(request.site_id),
        "link": public_url(link_path(request)),
        "hours": int(current_app.config["PERSONAL_DATA_LINK_HOURS"]),
    }
    return compose(KIND, request.email, context)


@sender(KIND)
def send_link(delivery: Delivery, event: OutboxEvent | None) -> Outcome:
    """Mail the link of a personal-data request, if it can still be used."""
    message = _mail(delivery, utcnow())
    db.session.rollback()
    if isinstance(message, str):
        return Outcome.skipped(message)
    return deliver(message)


def prune(now: datetime | None = None) -> int:
    """Delete requests a day past their link's expiry; how many."""
    cutoff = (now or utcnow()) - KEEP_AFTER_EXPIRY
    with write_transaction():
        result = db.session.execute(
            sa.delete(PersonalDataRequest).where(PersonalDataRequest.expires_at < cutoff)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


periodic(timedelta(hours=1))(prune)


# -- the link -------------------------------------------------------------------------


class LinkExpired(ServiceError):
    """A link past its time, or an erasure link used already."""

    title = "Link expired"


_NO_LINK = "This link is not valid. Please check that it was copied whole."
_USED = "This link has expired or was used already. Ask again on the site."


@dataclass(frozen=True)
class Link:
    """What a link will do: ``kind`` on ``site_name``, for ``comments`` comments."""

    request_id: int
    kind: str
    site_id: int
    site_name: str
    email: str
    comments: int
    expires_at: datetime


def _request(token: str, now: datetime) -> PersonalDataRequest:
    try:
        request_id, tag = _serializer().loads(token)
    except (BadData, TypeError, ValueError):
        raise NotFound(_NO_LINK) from None
    if not isinstance(request_id, int):
        raise NotFound(_NO_LINK)
    request = db.session.get(PersonalDataRequest, request_id)
    if (
        request is None  # deleted a day after it expired
        or request.email is None
        or request.used_at is not None
        or request.expires_at <= now
    ):
        raise LinkExpired(_USED)
    if tag != _address_tag(request.email):
        raise NotFound(_NO_LINK)
    return request


def open_link(token: str) -> Link:
    """What the link ``token`` would do (it changes nothing); NotFound for a link that is
    not ours, LinkExpired for one that can no longer be used."""
    request = _request(token, utcnow())
    email = request.email or ""
    comments = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Comment)
        .where(
            Comment.site_id == request.site_id,
            personal_data.same_address(Comment.author_email, email),
        )
    )
    link = Link(
        request.id,
        request.kind.value,
        request.site_id,
        _site_name(request.site_id),
        email,
        int(comments or 0),
        request.expires_at,
    )
    db.session.rollback()
    return link


def export_by_link(token: str) -> tuple[Link, dict[str, Any]]:
    """The export the link ``token`` delivers (it works until it expires)."""
    link = open_link(token)
    if link.kind != PersonalDataKind.EXPORT:
        raise NotFound(_NO_LINK)
    return link, personal_data.export(link.email, link.site_id)


def erase_by_link(token: str, delete_comments: bool) -> personal_data.Erased:
    """Carry out the erasure the link ``token`` asks for, once."""
    link = open_link(token)
    if link.kind != PersonalDataKind.ERASE:
        raise NotFound(_NO_LINK)
    return personal_data.erase(
        link.email,
        delete_comments=delete_comments,
        site_id=link.site_id,
        actor="commenter",
        keep_request=link.request_id,
    )

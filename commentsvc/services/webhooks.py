"""Webhooks per site (DESIGN §8): adding and removing them, a call per event for each webhook
that hears of it, and each call made as a JSON ``POST`` signed as the Standard Webhooks
specification says (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

A webhook's URL is chosen by an administrator, but the call leaves from inside the service's
network: left alone, ``http://169.254.169.254/`` or ``http://localhost:5432/`` would let
whoever sets a URL reach what only the server can. So the host is resolved at every call,
the call is refused when any of its addresses is not a public one (unless
``WEBHOOK_ALLOW_PRIVATE``), and the connection goes to an address that was checked: there is
no second lookup whose answer could differ. Redirects are not followed (their target was
never checked), at most :data:`MAX_READ` bytes of an answer are read, and a call takes at
most :data:`TIMEOUT` seconds, however slowly the receiver answers.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import contains_eager
from standardwebhooks.webhooks import Webhook as Signer

from commentsvc._meta import __version__
from commentsvc.api.serializers import isotime
from commentsvc.extensions import db, read_connection, write_transaction
from commentsvc.models import Delivery, DeliveryState, OutboxEvent, Site, Webhook, utcnow
from commentsvc.security import IPAddress, UrlError, ascii_host, parse_web_url
from commentsvc.services import outbox
from commentsvc.services.errors import Invalid, NotFound
from commentsvc.services.events import EventType
from commentsvc.services.outbox import Outcome, Planned

#: The channel and the kind of every webhook delivery.
KIND = "webhook"
#: The type of the event "send test event" sends: about no comment.
TEST_EVENT = "webhook.test"
#: The event types a webhook may choose from (none chosen: all of them).
EVENT_TYPES: tuple[str, ...] = tuple(event.value for event in EventType)
MAX_URL_LENGTH: int = Webhook.url.type.length
SECRET_PREFIX = "whsec_"
#: Seconds one call may take, from connecting to the last byte read (DESIGN §8).
TIMEOUT = 10.0
#: Bytes of an answer that are read; the rest never is.
MAX_READ = 1024
#: Characters of an answer kept with the delivery, to say what the receiver said.
MAX_EXCERPT = 200
#: Deliveries the panel shows.
RECENT = 20
USER_AGENT = f"commentsvc/{__version__}"
#: Every printable ASCII character: what :func:`quote` leaves as it is, so that only other
#: characters (an internationalized path) are percent-encoded.
_PRINTABLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


# -- managing webhooks ----------------------------------------------------------------------


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes one: ``whsec_`` and base64 of 32 random
    bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def allow_private() -> bool:
    """Whether webhooks may call loopback, private and link-local addresses."""
    return bool(current_app.config["WEBHOOK_ALLOW_PRIVATE"])


def check_url(url: str) -> str:
    """``url`` as a webhook stores and calls it: ASCII only (the host as punycode, the path
    percent-encoded). Invalid on ``url`` when it is not an http(s) URL with a host, when it
    holds credentials or a fragment, when it is too long, or when its host is an address
    that :func:`refusal` refuses (unless ``WEBHOOK_ALLOW_PRIVATE``)."""
    url = url.strip()
    if not url:
        raise Invalid.on("url", "This field is required.")
    if len(url) > MAX_URL_LENGTH:
        raise Invalid.on("url", f"Must be at most {MAX_URL_LENGTH} characters.")
    try:
        parsed = parse_web_url(url)
    except UrlError as error:
        raise Invalid.on("url", str(error)) from None
    if parsed.userinfo is not None:
        raise Invalid.on("url", "Must not contain a user name or password.")
    if parsed.fragment is not None:
        raise Invalid.on("url", "Must not contain a #fragment: a receiver never sees it.")
    normalized = str(
        replace(
            parsed,
            host=ascii_host(parsed.host),
            path=quote(parsed.path, safe=_PRINTABLE_ASCII),
            query=None if parsed.query is None else quote(parsed.query, safe=_PRINTABLE_ASCII),
        )
    )
    if len(normalized) > MAX_URL_LENGTH:
        raise Invalid.on("url", f"Must be at most {MAX_URL_LENGTH} characters.")
    literal = _literal_address(parsed.host)
    if literal is not None and not allow_private() and (reason := refusal(literal)) is not None:
        raise Invalid.on(
            "url",
            f"{literal} is {reason}: webhooks call public addresses only "
            "(COMMENTSVC_WEBHOOK_ALLOW_PRIVATE=true allows it).",
        )
    return normalized


def check_events(events: Iterable[str]) -> list[str]:
    """The event types named, each once and in :class:`EventType`'s order; none: every one.
    Invalid on ``events`` naming each unknown one and the types there are."""
    wanted = {event.strip().lower() for event in events if event.strip()}
    unknown = sorted(wanted.difference(EVENT_TYPES))
    if unknown:
        raise Invalid.on(
            "events",
            f"Unknown event {', '.join(unknown)}: the events are {', '.join(EVENT_TYPES)}.",
        )
    return [event for event in EVENT_TYPES if event in wanted]


def add_webhook(site: str, url: str, events: Iterable[str], created_by: str) -> tuple[Webhook, str]:
    """Add a webhook to the site with slug ``site``; returns it and its signing secret
    (which its receiver needs, and which is shown this once)."""
    checked_url = check_url(url)
    checked_events = check_events(events)
    secret = new_secret()
    with write_transaction():
        found = db.session.scalar(sa.select(Site).where(Site.slug == site))
        if found is None:
            raise NotFound(f"There is no site {site!r}.")
        webhook = Webhook(
            site=found,
            url=checked_url,
            events=checked_events,
            secret=secret,
            active=True,
            created_by=created_by,
            created_at=utcnow(),
        )
        db.session.add(webhook)
    return webhook, secret


def list_webhooks(site: str | None = None) -> Sequence[Webhook]:
    """Every webhook, or those of the site with slug ``site``, oldest first."""
    statement = (
        sa.select(Webhook)
        .join(Webhook.site)
        .options(contains_eager(Webhook.site))
        .order_by(Webhook.id)
    )
    if site is not None:
        if db.session.scalar(sa.select(Site.id).where(Site.slug == site)) is None:
            raise NotFound(f"There is no site {site!r}.")
        statement = statement.where(Site.slug == site)
    return db.session.scalars(statement).all()


def find_webhook(webhook_id: int, site_id: int | None = None) -> Webhook:
    """The webhook ``webhook_id`` (of the site ``site_id``, when given); NotFound otherwise."""
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None or (site_id is not None and webhook.site_id != site_id):
        raise NotFound(f"There is no webhook {webhook_id}.")
    return webhook


def remove_webhook(webhook_id: int, site_id: int | None = None) -> Webhook:
    """Remove a webhook; its deliveries go with it, those not yet sent included."""
    with write_transaction():
        webhook = find_webhook(webhook_id, site_id)
        db.session.delete(webhook)
    return webhook


def send_test(webhook_id: int, site_id: int | None = None) -> Webhook:
    """Queue a ``webhook.test`` call of a webhook, which the worker sends like any other."""
    with write_transaction():
        webhook = find_webhook(webhook_id, site_id)
        test = Planned(channel=KIND, kind=KIND, webhook_id=webhook.id, payload={"test": True})
        outbox.add_deliveries(webhook.site_id, [test])
    return webhook


def last_deliveries(webhook_ids: Iterable[int]) -> dict[int, Delivery]:
    """The newest delivery of each of these webhooks that has one."""
    newest = (
        sa.select(sa.func.max(Delivery.id))
        .where(Delivery.webhook_id.in_(list(webhook_ids)))
        .group_by(Delivery.webhook_id)
    )
    found = db.session.scalars(sa.select(Delivery).where(Delivery.id.in_(newest)))
    return {delivery.webhook_id: delivery for delivery in found if delivery.webhook_id}


@dataclass(frozen=True)
class RecentDelivery:
    """A delivery as the panel lists it, with the type of the event it tells of."""

    delivery: Delivery
    event_type: str

    @property
    def next_attempt_at(self) -> datetime | None:
        """When it is tried again; None once it is finished."""
        pending = self.delivery.state == DeliveryState.PENDING
        return self.delivery.next_attempt_at if pending else None


def recent_deliveries(site_id: int, limit: int = RECENT) -> list[RecentDelivery]:
    """The newest ``limit`` deliveries to the webhooks of a site, newest first."""
    hooks = sa.select(Webhook.id).where(Webhook.site_id == site_id)
    rows = db.session.execute(
        sa.select(Delivery, OutboxEvent.type)
        .outerjoin(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .where(Delivery.webhook_id.in_(hooks))
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    return [
        RecentDelivery(delivery, TEST_EVENT if delivery.payload.get("test") else event_type or "")
        for delivery, event_type in rows
    ]


# -- planning -----------------------------------------------------------------------------


def hears(webhook: Webhook, event_type: str) -> bool:
    """Whether ``webhook`` is told of events of ``event_type``."""
    return not webhook.events or event_type in webhook.events


def _active_webhooks(site_id: int) -> Sequence[Webhook]:
    return db.session.scalars(
        sa.select(Webhook)
        .where(Webhook.site_id == site_id, Webhook.active.is_(True))
        .order_by(Webhook.id)
    ).all()


@outbox.planner
def plan_calls(event: OutboxEvent) -> list[Planned]:
    """A call of each active webhook of the event's site that hears of its type."""
    webhooks = outbox.once_per_batch(
        ("webhooks", event.site_id), lambda: _active_webhooks(event.site_id)
    )
    return [
        Planned(channel=KIND, kind=KIND, webhook_id=webhook.id, comment_id=event.comment_id)
        for webhook in webhooks
        if hears(webhook, event.type)
    ]


# -- the addresses a webhook may call -------------------------------------------------------

#: What makes an address one no webhook calls, in the order a refusal names it (the most
#: telling first: 169.254.169.254 is link-local before it is private).
_NOT_PUBLIC = (
    ("a loopback", "is_loopback"),
    ("an unspecified", "is_unspecified"),
    ("a link-local", "is_link_local"),
    ("a multicast", "is_multicast"),
    ("a reserved", "is_reserved"),
    ("a private", "is_private"),
)
#: IPv6 addresses that carry an IPv4 address on to the IPv4 network (NAT64).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches: IPv4-mapped, 6to4 or NAT64 forms."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why no webhook may call ``address`` (``"a loopback address"``, …), or None for a
    public address. An IPv6 form of an IPv4 address is judged as that IPv4 address."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = refusal(embedded)
        return None if reason is None else f"{reason} ({embedded})"
    for kind, attribute in _NOT_PUBLIC:
        if getattr(address, attribute):
            return f"{kind} address"
    if not address.is_global:
        return "not a public address"
    return None


def _literal_address(host: str) -> IPAddress | None:
    """The address a URL's host is written as (``[::1]`` too), or None for a name."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host``, in the resolver's order, each once; :class:`socket.gaierror`
    when it has none."""
    found: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in found:
            found.append(address)
    return found


# -- sending ------------------------------------------------------------------------------


class _Refused(Exception):
    """The webhook's host is not one it may call: trying again will not help."""


class _NoAnswer(Exception):
    """An attempt that got no (valid) answer; the message says why. Tried again later."""


@dataclass(frozen=True)
class Target:
    """Where a webhook's URL sends a call."""

    tls: bool
    #: The host name (or address, without brackets) to resolve and to check TLS against.
    host: str
    port: int
    #: ``Host:`` as the URL names it.
    host_header: str
    #: The request target: path and query.
    path: str

    @classmethod
    def of(cls, url: str) -> Target:
        """The target of a URL that :func:`check_url` accepted."""
        parsed = parse_web_url(url)
        tls = parsed.scheme == "https"
        port = parsed.port or (443 if tls else 80)
        query = "" if parsed.query is None else f"?{parsed.query}"
        return cls(
            tls=tls,
            host=parsed.host.removeprefix("[").removesuffix("]"),
            port=port,
            host_header=parsed.host if parsed.port is None else f"{parsed.host}:{port}",
            path=(parsed.path or "/") + query,
        )


@dataclass(frozen=True)
class Call:
    """One attempt to make: where, what, and how to sign it."""

    url: str
    secret: str
    #: ``webhook-id``: the same for every attempt of one delivery, so a receiver can drop
    #: what it already got (delivery is at least once).
    message_id: str
    body: str


def message_body(event_type: str, at: datetime, data: Mapping[str, Any]) -> str:
    """The JSON a webhook gets, compact: ``{"type", "timestamp", "data"}``."""
    payload = {"type": event_type, "timestamp": isotime(at), "data": data}
    return json.dumps(payload, separators=(",", ":"))


def _test_data(webhook_id: int, site: str) -> dict[str, Any]:
    return {
        "test": True,
        "webhook_id": webhook_id,
        "site": site,
        "message": "A test event sent from the panel or the command line; no comment changed.",
    }


#: What a call needs of its webhook, in one statement outside any transaction.
_TO_CALL = (
    sa.select(Webhook.url, Webhook.secret, Webhook.active, Site.slug)
    .join(Site, Site.id == Webhook.site_id)
    .where(Webhook.id == sa.bindparam("webhook_id"))
)


def _prepare(delivery: Delivery, event: OutboxEvent | None) -> Call | Outcome:
    """The call a delivery makes, or the outcome when it makes none."""
    webhook_id = delivery.webhook_id
    webhook = None
    if webhook_id is not None:
        with read_connection() as connection:
            webhook = connection.execute(_TO_CALL, {"webhook_id": webhook_id}).first()
    if webhook_id is None or webhook is None or not webhook.active:
        return Outcome.skipped("the webhook was removed or turned off")
    if event is not None:
        body = message_body(event.type, event.created_at, event.data)
    elif delivery.payload.get("test"):
        test = _test_data(webhook_id, webhook.slug)
        body = message_body(TEST_EVENT, delivery.created_at, test)
    else:
        return Outcome.failed("the event of this delivery is gone")
    return Call(webhook.url, webhook.secret, f"msg_{delivery.id}", body)


@outbox.sender(KIND)
def send_call(delivery: Delivery, event: OutboxEvent | None) -> Outcome:
    """Make one attempt of a webhook delivery; what became of it."""
    prepared = _prepare(delivery, event)
    if isinstance(prepared, Outcome):
        return prepared
    return attempt(prepared, allow_private=allow_private())


def attempt(call: Call, *, allow_private: bool = False) -> Outcome:
    """``POST`` a call: delivered on a 2xx answer; tried again after any other answer or
    none; failed at once when the host is one no webhook may call."""
    target = Target.of(call.url)
    try:
        addresses = _addresses(target, allow_private)
        timestamp = int(time.time())
        signature = Signer(call.secret).sign(
            call.message_id, datetime.fromtimestamp(timestamp, UTC), call.body
        )
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": call.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        status, answer, location = _post(target, addresses, call.body.encode(), headers)
    except _Refused as refused:
        return Outcome.failed(str(refused))
    except _NoAnswer as error:
        return Outcome.retry(str(error))
    return _judge(status, answer, location)


def _addresses(target: Target, allow_private: bool) -> list[IPAddress]:
    """The addresses to call ``target`` at; :class:`_Refused` when any of them is not public
    (so no answer of a DNS server decides which one is used)."""
    try:
        addresses = resolve(target.host, target.port)
    except (socket.gaierror, UnicodeError) as error:
        raise _NoAnswer(f"cannot resolve {target.host}: {error}") from None
    if allow_private:
        return addresses
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            where = target.host if str(address) == target.host else f"{target.host} ({address})"
            raise _Refused(
                f"refused: {where} is {reason}; webhooks call public addresses only "
                "(COMMENTSVC_WEBHOOK_ALLOW_PRIVATE=true allows it)"
            )
    return addresses


@cache
def _tls() -> ssl.SSLContext:
    """Certificates checked against the system's authorities and the URL's host name."""
    return ssl.create_default_context()


def _connect(addresses: Sequence[IPAddress], port: int, deadline: float) -> socket.socket:
    """A connection to the first of ``addresses`` that takes one."""
    failure = "no address"
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            return socket.create_connection((str(address), port), timeout=left)
        except TimeoutError:
            failure = f"{address} port {port}: no answer"
        except OSError as error:
            failure = f"{address} port {port}: {error.strerror or error}"
    raise _NoAnswer(f"could not connect to {failure}")


@contextmanager
def _cut_at(sock: socket.socket, deadline: float) -> Iterator[threading.Event]:
    """Shut the connection of ``sock`` down at ``deadline``; the event says it was.

    A socket's timeout counts per read, so a receiver trickling its answer a byte at a time
    would hold the worker for as long as it likes. The shutdown goes through a duplicate of
    the socket: it is the same connection, whatever TLS wraps around ``sock`` meanwhile.
    """
    handle = sock.dup()
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        with suppress(OSError):
            handle.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(deadline - time.monotonic(), 0.0), cut)
    timer.daemon = True
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()
        timer.join()
        handle.close()


def _post(
    target: Target, addresses: Sequence[IPAddress], body: bytes, headers: Mapping[str, str]
) -> tuple[int, bytes, str | None]:
    """Send the request to the first address that takes it: the status, the first
    :data:`MAX_READ` bytes of the answer, and its ``Location``."""
    timeout = TIMEOUT
    deadline = time.monotonic() + timeout
    sock = _connect(addresses, target.port, deadline)
    with closing(sock), _cut_at(sock, deadline) as expired:
        try:
            if target.tls:
                sock = _tls().wrap_socket(sock, server_hostname=target.host)
            # Never connects by itself: it speaks HTTP over the socket to the checked address.
            connection = http.client.HTTPConnection(target.host, target.port)
            connection.sock = sock
            with closing(connection):
                connection.request("POST", target.path, body, dict(headers))
                with closing(connection.getresponse()) as response:
                    answer = response.read(MAX_READ)
                    return response.status, answer, response.getheader("Location")
        except (OSError, http.client.HTTPException) as error:
            if expired.is_set() or isinstance(error, TimeoutError):
                raise _NoAnswer(f"no answer within {timeout:g} s") from None
            raise _NoAnswer(_describe(error)) from None
        finally:
            sock.close()


def _describe(error: OSError | http.client.HTTPException) -> str:
    """What went wrong with an attempt, in a few words."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate refused: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if isinstance(error, http.client.HTTPException):
        return f"no valid answer: {str(error) or type(error).__name__}"
    return f"connection failed: {error.strerror or error}"


def excerpt(answer: bytes | str, limit: int = MAX_EXCERPT) -> str:
    """The start of an answer as one line of at most ``limit`` characters."""
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _judge(status: int, answer: bytes, location: str | None) -> Outcome:
    """The outcome of an answer: 2xx delivered; anything else tried again."""
    if 200 <= status < 300:
        return Outcome.delivered(status)
    if 300 <= status < 400:
        where = f" to {excerpt(location, 100)}" if location else ""
        return Outcome.retry(f"answered {status}: the redirect{where} was not followed", status)
    said = excerpt(answer)
    return Outcome.retry(f"answered {status}" + (f": {said}" if said else ""), status)

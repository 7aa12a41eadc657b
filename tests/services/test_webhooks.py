"""Webhooks (DESIGN §8): a signed JSON POST per event to each webhook of the site that hears of
it, made by the worker against a real HTTP receiver; retried on any answer but a 2xx, never
redirected, never to an address that is not public unless the setting allows it."""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook as Signer

from commentsvc._meta import __version__
from commentsvc.extensions import db, write_transaction
from commentsvc.models import Delivery, DeliveryState, OutboxEvent, Webhook, utcnow
from commentsvc.security import IPAddress
from commentsvc.services import outbox, webhooks
from commentsvc.services.errors import Invalid, NotFound
from tests.conftest import ORIGIN, valid_submission
from tests.support.receiver import WebhookReceiver
from tests.support.server import LOOPBACK, free_port

MODERATION = "/api/v1/moderation/comments"


@pytest.fixture
def hooks(app: Flask) -> Flask:
    """The app, allowed to call the receiver on the loopback interface."""
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    return app


def add_hook(app: Flask, url: str, *events: str, site: str = "news") -> tuple[int, str]:
    """A webhook of ``site``: its id and secret."""
    with app.app_context():
        webhook, secret = webhooks.add_webhook(site, url, events, "test@example.com")
        return webhook.id, secret


def submit(client: FlaskClient, body: str = "A thoughtful comment.") -> int:
    response = client.post(
        "/api/v1/sites/news/comments",
        json=valid_submission(body=body),
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 201, response.get_json()
    comment_id: int = response.get_json()["id"]
    return comment_id


def sent(app: Flask) -> list[Delivery]:
    """The webhook deliveries, oldest first."""
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(Delivery).where(Delivery.channel == "webhook").order_by(Delivery.id)
            )
        )


def make_due(app: Flask, created_ago: timedelta | None = None) -> None:
    """Make every pending delivery due now (and, if given, as old as ``created_ago``)."""
    values: dict[str, datetime] = {"next_attempt_at": utcnow() - timedelta(seconds=1)}
    if created_ago is not None:
        values["created_at"] = utcnow() - created_ago
    with app.app_context(), write_transaction():
        db.session.execute(sa.update(Delivery).values(values))


# --- what a receiver gets -------------------------------------------------------------------


def test_a_submitted_comment_reaches_the_receiver_signed_with_the_moderation_view(
    hooks: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    _, secret = add_hook(hooks, webhook_receiver.url)
    webhook_receiver.secret = secret
    comment_id = submit(client)
    before = int(time.time())
    deliver()
    [call] = webhook_receiver.calls
    [delivery] = sent(hooks)
    assert call.verified is True
    assert call.path == "/hook"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["user-agent"] == f"commentsvc/{__version__}"
    assert call.webhook_id == f"msg_{delivery.id}"
    assert before - 1 <= int(call.headers["webhook-timestamp"]) <= time.time() + 1
    # The reference library verifies it too (and parses what it signed).
    assert Signer(secret).verify(call.body, call.headers) == call.json
    payload = call.json
    assert list(payload) == ["type", "timestamp", "data"]
    assert call.body == json.dumps(payload, separators=(",", ":")).encode()  # compact
    assert payload["type"] == "comment.submitted"
    with hooks.app_context():
        event = db.session.scalars(sa.select(OutboxEvent)).one()
        at = event.created_at
    assert payload["timestamp"] == at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # The data is the comment exactly as the moderation API shows it: no field more or less.
    [listed] = client.get(MODERATION, headers=auth).get_json()["comments"]
    assert listed["id"] == comment_id
    assert payload["data"] == listed
    assert (delivery.state, delivery.attempts, delivery.last_code) == (
        DeliveryState.DELIVERED,
        1,
        200,
    )


def test_a_webhook_hears_only_the_events_it_chose(
    hooks: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    add_hook(hooks, webhook_receiver.url + "/all")
    add_hook(hooks, webhook_receiver.url + "/approved", "comment.approved")
    add_hook(hooks, webhook_receiver.url + "/blog", site="blog")
    comment_id = submit(client)
    deliver()
    response = client.patch(f"{MODERATION}/{comment_id}", json={"status": "approved"}, headers=auth)
    assert response.status_code == 200
    deliver()
    heard = [(call.path, call.json["type"]) for call in webhook_receiver.calls]
    assert sorted(heard) == [
        ("/hook/all", "comment.approved"),
        ("/hook/all", "comment.submitted"),
        ("/hook/approved", "comment.approved"),
    ]


def test_a_test_event_says_it_is_one(
    hooks: Flask, deliver: Callable[[], None], webhook_receiver: WebhookReceiver
) -> None:
    webhook_id, secret = add_hook(hooks, webhook_receiver.url, "comment.approved")
    webhook_receiver.secret = secret
    with hooks.app_context():
        webhooks.send_test(webhook_id)
    deliver()
    [call] = webhook_receiver.calls
    assert call.verified is True
    assert call.json["type"] == "webhook.test"
    assert call.json["data"]["test"] is True
    assert call.json["data"]["site"] == "news"
    [delivery] = sent(hooks)
    assert (delivery.state, delivery.event_id) == (DeliveryState.DELIVERED, None)


# --- retries ----------------------------------------------------------------------------------


def test_a_500_is_retried_with_the_same_webhook_id(
    hooks: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    _, secret = add_hook(hooks, webhook_receiver.url)
    webhook_receiver.secret = secret
    webhook_receiver.then(500)
    submit(client)
    deliver()
    [delivery] = sent(hooks)
    assert (delivery.state, delivery.attempts, delivery.last_code) == (
        DeliveryState.PENDING,
        1,
        500,
    )
    assert delivery.next_attempt_at > utcnow()
    deliver()
    assert len(webhook_receiver.calls) == 1  # not due yet
    make_due(hooks)
    deliver()
    first, second = webhook_receiver.calls
    assert first.webhook_id == second.webhook_id == f"msg_{delivery.id}"
    assert first.body == second.body
    assert first.verified is second.verified is True
    [delivery] = sent(hooks)
    assert (delivery.state, delivery.attempts, delivery.last_code) == (
        DeliveryState.DELIVERED,
        2,
        200,
    )


def test_a_long_error_answer_is_kept_as_a_short_excerpt(
    hooks: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    add_hook(hooks, webhook_receiver.url)
    webhook_receiver.then(503)  # answers 10,000 bytes
    submit(client)
    deliver()
    [delivery] = sent(hooks)
    assert delivery.last_code == 503
    assert delivery.last_error == "answered 503: " + "x" * (webhooks.MAX_EXCERPT - 1) + "…"


def test_failing_for_a_day_gives_up(
    hooks: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    add_hook(hooks, webhook_receiver.url)
    webhook_receiver.then(500, 502)
    submit(client)
    deliver()
    assert sent(hooks)[0].state == DeliveryState.PENDING
    make_due(hooks, created_ago=outbox.RETRY_FOR["webhook"])
    deliver()
    [delivery] = sent(hooks)
    assert (delivery.state, delivery.attempts, delivery.last_code) == (
        DeliveryState.FAILED,
        2,
        502,
    )
    assert delivery.finished_at is not None
    make_due(hooks)
    deliver()
    assert len(webhook_receiver.calls) == 2


def test_no_answer_in_time_is_retried(
    hooks: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhooks, "TIMEOUT", 0.5)
    add_hook(hooks, webhook_receiver.url)
    webhook_receiver.then("slow:3")
    submit(client)
    started = time.monotonic()
    deliver()
    assert time.monotonic() - started < 2.5
    [delivery] = sent(hooks)
    assert (delivery.state, delivery.last_code, delivery.last_error) == (
        DeliveryState.PENDING,
        None,
        "no answer within 0.5 s",
    )


@pytest.fixture
def trickling_server() -> Iterator[int]:
    """A server on a free loopback port that answers one byte of a status line every 0.2 s,
    for ever: a socket timeout alone would never end the call."""
    listener = socket.create_server((LOOPBACK, 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\n" * 100:
                    if stop.wait(0.2):
                        break
                    try:
                        connection.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def test_an_answer_trickling_in_is_cut_at_the_timeout(
    hooks: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    trickling_server: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhooks, "TIMEOUT", 1.0)
    add_hook(hooks, f"http://{LOOPBACK}:{trickling_server}/hook")
    submit(client)
    started = time.monotonic()
    deliver()
    assert time.monotonic() - started < 2.5
    [delivery] = sent(hooks)
    assert (delivery.state, delivery.last_error) == (DeliveryState.PENDING, "no answer within 1 s")


def test_a_refused_connection_is_retried(
    hooks: Flask, client: FlaskClient, deliver: Callable[[], None]
) -> None:
    port = free_port()  # nobody listens there
    add_hook(hooks, f"http://{LOOPBACK}:{port}/hook")
    submit(client)
    deliver()
    [delivery] = sent(hooks)
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_code is None
    assert delivery.last_error == f"could not connect to {LOOPBACK} port {port}: Connection refused"


def test_a_dropped_connection_is_retried(
    hooks: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    add_hook(hooks, webhook_receiver.url)
    webhook_receiver.then("close")
    submit(client)
    deliver()
    [delivery] = sent(hooks)
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("no valid answer:")


def test_a_redirect_is_not_followed(
    hooks: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    add_hook(hooks, webhook_receiver.url)
    webhook_receiver.then("redirect")
    submit(client)
    deliver()
    assert [call.path for call in webhook_receiver.calls] == ["/hook"]
    [delivery] = sent(hooks)
    assert (delivery.state, delivery.last_code) == (DeliveryState.PENDING, 307)
    assert delivery.last_error == (
        f"answered 307: the redirect to http://{LOOPBACK}:{webhook_receiver.port}/elsewhere "
        "was not followed"
    )


def test_a_removed_webhook_gets_nothing_more(
    hooks: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_id, _ = add_hook(hooks, webhook_receiver.url)
    webhook_receiver.then(500)
    submit(client)
    deliver()
    assert len(sent(hooks)) == 1
    with hooks.app_context():
        webhooks.remove_webhook(webhook_id)
    assert sent(hooks) == []  # the retry went with it
    submit(client, "Another comment.")
    make_due(hooks)
    deliver()
    assert len(webhook_receiver.calls) == 1
    assert sent(hooks) == []


def test_an_inactive_webhook_is_not_planned(
    hooks: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_id, _ = add_hook(hooks, webhook_receiver.url)
    with hooks.app_context(), write_transaction():
        db.session.execute(sa.update(Webhook).values(active=False))
    submit(client)
    deliver()
    assert webhook_receiver.calls == []
    assert sent(hooks) == []
    with hooks.app_context():
        webhooks.send_test(webhook_id)
    deliver()
    [delivery] = sent(hooks)
    assert delivery.state == DeliveryState.SKIPPED
    assert webhook_receiver.calls == []


# --- addresses no webhook calls ---------------------------------------------------------------


def test_loopback_is_refused_without_the_setting(
    app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    assert app.config["WEBHOOK_ALLOW_PRIVATE"] is False
    # A name, resolved at the call: localhost is 127.0.0.1 (and ::1).
    add_hook(app, f"http://localhost:{webhook_receiver.port}/hook")
    submit(client)
    deliver()
    assert webhook_receiver.calls == []
    [delivery] = sent(app)
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 1)
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("refused: localhost (")
    assert "a loopback address" in delivery.last_error
    assert "COMMENTSVC_WEBHOOK_ALLOW_PRIVATE=true" in delivery.last_error


def test_a_name_with_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    public, private = ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.7")
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: [public, private])
    call = webhooks.Call("https://hooks.example/in", webhooks.new_secret(), "msg_1", "{}")
    outcome = webhooks.attempt(call)
    assert outcome.state == DeliveryState.FAILED
    assert outcome.error == (
        "refused: hooks.example (10.0.0.7) is a private address; webhooks call public "
        "addresses only (COMMENTSVC_WEBHOOK_ALLOW_PRIVATE=true allows it)"
    )


def test_the_call_goes_to_the_address_that_was_checked(
    webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolved once: the connection is made to that address, with the URL's host name."""
    looked_up: list[str] = []

    def resolve(host: str, port: int) -> list[IPAddress]:
        looked_up.append(host)
        return [ipaddress.ip_address(LOOPBACK)]

    monkeypatch.setattr(webhooks, "resolve", resolve)
    url = f"http://hooks.invalid:{webhook_receiver.port}/hook?site=news"
    call = webhooks.Call(url, webhooks.new_secret(), "msg_1", '{"type":"webhook.test"}')
    outcome = webhooks.attempt(call, allow_private=True)
    assert (outcome.state, outcome.code) == (DeliveryState.DELIVERED, 200)
    assert looked_up == ["hooks.invalid"]
    [received] = webhook_receiver.calls
    assert received.headers["host"] == f"hooks.invalid:{webhook_receiver.port}"
    assert received.path == "/hook?site=news"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name ``hooks.test``, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=hooks.test"
    names = "subjectAltName=DNS:hooks.test"
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run([*command.split(), "-addext", names, *files], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[int]:
    """An HTTPS server on a free loopback port with that certificate; it answers 204."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_https_checks_the_certificate_against_the_host_name(
    tls_server: int, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: [ipaddress.ip_address(LOOPBACK)])

    def attempt(host: str) -> webhooks.Outcome:
        call = webhooks.Call(f"https://{host}:{tls_server}/in", webhooks.new_secret(), "m", "{}")
        return webhooks.attempt(call, allow_private=True)

    untrusted = attempt("hooks.test")
    assert (untrusted.state, untrusted.error) == (
        None,
        "TLS certificate refused: self-signed certificate",
    )
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    monkeypatch.setattr(webhooks, "_tls", lambda: trusting)
    trusted = attempt("hooks.test")
    assert (trusted.state, trusted.code) == (DeliveryState.DELIVERED, 204)
    other = attempt("other.test")
    assert other.state is None
    assert other.error is not None
    assert other.error.startswith("TLS certificate refused: Hostname mismatch")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address (127.0.0.1)"),
        ("2002:7f00:1::1", "a loopback address (127.0.0.1)"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("::ffff:169.254.169.254", "a link-local address (169.254.169.254)"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("64:ff9b::a00:1", "a private address (10.0.0.1)"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("100.64.0.1", "not a public address"),
        ("93.184.215.14", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
        ("::ffff:93.184.215.14", None),
    ],
)
def test_which_addresses_are_refused(address: str, reason: str | None) -> None:
    assert webhooks.refusal(ipaddress.ip_address(address)) == reason


# --- adding, listing, removing ----------------------------------------------------------------


def test_add_makes_a_standard_secret_and_keeps_the_url_in_ascii(context: None) -> None:
    webhook, secret = webhooks.add_webhook(
        "news", " https://Bücher.Example/ä?q=ü ", ["comment.spam", "Comment.Approved"], "cli"
    )
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert webhook.secret == secret
    assert webhook.url == "https://xn--bcher-kva.example/%C3%A4?q=%C3%BC"
    assert webhook.events == ["comment.approved", "comment.spam"]
    assert (webhook.site.slug, webhook.active, webhook.created_by) == ("news", True, "cli")
    other, other_secret = webhooks.add_webhook("news", "https://hooks.example/", [], "cli")
    assert other_secret != secret
    assert other.events == []
    assert [hook.id for hook in webhooks.list_webhooks("news")] == [webhook.id, other.id]
    assert webhooks.list_webhooks("blog") == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "This field is required."),
        ("ftp://hooks.example/", "Must start with http:// or https://."),
        ("hooks.example/in", "Must start with http:// or https://."),
        ("https://", "Must be a valid http or https URL."),
        ("https://hooks.example/a b", "Must not contain spaces"),
        ("https://user:secret@hooks.example/", "Must not contain a user name or password."),
        ("https://hooks.example/#top", "Must not contain a #fragment"),
        ("https://hooks.example/" + "a" * 2000, "Must be at most 2000 characters."),
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://[::ffff:10.0.0.1]/hook", "::ffff:a00:1 is a private address (10.0.0.1)"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ],
)
def test_add_refuses_a_bad_url(context: None, url: str, message: str) -> None:
    with pytest.raises(Invalid) as refused:
        webhooks.add_webhook("news", url, [], "cli")
    assert refused.value.field == "url"
    assert message in refused.value.message
    assert webhooks.list_webhooks() == []


def test_add_takes_a_private_address_when_allowed(app: Flask, context: None) -> None:
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    webhook, _ = webhooks.add_webhook("news", "http://10.0.0.1:8080/hook", [], "cli")
    assert webhook.url == "http://10.0.0.1:8080/hook"


def test_add_refuses_an_unknown_event_naming_the_known_ones(context: None) -> None:
    with pytest.raises(Invalid) as refused:
        webhooks.add_webhook("news", "https://hooks.example/", ["comment.posted"], "cli")
    assert refused.value.field == "events"
    assert refused.value.message == (
        "Unknown event comment.posted: the events are comment.submitted, comment.approved, "
        "comment.rejected, comment.spam, comment.requeued, comment.deleted, comment.edited."
    )


def test_unknown_sites_and_webhooks(context: None) -> None:
    with pytest.raises(NotFound):
        webhooks.add_webhook("nope", "https://hooks.example/", [], "cli")
    with pytest.raises(NotFound):
        webhooks.list_webhooks("nope")
    with pytest.raises(NotFound):
        webhooks.remove_webhook(999)
    with pytest.raises(NotFound):
        webhooks.send_test(999)
    webhook, _ = webhooks.add_webhook("news", "https://hooks.example/", [], "cli")
    with pytest.raises(NotFound):  # named through another site
        webhooks.remove_webhook(webhook.id, site_id=webhook.site_id + 1)
    assert len(webhooks.list_webhooks("news")) == 1


def test_excerpt_is_one_short_line() -> None:
    assert webhooks.excerpt(b"  bad\r\n\tgateway\x00 ") == "bad gateway"
    assert webhooks.excerpt("é" * 300, 10) == "é" * 9 + "…"
    assert webhooks.excerpt(b"\xff\xfeok") == "\ufffd\ufffdok"


def test_a_body_signs_as_the_specification_says() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    body = webhooks.message_body("comment.approved", at, {"id": 1, "body": "Grüße"})
    assert body == (
        '{"type":"comment.approved","timestamp":"2026-01-02T03:04:05.678Z",'
        '"data":{"id":1,"body":"Gr\\u00fc\\u00dfe"}}'
    )

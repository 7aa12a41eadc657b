"""Reply notifications (DESIGN §8), end to end with a real SMTP server: the checkbox, the
confirmation after approval, reply mails with RFC 8058 one-click unsubscribe, the caps."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import (
    Comment,
    Delivery,
    DeliveryState,
    Page,
    Site,
    Subscriber,
    Subscription,
)
from commentsvc.notifications import replies
from commentsvc.services import outbox
from tests.conftest import ORIGIN, PUBLIC_URL, valid_submission
from tests.support.html import html
from tests.support.smtp import Received, SmtpServer

SUBMIT = "/api/v1/sites/news/comments"
PAGE = "/2025/10/us-china-talks"
ADA = "ada@example.com"
BOB = "bob@example.com"
LINK = re.compile(re.escape(PUBLIC_URL) + r"(/notifications/(?:confirm|unsubscribe)/[\w.-]+)")


@pytest.fixture
def mail(mail_app: Flask, smtp_server: SmtpServer) -> SmtpServer:
    """Mail on: the app sends to ``smtp_server`` (which the tests read)."""
    return smtp_server


def submit(client: FlaskClient, **fields: Any) -> int:
    response = client.post(SUBMIT, json=valid_submission(**fields), headers={"Origin": ORIGIN})
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def moderate(client: FlaskClient, auth: dict[str, str], comment_id: int, status: str) -> None:
    response = client.patch(
        f"/api/v1/moderation/comments/{comment_id}", json={"status": status}, headers=auth
    )
    assert response.status_code == 200, response.get_json()


def mails_to(smtp: SmtpServer, address: str) -> list[Received]:
    """The messages to ``address`` (moderators get mails of their own)."""
    return [received for received in smtp.messages if received.recipients == [address]]


def link_in(received: Received) -> str:
    """The path of the service's link in a mail's text."""
    found = LINK.search(received.part("plain"))
    assert found, received.part("plain")
    return found.group(1)


def header_lines(received: Received) -> list[str]:
    """The message's header section as sent, one entry per physical line."""
    head = received.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return head.decode("ascii").splitlines()


def confirmed_comment(
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    smtp: SmtpServer,
    **fields: Any,
) -> int:
    """Ada's approved comment asking for reply mails, her address confirmed."""
    comment_id = submit(client, notify_replies=True, **fields)
    moderate(client, auth, comment_id, "approved")
    deliver()
    confirmation = mails_to(smtp, ADA)[-1]
    assert client.post(link_in(confirmation)).status_code == 200
    return comment_id


def reply(client: FlaskClient, auth: dict[str, str], parent_id: int, **fields: Any) -> int:
    """An approved reply to ``parent_id``, by Bob unless told otherwise."""
    fields = {"author_name": "Bob", "author_email": BOB, "body": "A reply.", **fields}
    reply_id = submit(client, parent_id=parent_id, **fields)
    moderate(client, auth, reply_id, "approved")
    return reply_id


def subscriber(app: Flask, email: str = ADA) -> Subscriber | None:
    with app.app_context():
        return db.session.scalars(sa.select(Subscriber).where(Subscriber.email == email)).first()


def reply_deliveries(app: Flask) -> list[Delivery]:
    with app.app_context():
        query = sa.select(Delivery).where(Delivery.kind == replies.REPLY_KIND)
        return list(db.session.scalars(query.order_by(Delivery.id)))


def assert_page_headers(response: Any) -> None:
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "form-action 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


# -- the field --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", 1, 0, [], {}])
def test_notify_replies_must_be_a_json_boolean(client: FlaskClient, value: object) -> None:
    response = client.post(SUBMIT, json=valid_submission(notify_replies=value))
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"notify_replies": ["Must be true or false."]}


@pytest.mark.parametrize(("value", "stored"), [(True, True), (False, False), (None, False)])
def test_notify_replies_is_stored_and_never_shown(
    app: Flask, client: FlaskClient, value: bool | None, stored: bool
) -> None:
    response = client.post(SUBMIT, json=valid_submission(notify_replies=value))
    assert response.status_code == 201
    assert "notify_replies" not in response.get_json()
    with app.app_context():
        comment = db.session.get(Comment, response.get_json()["id"])
        assert comment is not None and comment.notify_replies is stored


@pytest.mark.parametrize(
    ("value", "stored"), [("on", True), ("1", True), ("TRUE", True), (None, False), ("", False)]
)
def test_the_forms_checkbox_is_stored(
    app: Flask, client: FlaskClient, value: str | None, stored: bool
) -> None:
    form = {**valid_submission(), "return_to": f"{ORIGIN}{PAGE}"}
    if value is not None:
        form["notify_replies"] = value
    response = client.post(SUBMIT, data=form)
    assert response.status_code == 303
    with app.app_context():
        comment = db.session.scalars(sa.select(Comment)).one()
        assert comment.notify_replies is stored


def test_a_form_error_shows_the_checkbox_again_as_it_was(client: FlaskClient) -> None:
    form = {**valid_submission(body=" "), "return_to": f"{ORIGIN}{PAGE}", "notify_replies": "on"}
    page = html(client.post(SUBMIT, data=form))
    box = page.find("input", name="notify_replies")
    assert box.attrs["type"] == "checkbox" and "checked" in box.attrs
    label = page.find("label", for_="notify_replies")
    assert label.text == "Notify me of follow-up comments by email."


def test_a_checkbox_value_that_means_nothing_is_refused(client: FlaskClient) -> None:
    form = {**valid_submission(), "return_to": f"{ORIGIN}{PAGE}", "notify_replies": "maybe"}
    response = client.post(SUBMIT, data=form, headers={"Accept": "application/problem+json"})
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["notify_replies"]


# -- confirmation -----------------------------------------------------------------------


def test_nothing_is_mailed_before_approval_then_one_confirmation(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    comment_id = submit(client, notify_replies=True)
    deliver()
    assert mails_to(mail, ADA) == []
    assert subscriber(app) is None

    moderate(client, auth, comment_id, "approved")
    deliver()
    [confirmation] = mails_to(mail, ADA)
    assert confirmation.message["Subject"] == "Confirm reply notifications on News"
    text = confirmation.part("plain")
    assert "A thoughtful comment." in text  # which comment asked
    assert f"{ORIGIN}{PAGE}#comment-{comment_id}" in text
    assert link_in(confirmation).startswith("/notifications/confirm/")
    assert confirmation.message["Auto-Submitted"] == "auto-generated"
    found = subscriber(app)
    assert found is not None and found.confirmed_at is None
    with app.app_context():
        subscription = db.session.scalars(sa.select(Subscription)).one()
        assert subscription.comment_id == comment_id


def test_the_confirmation_link_confirms_on_post_only(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    moderate(client, auth, submit(client, notify_replies=True), "approved")
    deliver()
    path = link_in(mails_to(mail, ADA)[0])
    anonymous = app.test_client()  # a mail reader: no session, no CSRF token

    shown = anonymous.get(path)
    assert shown.status_code == 200
    assert_page_headers(shown)
    form = html(shown).find("form")
    assert form.attrs["method"] == "post"
    assert form.find("button").text == "Confirm reply notifications"
    found = subscriber(app)
    assert found is not None and found.confirmed_at is None  # GET changes nothing

    done = anonymous.post(path)
    assert done.status_code == 200
    assert_page_headers(done)
    assert html(done).find("h1").text == "Reply notifications are on"
    found = subscriber(app)
    assert found is not None and found.confirmed_at is not None

    again = anonymous.post(path)
    assert again.status_code == 200
    assert "confirmed already" in html(again).find("p", role="status").text


def test_a_confirmed_address_needs_no_new_confirmation(
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    confirmed_comment(client, auth, deliver, mail)
    second = submit(client, notify_replies=True, body="Another thought.")
    moderate(client, auth, second, "approved")
    deliver()
    assert len(mails_to(mail, ADA)) == 1
    reply(client, auth, second)
    deliver()
    [_, mailed] = mails_to(mail, ADA)
    assert mailed.message["Subject"] == "Bob replied to your comment on US-China talks"


def test_the_confirmation_is_not_sent_twice_in_a_day(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    for body in ("First.", "Second."):
        moderate(client, auth, submit(client, notify_replies=True, body=body), "approved")
        deliver()
    assert len(mails_to(mail, ADA)) == 1

    with app.app_context():
        for delivery in db.session.scalars(sa.select(Delivery)):
            delivery.created_at -= timedelta(hours=25)
        db.session.commit()
    moderate(client, auth, submit(client, notify_replies=True, body="Third."), "approved")
    deliver()
    assert len(mails_to(mail, ADA)) == 2


def test_links_that_are_not_ours_or_too_old(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for path in ("/notifications/confirm/nonsense", "/notifications/unsubscribe/nonsense"):
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code == 404
            assert_page_headers(response)
    with app.app_context():
        # Signed, but for another purpose: an unsubscribe token confirms nothing.
        other = replies.unsubscribe_token(1, 1)
    assert client.post(f"/notifications/confirm/{other}").status_code == 404

    moderate(client, auth, submit(client, notify_replies=True), "approved")
    deliver()
    path = link_in(mails_to(mail, ADA)[0])
    monkeypatch.setattr(replies, "CONFIRM_LINK_AGE", timedelta(seconds=-1))
    for method in ("get", "post"):
        expired = getattr(client, method)(path)
        assert expired.status_code == 410
        assert_page_headers(expired)
        assert html(expired).find("h1").text == "Link expired"
    found = subscriber(app)
    assert found is not None and found.confirmed_at is None


def test_an_old_link_of_a_confirmed_address_says_so(
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    confirmed_comment(client, auth, deliver, mail)
    monkeypatch.setattr(replies, "CONFIRM_LINK_AGE", timedelta(seconds=-1))
    again = client.post(link_in(mails_to(mail, ADA)[0]))
    assert again.status_code == 200
    assert html(again).find("h1").text == "Reply notifications are on"


def test_the_unsubscribe_link_of_a_deleted_comment_says_it_is_over(
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    parent = confirmed_comment(client, auth, deliver, mail)
    reply(client, auth, parent)
    deliver()
    path = link_in(mails_to(mail, ADA)[-1])
    assert client.delete(f"/api/v1/moderation/comments/{parent}", headers=auth).status_code == 204
    for method in ("get", "post"):
        response = getattr(client, method)(path)
        assert response.status_code == 200
        assert "The comment is gone" in html(response).find("p", role="status").text


# -- reply mails ------------------------------------------------------------------------


def test_an_approved_reply_mails_the_author_who_can_unsubscribe_in_one_click(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    parent = confirmed_comment(client, auth, deliver, mail)
    reply_id = submit(client, parent_id=parent, author_name="Bob", author_email=BOB, body="Hi Ada!")
    deliver()
    assert len(mails_to(mail, ADA)) == 1  # the reply is not approved yet
    moderate(client, auth, reply_id, "approved")
    deliver()
    [_, mailed] = mails_to(mail, ADA)
    assert mails_to(mail, BOB) == []
    assert mailed.message["Subject"] == "Bob replied to your comment on US-China talks"
    text = mailed.part("plain")
    assert "Hi Ada!" in text
    assert f"{ORIGIN}{PAGE}#comment-{reply_id}" in text
    assert "Hi Ada!" in mailed.part("html")
    # RFC 8058: the URL unfolded on one line (no encoded words), and the one-click header.
    path = link_in(mailed)
    assert f"List-Unsubscribe: <{PUBLIC_URL}{path}>" in header_lines(mailed)
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in header_lines(mailed)
    assert f"{PUBLIC_URL}{path}" in text

    # The mail provider's one-click POST: no cookies, no CSRF token, that body only.
    provider = app.test_client()
    response = provider.post(
        path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert_page_headers(response)
    with app.app_context():
        subscription = db.session.scalars(sa.select(Subscription)).one()
        assert subscription.unsubscribed_at is not None
    assert provider.post(path, data="List-Unsubscribe=One-Click").status_code == 200

    reply(client, auth, parent, author_email="carol@example.com", author_name="Carol")
    deliver()
    assert len(mails_to(mail, ADA)) == 2

    shown = html(client.get(path))
    assert shown.find("h1").text == "Reply notifications stopped"
    assert shown.find("button").text == "Stop all reply emails from News"


def test_unsubscribing_from_the_whole_site(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    first = confirmed_comment(client, auth, deliver, mail)
    second = submit(client, notify_replies=True, body="Another thought.")
    moderate(client, auth, second, "approved")
    reply(client, auth, first)
    deliver()
    path = link_in(mails_to(mail, ADA)[-1])
    page = html(client.get(path))
    assert [button.text for button in page.find_all("button")] == [
        "Stop emails about this comment",
        "Stop all reply emails from News",
    ]
    found = subscriber(app)
    assert found is not None and found.unsubscribed_at is None  # GET changes nothing

    done = client.post(path, data={"scope": "site"})
    assert done.status_code == 200
    assert "no more emails about replies from News" in html(done).find("p", role="status").text
    found = subscriber(app)
    assert found is not None and found.unsubscribed_at is not None

    reply(client, auth, second, body="Nobody hears of this.")
    deliver()
    assert len(mails_to(mail, ADA)) == 2


def test_the_repliers_own_address_gets_nothing(
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    parent = confirmed_comment(client, auth, deliver, mail)
    reply(client, auth, parent, author_name="Ada", author_email="ADA@example.com")
    deliver()
    assert len(mails_to(mail, ADA)) == 1
    assert mails_to(mail, "ADA@example.com") == []


def test_an_unconfirmed_address_gets_no_reply_mails(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    parent = submit(client, notify_replies=True)
    moderate(client, auth, parent, "approved")
    reply(client, auth, parent)
    deliver()
    [confirmation] = mails_to(mail, ADA)
    assert confirmation.message["Subject"].startswith("Confirm")
    assert reply_deliveries(app) == []


def test_a_comment_that_did_not_ask_gets_no_reply_mails(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    confirmed_comment(client, auth, deliver, mail)
    other = submit(client, body="Not this one.")
    moderate(client, auth, other, "approved")
    reply(client, auth, other)
    deliver()
    assert len(mails_to(mail, ADA)) == 1


def test_replies_past_the_hourly_cap_are_skipped(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    app.config["REPLY_MAILS_PER_HOUR"] = 2
    parent = confirmed_comment(client, auth, deliver, mail)
    for number in range(3):
        reply(client, auth, parent, body=f"Reply {number}.")
    deliver()
    assert len(mails_to(mail, ADA)) == 1 + 2
    states = [(d.state, d.last_error) for d in reply_deliveries(app)]
    assert states == [
        (DeliveryState.DELIVERED, None),
        (DeliveryState.DELIVERED, None),
        (DeliveryState.SKIPPED, "hourly cap"),
    ]
    skipped = reply_deliveries(app)[-1]
    assert skipped.finished_at is not None  # pruned like any finished delivery


def test_an_approval_after_a_requeue_does_not_mail_again(
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    parent = confirmed_comment(client, auth, deliver, mail)
    reply_id = reply(client, auth, parent)
    deliver()
    assert len(mails_to(mail, ADA)) == 2
    moderate(client, auth, reply_id, "pending")
    moderate(client, auth, reply_id, "approved")
    deliver()
    assert len(mails_to(mail, ADA)) == 2


def test_a_reply_moderated_again_before_it_is_sent_is_skipped(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    parent = confirmed_comment(client, auth, deliver, mail)
    reply_id = reply(client, auth, parent)
    with app.app_context():
        outbox.dispatch()  # planned while approved
    moderate(client, auth, reply_id, "rejected")
    deliver()
    assert len(mails_to(mail, ADA)) == 1
    [delivery] = reply_deliveries(app)
    assert (delivery.state, delivery.last_error) == (
        DeliveryState.SKIPPED,
        "the reply is no longer approved",
    )


def test_no_mail_at_all_without_smtp(
    app: Flask, client: FlaskClient, auth: dict[str, str], deliver: Callable[[], None]
) -> None:
    moderate(client, auth, submit(client, notify_replies=True), "approved")
    deliver()
    assert subscriber(app) is None
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0


def test_commenter_input_cannot_add_headers(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    mail: SmtpServer,
) -> None:
    """The API refuses line breaks in a name or a title; comments written otherwise (an
    import, an older version) may still hold them."""
    title = "Talks\r\nX-Injected: title\nBcc: eve@example.net"
    parent = submit(client, notify_replies=True)
    with app.app_context():
        db.session.execute(sa.update(Site).values(name="News\r\nBcc: eve@example.net"))
        db.session.execute(sa.update(Comment).values(page_title=title))
        db.session.commit()
    moderate(client, auth, parent, "approved")
    deliver()
    [confirmation] = mails_to(mail, ADA)
    assert client.post(link_in(confirmation)).status_code == 200

    reply_id = submit(client, parent_id=parent, author_email=BOB, body="Hi\nBcc: eve@example.net")
    with app.app_context():
        db.session.execute(
            sa.update(Comment)
            .where(Comment.id == reply_id)
            .values(author_name="Bob\r\nBcc: eve@example.net\r\nX-Injected: name")
        )
        db.session.execute(sa.update(Comment).values(page_title=title))
        db.session.commit()
    moderate(client, auth, reply_id, "approved")
    deliver()
    [_, mailed] = mails_to(mail, ADA)
    for received in (confirmation, mailed):
        lines = header_lines(received)
        assert not [line for line in lines if re.match(r"(?i)(bcc|x-injected):", line)], lines
        assert received.recipients == [ADA]
    assert mailed.message["Subject"].startswith("Bob Bcc: eve@example.net X-Injected: name replied")
    assert mailed.message["Subject"].endswith("on Talks X-Injected: title Bcc: eve@example.net")
    with app.app_context():
        page = db.session.scalars(sa.select(Page)).one()
        assert page.title == title

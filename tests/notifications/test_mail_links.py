"""The one-click links of a moderator's mail (DESIGN §8): GET shows the comment and one
button and changes nothing; the button decides once, as the moderator the link names, with
the audit note ``from email``; used, expired, forged, out of scope or outdated links do
nothing and say why."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from werkzeug.test import TestResponse

from commentsvc.extensions import db
from commentsvc.models import MailLink, ModerationEvent, Moderator, Site, utcnow
from commentsvc.panel.blueprint import CONTENT_SECURITY_POLICY
from commentsvc.services import mail_links
from tests.support.html import Element, html
from tests.support.moderator_mail import add_moderator, links, submit
from tests.support.smtp import SmtpServer
from tests.support.state import APPROVED, PENDING, events_of, status_of

MODERATOR = "mod@example.com"


@pytest.fixture
def mailed(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
) -> dict[str, Any]:
    """A pending comment mailed to one moderator: its id, and the mail's links (paths)."""
    add_moderator(mail_app, MODERATOR, sites=("news",))
    comment_id = submit(client, body="Is this <b>bold</b>?", page_title="US-China talks")
    deliver()
    [mail] = smtp_server.messages
    found = links(mail)
    return {"comment": comment_id, **{kind: paths[0] for kind, paths in found.items()}}


def the_form(response: TestResponse) -> Element:
    return html(response).find("form", id="mail-link-form")


def moderate_by_api(
    client: FlaskClient, make_token: Callable[..., str], path: str, **kw: Any
) -> None:
    auth = {"Authorization": f"Bearer {make_token('other@example.com')}"}
    method = client.delete if kw.get("delete") else client.patch
    body = None if kw.get("delete") else {"status": kw["status"]}
    response = method(f"/api/v1/moderation/comments/{path}", json=body, headers=auth)
    assert response.status_code in {200, 204}


def test_get_shows_the_comment_and_one_button_and_changes_nothing(
    app: Flask, client: FlaskClient, mailed: dict[str, Any]
) -> None:
    for kind, label in (("approve", "Approve"), ("reject", "Reject"), ("spam", "Mark as spam")):
        response = client.get(mailed[kind])
        assert response.status_code == 200
        page = html(response)
        assert page.find("dd", cls="site-name").text == "News"
        assert page.find("dd", cls="page").text == "US-China talks"
        assert page.find("dd", cls="author-name").text == "Ada Lovelace"
        assert page.find("div", cls="body").text == "Is this <b>bold</b>?"
        form = the_form(response)
        assert (form.attrs["method"], form.attrs["action"]) == ("post", mailed[kind])
        assert [button.text for button in form.find_all("button")] == [label]
        assert form.find_all("input") == []  # no CSRF token: the signed URL is the authority
        assert len(page.find_all("form", id="mail-link-form")) == 1
    assert status_of(app, mailed["comment"]) == PENDING
    assert events_of(app, mailed["comment"]) == []
    with app.app_context():
        assert db.session.scalars(sa.select(MailLink.used_at)).all() == [None, None, None]


def test_the_button_approves_once_as_the_moderator_from_email(
    app: Flask, client: FlaskClient, mailed: dict[str, Any]
) -> None:
    response = client.post(mailed["approve"])
    assert response.status_code == 200
    assert html(response).find("h1").text == "Approved"
    assert status_of(app, mailed["comment"]) == APPROVED
    assert events_of(app, mailed["comment"]) == [("approve", "pending", "approved", "from email")]
    with app.app_context():
        event = db.session.scalar(sa.select(ModerationEvent))
        assert event is not None and event.actor == MODERATOR
        assert None not in db.session.scalars(sa.select(MailLink.used_at)).all()

    again = client.post(mailed["approve"])
    assert again.status_code == 410
    assert "used already" in html(again).find("p", cls="message").text
    assert "Approved by mod@example.com" in html(again).find("p", cls="happened").text
    # One decision per mail: its other links are used up with it.
    assert client.get(mailed["reject"]).status_code == 410
    assert client.post(mailed["spam"]).status_code == 410
    assert status_of(app, mailed["comment"]) == APPROVED
    assert len(events_of(app, mailed["comment"])) == 1


def test_expired_links_do_nothing(app: Flask, client: FlaskClient, mailed: dict[str, Any]) -> None:
    with app.app_context():
        for link in db.session.scalars(sa.select(MailLink)):
            link.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    for request in (client.get, client.post):
        response = request(mailed["approve"])
        assert response.status_code == 410
        assert html(response).find("p", cls="message").text.startswith("This link has expired.")
    assert status_of(app, mailed["comment"]) == PENDING
    assert events_of(app, mailed["comment"]) == []


def _signed_long_ago(app: Flask, link_id: int, hours: int) -> str:
    """A token of ``link_id`` signed ``hours`` ago, as the service signs them."""

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - hours * 3600

    secret = str(app.config["SECRET_KEY"])
    return URLSafeTimedSerializer(secret, salt=mail_links.SALT, signer=LongAgo).dumps(link_id)


def test_a_signature_older_than_the_lifetime_has_expired(
    app: Flask, client: FlaskClient, mailed: dict[str, Any]
) -> None:
    with app.app_context():
        link = db.session.scalar(sa.select(MailLink).where(MailLink.action == "approve"))
        assert link is not None
        link.expires_at = utcnow() + timedelta(days=30)  # the row alone would still allow it
        db.session.commit()
        link_id = link.id
    old = _signed_long_ago(app, link_id, hours=73)
    assert client.get(f"/moderation/mail/{old}").status_code == 410
    assert client.post(f"/moderation/mail/{old}").status_code == 410
    recent = _signed_long_ago(app, link_id, hours=71)
    assert client.get(f"/moderation/mail/{recent}").status_code == 200
    assert status_of(app, mailed["comment"]) == PENDING


def test_forged_links_are_not_found(
    app: Flask, client: FlaskClient, mailed: dict[str, Any]
) -> None:
    token = mailed["approve"].removeprefix("/moderation/mail/")
    payload, rest = token.split(".", 1)
    other_payload = "Mg" if payload != "Mg" else "Mw"  # the id 2 (or 3) under this signature
    other_secret = URLSafeTimedSerializer("not-our-secret", salt=mail_links.SALT)
    other_salt = URLSafeTimedSerializer(str(app.config["SECRET_KEY"]), salt="commentsvc.x")
    forged = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        other_payload + "." + rest,
        other_secret.dumps(1),
        other_salt.dumps(1),
        _signed_long_ago(app, 999, hours=0),  # signed by us, but there is no such link
        "not-a-token",
    ]
    for path in [f"/moderation/mail/{value}" for value in forged]:
        assert client.get(path).status_code == 404, path
        assert client.post(path).status_code == 404, path
    assert status_of(app, mailed["comment"]) == PENDING
    assert events_of(app, mailed["comment"]) == []


def test_a_comment_moderated_since_the_mail_says_what_happened(
    app: Flask, client: FlaskClient, mailed: dict[str, Any], make_token: Callable[..., str]
) -> None:
    moderate_by_api(client, make_token, str(mailed["comment"]), status="rejected")
    for request in (client.get, client.post):
        response = request(mailed["approve"])
        assert response.status_code == 409
        page = html(response)
        assert page.find("p", cls="message").text.startswith("This comment has been moderated")
        happened = page.find("p", cls="happened").text
        assert "Rejected by other@example.com" in happened
        assert "it is now rejected" in happened
    assert events_of(app, mailed["comment"]) == [("reject", "pending", "rejected", None)]
    with app.app_context():
        assert db.session.scalars(sa.select(MailLink.used_at)).all() == [None, None, None]


def test_a_comment_deleted_since_the_mail_says_so(
    app: Flask, client: FlaskClient, mailed: dict[str, Any], make_token: Callable[..., str]
) -> None:
    moderate_by_api(client, make_token, str(mailed["comment"]), delete=True)
    response = client.post(mailed["spam"])
    assert response.status_code == 409
    happened = html(response).find("p", cls="happened").text
    assert "Deleted by other@example.com" in happened and "it no longer exists" in happened
    assert [event[0] for event in events_of(app, mailed["comment"])] == ["delete"]


@pytest.mark.parametrize("change", ["other site", "inactive"])
def test_a_moderator_who_may_no_longer_moderate_is_refused(
    app: Flask, client: FlaskClient, mailed: dict[str, Any], change: str
) -> None:
    with app.app_context():
        moderator = db.session.scalar(sa.select(Moderator).where(Moderator.email == MODERATOR))
        blog = db.session.scalar(sa.select(Site).where(Site.slug == "blog"))
        assert moderator is not None and blog is not None
        if change == "inactive":
            moderator.is_active = False
        else:
            moderator.sites = [blog]
        db.session.commit()
    for request in (client.get, client.post):
        response = request(mailed["approve"])
        assert response.status_code == 403
        assert "Is this" not in response.get_data(as_text=True)
    assert status_of(app, mailed["comment"]) == PENDING
    assert events_of(app, mailed["comment"]) == []


def test_two_clicks_at_once_decide_once(app: Flask, mailed: dict[str, Any]) -> None:
    clicks = [mailed["approve"], mailed["reject"], mailed["approve"], mailed["spam"]]
    start = threading.Barrier(len(clicks))
    answers: list[int] = []

    def click(path: str) -> None:
        client = app.test_client()
        start.wait()
        answers.append(client.post(path).status_code)

    threads = [threading.Thread(target=click, args=(path,)) for path in clicks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 410, 410, 410]
    [event] = events_of(app, mailed["comment"])
    assert event[3] == "from email"


def test_the_link_pages_have_the_panels_security_headers(
    client: FlaskClient, mailed: dict[str, Any]
) -> None:
    responses = [
        client.get(mailed["approve"]),
        client.get("/moderation/mail/forged"),
        client.post(mailed["approve"]),
        client.post(mailed["approve"]),
    ]
    assert [response.status_code for response in responses] == [200, 404, 200, 410]
    for response in responses:
        headers = response.headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Cache-Control"] == "no-store"
        assert response.mimetype == "text/html"

"""Personal data (DESIGN §9): the export of one address, its erasure, by an administrator
(moderation API, CLI) and by the commenter's own mailed link; end to end with a real SMTP
server. An erased address leaves no trace in any table."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from commentsvc.extensions import db
from commentsvc.models import (
    Comment,
    Delivery,
    DeliveryState,
    ModerationEvent,
    Moderator,
    OutboxEvent,
    PersonalDataRequest,
    Subscriber,
    Webhook,
    utcnow,
)
from commentsvc.notifications import personal_data as requests
from commentsvc.services import personal_data
from tests.conftest import ORIGIN, OTHER_ORIGIN, PUBLIC_URL, valid_submission
from tests.notifications.test_reply_mail import assert_page_headers
from tests.support.panel import add_moderator, logged_in
from tests.support.smtp import Received, SmtpServer

ADA = "ada@example.com"
BOB = "bob@example.com"
#: What Ada's comments carry that is hers: after an erasure, none of it is anywhere.
ADA_TRACES = ("ada@example.com", "ada lovelace", "ada.example", "adabrowser")
ADA_AGENT = "AdaBrowser/1.0"
REQUESTS = "/api/v1/sites/news/personal-data-requests"
EXPORT = "/api/v1/moderation/personal-data"
ERASE = "/api/v1/moderation/personal-data/erase"
LINK = re.compile(re.escape(PUBLIC_URL) + r"(/notifications/(?:confirm|personal-data)/[\w.-]+)")


@pytest.fixture
def mail(mail_app: Flask, smtp_server: SmtpServer) -> SmtpServer:
    return smtp_server


@pytest.fixture
def admin(app: Flask, make_token: Callable[..., str]) -> dict[str, str]:
    """Authorization headers of an administrator."""
    token = make_token("admin@example.com")
    with app.app_context():
        db.session.execute(
            sa.update(Moderator).where(Moderator.email == "admin@example.com").values(is_admin=True)
        )
        db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def submit(client: FlaskClient, origin: str = ORIGIN, site: str = "news", **fields: Any) -> int:
    agent = ADA_AGENT if fields.get("author_email", ADA).lower() == ADA else "BobBrowser/2.0"
    response = client.post(
        f"/api/v1/sites/{site}/comments",
        json=valid_submission(**fields),
        headers={"Origin": origin, "User-Agent": agent},
    )
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def moderate(client: FlaskClient, auth: dict[str, str], comment_id: int, **change: Any) -> None:
    response = client.patch(f"/api/v1/moderation/comments/{comment_id}", json=change, headers=auth)
    assert response.status_code == 200, response.get_json()


def mails_to(smtp: SmtpServer, address: str) -> list[Received]:
    """The messages to ``address``, whatever the case of its letters."""
    return [got for got in smtp.messages if [r.lower() for r in got.recipients] == [address]]


def link_in(received: Received) -> str:
    found = LINK.search(received.part("plain"))
    assert found, received.part("plain")
    return found.group(1)


@dataclass
class Conversation:
    """Ada's comments on two sites, Bob's reply to one, and what the service keeps of it."""

    ada_news: int
    ada_pending: int
    ada_blog: int
    bob_reply: int


@pytest.fixture
def conversation(
    app: Flask,
    client: FlaskClient,
    mail: SmtpServer,
    auth: dict[str, str],
    deliver: Callable[[], None],
) -> Conversation:
    """Ada asks for reply mails and confirms; a moderator notes her name; Bob replies; a
    webhook hears of all of it (its calls still to be sent: nothing listens there)."""
    with app.app_context():
        site_id = db.session.scalar(sa.text("SELECT id FROM sites WHERE slug = 'news'"))
        db.session.add(
            Webhook(
                site_id=site_id,
                url="http://127.0.0.1:9/hook",
                secret="whsec_" + "A" * 43,
                created_by="test",
            )
        )
        db.session.commit()
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    ada_news = submit(client, notify_replies=True, author_email="Ada@Example.com")
    moderate(client, auth, ada_news, status="approved", note="Ada Lovelace writes well")
    deliver()
    assert client.post(link_in(mails_to(mail, ADA)[-1])).status_code == 200
    ada_pending = submit(client, body="Another thought.")
    ada_blog = submit(client, origin=OTHER_ORIGIN, site="blog", page_url=f"{OTHER_ORIGIN}/a")
    bob_reply = submit(
        client, author_name="Bob", author_email=BOB, author_url="", parent_id=ada_news
    )
    moderate(client, auth, bob_reply, status="approved")
    deliver()
    return Conversation(ada_news, ada_pending, ada_blog, bob_reply)


def dump(app: Flask) -> str:
    """Every row of every table (reflected, so none is missed), as lower-case text."""
    with app.app_context():
        metadata = sa.MetaData()
        metadata.reflect(db.engine)
        return "\n".join(
            f"{table.name}: {tuple(row)!r}"
            for table in metadata.sorted_tables
            for row in db.session.execute(sa.select(table))
        ).lower()


def traces(app: Flask) -> list[str]:
    text = dump(app)
    return [line for line in text.splitlines() if any(trace in line for trace in ADA_TRACES)]


# -- export -----------------------------------------------------------------------------


def test_the_export_holds_every_comment_of_the_address_and_nothing_of_anyone_else(
    client: FlaskClient, conversation: Conversation, admin: dict[str, str]
) -> None:
    response = client.get(EXPORT, query_string={"email": "ADA@example.COM"}, headers=admin)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    document = response.get_json()
    assert document["email"] == "ADA@example.com"  # as email-validator normalizes it
    comments = {comment["id"]: comment for comment in document["comments"]}
    assert sorted(comments) == [
        conversation.ada_news,
        conversation.ada_pending,
        conversation.ada_blog,
    ]
    news = comments[conversation.ada_news]
    assert news["site"] == "news"
    assert news["status"] == "approved"
    assert news["author_name"] == "Ada Lovelace"
    assert news["author_email"].lower() == ADA
    assert news["author_url"] == "https://ada.example/"
    assert news["user_agent"] == ADA_AGENT
    assert news["page"]["key"] == "/2025/10/us-china-talks"
    assert comments[conversation.ada_blog]["site"] == "blog"
    assert comments[conversation.ada_pending]["status"] == "pending"
    [subscription] = document["reply_subscriptions"]
    assert subscription["site"] == "news"
    assert subscription["confirmed_at"] is not None
    assert subscription["comments"] == [
        {"comment_id": conversation.ada_news, "unsubscribed_at": None}
    ]
    kinds = [mail["kind"] for mail in document["mails"]]
    assert "reply_confirm" in kinds and "reply" in kinds
    text = json.dumps(document).lower()
    assert "bob" not in text and "a reply" not in text


def test_the_moderation_api_offers_personal_data_to_administrators_only(
    client: FlaskClient, app: Flask, auth: dict[str, str], admin: dict[str, str]
) -> None:
    assert client.get(EXPORT, query_string={"email": ADA}).status_code == 401
    refused = client.get(EXPORT, query_string={"email": ADA}, headers=auth)
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert client.post(ERASE, json={"email": ADA}, headers=auth).status_code == 403
    missing = client.get(EXPORT, headers=admin)
    assert missing.status_code == 422
    assert list(missing.get_json()["errors"]) == ["email"]
    bad = client.post(ERASE, json={"email": "nobody", "delete_comments": "yes"}, headers=admin)
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"email", "delete_comments"}
    unknown = client.get(EXPORT, query_string={"email": "nobody@example.com"}, headers=admin)
    assert unknown.status_code == 200
    assert unknown.get_json()["comments"] == []


# -- erasure ----------------------------------------------------------------------------


def test_erasing_an_address_leaves_no_trace_of_it_in_any_table(
    app: Flask,
    client: FlaskClient,
    conversation: Conversation,
    admin: dict[str, str],
    auth: dict[str, str],
) -> None:
    before = traces(app)
    assert any(line.startswith("comments:") for line in before)
    assert any(line.startswith("outbox_events:") for line in before)
    assert any(line.startswith("deliveries:") for line in before)
    assert any(line.startswith("subscribers:") for line in before)
    assert any(line.startswith("moderation_events:") for line in before)
    thread = client.get(
        "/api/v1/sites/news/comments", query_string={"page": "/2025/10/us-china-talks"}
    )
    assert "Ada Lovelace" in thread.get_data(as_text=True)  # and now cached

    response = client.post(ERASE, json={"email": ADA}, headers=admin)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "email": ADA,
        "comments": 3,
        "deleted_comments": False,
        "subscriptions": 1,
        "mails_cancelled": 0,
    }
    assert traces(app) == []

    thread = client.get(
        "/api/v1/sites/news/comments", query_string={"page": "/2025/10/us-china-talks"}
    )
    body = thread.get_data(as_text=True)
    assert "Ada Lovelace" not in body and "Anonymous" in body
    detail = client.get(f"/api/v1/moderation/comments/{conversation.ada_news}", headers=auth)
    comment = detail.get_json()
    assert comment["author_name"] == "Anonymous"
    assert comment["author_email"] == "" and comment["author_url"] is None
    assert comment["status"] == "approved"
    assert [event["note"] for event in comment["events"]] == [None, "personal data erased"]
    assert comment["events"][-1]["moderator"] == "admin@example.com"
    with app.app_context():
        reply = db.session.get(Comment, conversation.bob_reply)
        assert reply is not None and reply.parent_id == conversation.ada_news
        assert reply.author_email == BOB


def test_the_panel_shows_an_erased_author_as_erased(
    app: Flask, client: FlaskClient, conversation: Conversation, admin: dict[str, str]
) -> None:
    assert client.post(ERASE, json={"email": ADA}, headers=admin).status_code == 200
    add_moderator(app, "panel@example.com", admin=True)
    panel = logged_in(app, "panel@example.com")
    page = panel.get(f"/moderation/comments/{conversation.ada_news}").get_data(as_text=True)
    assert "Anonymous" in page
    assert "personal data erased" in page
    assert "Other comments by" not in page  # erased authors are not "the same author"
    assert ADA not in page.lower()


def test_erasing_with_delete_comments_deletes_them_and_keeps_the_replies(
    app: Flask, client: FlaskClient, conversation: Conversation, admin: dict[str, str]
) -> None:
    response = client.post(ERASE, json={"email": ADA, "delete_comments": True}, headers=admin)
    assert response.status_code == 200
    assert response.get_json()["deleted_comments"] is True
    assert traces(app) == []
    with app.app_context():
        assert db.session.get(Comment, conversation.ada_news) is None
        reply = db.session.get(Comment, conversation.bob_reply)
        assert reply is not None and reply.parent_id is None
        events = db.session.scalars(
            sa.select(OutboxEvent)
            .where(OutboxEvent.comment_id == conversation.ada_news)
            .order_by(OutboxEvent.id)
        ).all()
        assert events[-1].type == "comment.deleted"
        assert all(event.data.get("body", "") == "" for event in events)
        # The webhook's calls not sent yet still go out, without her.
        waiting = db.session.scalars(
            sa.select(Delivery).where(
                Delivery.kind == "webhook", Delivery.comment_id == conversation.ada_news
            )
        ).all()
        assert waiting and all(delivery.state == DeliveryState.PENDING for delivery in waiting)
        audit = db.session.scalars(
            sa.select(ModerationEvent).where(ModerationEvent.comment_id == conversation.ada_news)
        ).all()
        assert [event.action.value for event in audit][-1] == "delete"


def test_mails_to_the_address_not_yet_sent_are_not_sent(
    app: Flask,
    client: FlaskClient,
    conversation: Conversation,
    admin: dict[str, str],
    auth: dict[str, str],
    mail: SmtpServer,
    deliver: Callable[[], None],
) -> None:
    second = submit(
        client, author_name="Bob", author_email=BOB, body="Later.", parent_id=conversation.ada_news
    )
    moderate(client, auth, second, status="approved")
    with app.app_context():  # planned: a reply mail to Ada waits
        from commentsvc.services import outbox

        outbox.dispatch()
    sent = len(mails_to(mail, ADA))
    response = client.post(ERASE, json={"email": ADA}, headers=admin)
    assert response.get_json()["mails_cancelled"] == 1
    deliver()
    assert len(mails_to(mail, ADA)) == sent
    with app.app_context():
        skipped = db.session.scalars(
            sa.select(Delivery).where(Delivery.kind == "reply", Delivery.comment_id == second)
        ).one()
        assert skipped.state == DeliveryState.SKIPPED
        assert skipped.last_error == "personal data erased"
        assert skipped.recipient is None


def test_erasing_on_one_site_leaves_the_others(app: Flask, conversation: Conversation) -> None:
    with app.app_context():
        blog = db.session.scalar(sa.text("SELECT id FROM sites WHERE slug = 'news'"))
        erased = personal_data.erase(ADA, site_id=blog, actor="test")
        assert erased.comments == 2
        kept = db.session.get(Comment, conversation.ada_blog)
        assert kept is not None and kept.author_name == "Ada Lovelace"


# -- the commenter's own request --------------------------------------------------------


def ask(client: FlaskClient, email: str = ADA, kind: str = "export", **headers: str) -> Any:
    return client.post(
        REQUESTS, json={"email": email, "kind": kind}, headers={"Origin": ORIGIN, **headers}
    )


def test_a_request_is_accepted_whatever_the_address_and_mailed_to_it(
    app: Flask,
    client: FlaskClient,
    conversation: Conversation,
    mail: SmtpServer,
    deliver: Callable[[], None],
) -> None:
    for address in (ADA, "stranger@example.org"):
        response = ask(client, address)
        assert response.status_code == 202
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    deliver()
    [to_stranger] = mails_to(mail, "stranger@example.org")
    assert "personal data" in to_stranger.message["Subject"]
    page = client.get(link_in(to_stranger))
    assert page.status_code == 200
    assert "keeps 0 comments" in page.get_data(as_text=True)


def test_the_export_link_shows_a_page_then_downloads_her_comments_on_that_site(
    app: Flask,
    client: FlaskClient,
    conversation: Conversation,
    mail: SmtpServer,
    deliver: Callable[[], None],
) -> None:
    assert ask(client).status_code == 202
    deliver()
    path = link_in(mails_to(mail, ADA)[-1])
    page = client.get(path)
    assert page.status_code == 200
    assert_page_headers(page)
    assert "keeps 2 comments" in page.get_data(as_text=True)
    download = client.post(path)
    assert download.status_code == 200
    assert download.mimetype == "application/json"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["Cache-Control"] == "no-store"
    document = download.get_json()
    assert sorted(comment["id"] for comment in document["comments"]) == [
        conversation.ada_news,
        conversation.ada_pending,
    ]
    assert "bob" not in json.dumps(document).lower()


def test_the_erasure_link_erases_once_on_its_site(
    app: Flask,
    client: FlaskClient,
    conversation: Conversation,
    mail: SmtpServer,
    deliver: Callable[[], None],
) -> None:
    assert ask(client, kind="erase").status_code == 202
    deliver()
    path = link_in(mails_to(mail, ADA)[-1])
    page = client.get(path)
    assert "Erase my personal data" in page.get_data(as_text=True)
    with app.app_context():  # the page changes nothing
        assert db.session.get(Comment, conversation.ada_news).author_name == "Ada Lovelace"  # type: ignore[union-attr]
    done = client.post(path, data={"delete_comments": "true"})
    assert done.status_code == 200
    assert_page_headers(done)
    assert "2 comments" in done.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Comment, conversation.ada_news) is None
        assert db.session.get(Comment, conversation.ada_pending) is None
        assert db.session.get(Comment, conversation.ada_blog) is not None  # another site
        request = db.session.scalars(sa.select(PersonalDataRequest)).one()
        assert request.email is None and request.used_at is not None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == 0
    again = client.post(path)
    assert again.status_code == 410
    assert client.get(path).status_code == 410


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"email", "kind"}),
        ({"email": "not an address", "kind": "export"}, {"email"}),
        ({"email": ADA, "kind": "delete"}, {"kind"}),
        ({"email": ["ada@example.com"], "kind": None}, {"email", "kind"}),
    ],
)
def test_a_bad_request_names_its_fields_and_stores_nothing(
    app: Flask, client: FlaskClient, payload: dict[str, Any], fields: set[str]
) -> None:
    response = client.post(REQUESTS, json=payload, headers={"Origin": ORIGIN})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert set(response.get_json()["errors"]) == fields
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PersonalDataRequest)) == 0


def test_a_request_from_a_foreign_origin_or_not_json_is_refused(client: FlaskClient) -> None:
    foreign = ask(client, Origin="https://evil.example")
    assert foreign.status_code == 403
    form = client.post(REQUESTS, data={"email": ADA, "kind": "export"}, headers={"Origin": ORIGIN})
    assert form.status_code == 415


def test_one_address_is_mailed_a_few_times_a_day_and_one_client_is_stopped(
    app: Flask, client: FlaskClient, mail: SmtpServer, deliver: Callable[[], None]
) -> None:
    app.config["PERSONAL_DATA_REQUESTS_PER_DAY"] = 2
    for _ in range(3):
        assert ask(client).status_code == 202
    deliver()
    assert len(mails_to(mail, ADA)) == 2
    for number in range(17):
        assert ask(client, f"reader{number}@example.com").status_code == 202
    refused = ask(client, "one-more@example.com")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    other_client = client.post(
        REQUESTS,
        json={"email": "one-more@example.com", "kind": "export"},
        headers={"Origin": ORIGIN},
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert other_client.status_code == 202


def test_without_mail_a_request_is_accepted_and_recorded_as_not_sent(
    app: Flask, client: FlaskClient
) -> None:
    assert ask(client).status_code == 202
    with app.app_context():
        delivery = db.session.scalars(sa.select(Delivery)).one()
        assert delivery.state == DeliveryState.SKIPPED
        assert delivery.last_error == requests.NO_MAIL


def test_a_forged_or_old_link_is_refused(
    app: Flask, client: FlaskClient, mail: SmtpServer, deliver: Callable[[], None]
) -> None:
    assert client.get("/notifications/personal-data/forged").status_code == 404
    assert ask(client).status_code == 202
    deliver()
    path = link_in(mails_to(mail, ADA)[-1])
    assert client.get(path[:-2] + "xx").status_code == 404
    with app.app_context():
        db.session.execute(
            sa.update(PersonalDataRequest).values(expires_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
    assert client.get(path).status_code == 410
    assert client.post(path).status_code == 410
    with app.app_context():
        assert requests.prune(utcnow() + timedelta(days=2)) == 1
    assert client.get(path).status_code == 410


# -- the command line -------------------------------------------------------------------


def test_the_cli_exports_and_erases_after_asking(
    app: Flask, runner: FlaskCliRunner, conversation: Conversation
) -> None:
    exported = runner.invoke(args=["personal-data", "export", ADA, "--site", "blog"])
    assert exported.exit_code == 0, exported.output
    assert [c["id"] for c in json.loads(exported.output)["comments"]] == [conversation.ada_blog]
    declined = runner.invoke(args=["personal-data", "erase", ADA], input="n\n")
    assert declined.exit_code == 1
    with app.app_context():
        assert db.session.get(Comment, conversation.ada_blog).author_name == "Ada Lovelace"  # type: ignore[union-attr]
    erased = runner.invoke(args=["personal-data", "erase", ADA, "--yes"])
    assert erased.exit_code == 0, erased.output
    assert erased.output.strip() == (
        f"anonymized 3 comments of {ADA}; ended 1 reply subscriptions; cancelled 0 mails"
    )
    assert traces(app) == []
    bad = runner.invoke(args=["personal-data", "export", "nobody"])
    assert bad.exit_code == 1
    assert bad.output.count("\n") == 1 and "Error:" in bad.output

"""Moderators hear of new comments by mail (DESIGN §8): one mail per eligible moderator,
none for spam or a comment moderated meanwhile, digests, the hourly cap, SMTP refusals, and
no header a commenter can inject."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from commentsvc.extensions import db
from commentsvc.models import (
    Comment,
    CommentStatus,
    Delivery,
    DeliveryState,
    Moderator,
    NotifyMode,
    OutboxEvent,
    Page,
    Site,
    utcnow,
)
from commentsvc.notifications.moderators import digests_due_statement, mailed_last_hour_statement
from commentsvc.services import outbox, webhooks
from commentsvc.text import render_body
from tests.conftest import ORIGIN, PUBLIC_URL
from tests.support.moderator_mail import (
    add_moderator,
    age_held_mails,
    html_links,
    links,
    mail_deliveries,
    make_due,
    plain_text,
    submit,
)
from tests.support.smtp import SmtpServer

DIGEST_WAIT = timedelta(minutes=61)


@pytest.fixture
def moderator(mail_app: Flask) -> str:
    """A moderator of every site who wants a mail per comment."""
    add_moderator(mail_app, "mod@example.com")
    return "mod@example.com"


# --- one mail per moderator who wants it ----------------------------------------------------


def test_a_new_comment_mails_each_moderator_of_its_site_once(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
) -> None:
    add_moderator(mail_app, "admin@example.com", admin=True, sites=("blog",))
    add_moderator(mail_app, "news@example.com", sites=("news",))
    add_moderator(mail_app, "blog@example.com", sites=("blog",))
    add_moderator(mail_app, "gone@example.com", sites=("news",), active=False)
    add_moderator(mail_app, "quiet@example.com", notify=NotifyMode.OFF)
    comment_id = submit(client, body="First line.\n\nSecond <b>line</b>.")
    deliver()

    received = smtp_server.messages
    assert sorted(r for mail in received for r in mail.recipients) == [
        "admin@example.com",
        "news@example.com",
    ]
    for mail in received:
        message = mail.message
        assert mail.recipients == [message["To"]]
        assert message["From"] == "Comments <comments@example.test>"
        assert message["Auto-Submitted"] == "auto-generated"
        assert abs(parsedate_to_datetime(message["Date"]) - utcnow()) < timedelta(minutes=1)
        assert message["Message-ID"].endswith("@example.test>")
        assert message["Subject"] == "[News] New comment on US-China talks by Ada Lovelace"
        assert message.get_content_type() == "multipart/alternative"
    assert len({mail.message["Message-ID"] for mail in received}) == 2
    assert [d.state for d in mail_deliveries(mail_app)] == [DeliveryState.DELIVERED] * 2

    mail = next(m for m in received if m.recipients == ["news@example.com"])
    plain = plain_text(mail)
    for shown in (
        "Site:    News",
        f"Page:    US-China talks <{ORIGIN}/2025/10/us-china-talks>",
        "Author:  Ada Lovelace",
        "Email:   ada@example.com",
        "Website: https://ada.example/",
        "> First line.\n>\n> Second <b>line</b>.",
    ):
        assert shown in plain, shown
    found = links(mail)
    assert found["panel"] == [f"/moderation/comments/{comment_id}"]
    one_click = [found[kind][0] for kind in ("approve", "reject", "spam")]
    assert all(path.startswith("/moderation/mail/") for path in one_click)
    assert len(set(one_click)) == 3

    html = mail.part("html")
    assert "Second &lt;b&gt;line&lt;/b&gt;." in html
    assert "<b>" not in html
    assert "<style" not in html and "<link" not in html and "<script" not in html
    hrefs = html_links(mail)
    assert f"{ORIGIN}/2025/10/us-china-talks" in hrefs
    assert [PUBLIC_URL + path for path in one_click] == hrefs[1:4]
    assert f"{PUBLIC_URL}/moderation/comments/{comment_id}" in hrefs
    assert "https://ada.example/" not in hrefs  # the commenter's website is shown, not linked


def test_the_rules_reasons_are_said_in_words(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
    moderator: str,
) -> None:
    links_body = "See https://a.example/ and https://b.example/ and https://c.example/"
    submit(client, body=links_body)
    deliver()
    [mail] = smtp_server.messages
    assert "Held by the abuse rules: Too many links" in plain_text(mail)
    assert "Held by the abuse rules: Too many links" in mail.part("html")


def test_spam_mails_nobody(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
    moderator: str,
) -> None:
    submit(client, subject="Great post!")  # the honeypot
    deliver()
    assert smtp_server.messages == []
    assert mail_deliveries(mail_app) == []


def test_without_smtp_nothing_is_planned(
    app: Flask, client: FlaskClient, deliver: Callable[[], None]
) -> None:
    add_moderator(app, "mod@example.com")
    submit(client)
    deliver()
    assert mail_deliveries(app) == []


def test_a_comment_moderated_before_the_mail_goes_is_not_mailed(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
    make_token: Callable[..., str],
) -> None:
    add_moderator(mail_app, "mod@example.com")
    approved = submit(client, body="Approved at once by a moderator.")
    deleted = submit(client, body="Deleted before the mail.")
    auth = {"Authorization": f"Bearer {make_token('api@example.com')}"}
    api = "/api/v1/moderation/comments"
    approving = client.patch(f"{api}/{approved}", json={"status": "approved"}, headers=auth)
    assert approving.status_code == 200
    assert client.delete(f"{api}/{deleted}", headers=auth).status_code == 204
    deliver()

    assert smtp_server.messages == []
    skipped = {(d.comment_id, d.recipient): d for d in mail_deliveries(mail_app)}
    assert {d.state for d in skipped.values()} == {DeliveryState.SKIPPED}
    assert skipped[approved, "mod@example.com"].last_error == (
        "already moderated: approved by api@example.com"
    )
    assert skipped[deleted, "mod@example.com"].last_error == (
        "the comment was deleted before the mail was sent"
    )


def test_a_moderator_who_left_the_site_or_was_deactivated_is_not_mailed(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
) -> None:
    moved = add_moderator(mail_app, "moved@example.com", sites=("news",))
    stopped = add_moderator(mail_app, "stopped@example.com")
    submit(client)
    with mail_app.app_context():
        outbox.dispatch()
        blog = db.session.scalar(sa.select(Site).where(Site.slug == "blog"))
        moved_row = db.session.get(Moderator, moved)
        stopped_row = db.session.get(Moderator, stopped)
        assert blog is not None and moved_row is not None and stopped_row is not None
        moved_row.sites = [blog]
        stopped_row.is_active = False
        db.session.commit()
    deliver()
    assert smtp_server.messages == []
    assert {d.recipient: d.last_error for d in mail_deliveries(mail_app)} == {
        "moved@example.com": "the moderator no longer moderates the site",
        "stopped@example.com": "the moderator is inactive",
    }


# --- digests and the hourly cap ---------------------------------------------------------------


def test_notify_off_gets_nothing_and_digest_gets_one_digest_later(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
    make_token: Callable[..., str],
) -> None:
    add_moderator(mail_app, "digest@example.com", notify=NotifyMode.DIGEST)
    add_moderator(mail_app, "off@example.com", notify=NotifyMode.OFF)
    first = submit(client, body="First comment.")
    second = submit(client, body="Second comment.", author_name="Grace Hopper")
    deliver()
    assert smtp_server.messages == []
    held = mail_deliveries(mail_app)
    assert [(d.recipient, d.state) for d in held] == [
        ("digest@example.com", DeliveryState.HELD)
    ] * 2

    # Not yet: the oldest held mail is younger than NOTIFY_DIGEST_MINUTES (60).
    age_held_mails(mail_app, timedelta(minutes=50))
    deliver()
    assert smtp_server.messages == []

    auth = {"Authorization": f"Bearer {make_token('all@example.com')}"}
    client.patch(f"/api/v1/moderation/comments/{first}", json={"status": "rejected"}, headers=auth)
    age_held_mails(mail_app, DIGEST_WAIT - timedelta(minutes=50))
    deliver()
    [mail] = smtp_server.messages
    assert mail.recipients == ["digest@example.com"]
    assert mail.message["Subject"] == "[News] 1 new comment awaits moderation"
    plain = plain_text(mail)
    assert "1 new comment awaits your moderation. 1 more was moderated meanwhile." in plain
    assert "Grace Hopper" in plain and "> Second comment." in plain
    assert "First comment." not in plain
    found = links(mail)
    assert found["panel"] == [f"/moderation/comments/{second}"]
    assert len(found["approve"]) == len(found["reject"]) == len(found["spam"]) == 1

    [digest] = mail_deliveries(mail_app, "moderator_digest")
    assert digest.payload == {"comment_ids": [first, second]}
    assert digest.state == DeliveryState.DELIVERED
    assert [(d.state, d.last_error) for d in mail_deliveries(mail_app)] == [
        (DeliveryState.SKIPPED, f"in digest {digest.id}")
    ] * 2

    deliver()
    assert len(smtp_server.messages) == 1


def test_each_past_the_hourly_cap_folds_the_rest_into_a_digest(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
    moderator: str,
) -> None:
    mail_app.config["NOTIFY_MAX_PER_HOUR"] = 2
    ids = [submit(client, body=f"Comment number {n}.") for n in range(4)]
    deliver()
    assert len(smtp_server.messages) == 2
    states = [d.state for d in mail_deliveries(mail_app)]
    assert states == [DeliveryState.DELIVERED] * 2 + [DeliveryState.HELD] * 2

    age_held_mails(mail_app, DIGEST_WAIT)
    deliver()
    mails = smtp_server.messages
    assert len(mails) == 3
    assert mails[2].message["Subject"] == "[News] 2 new comments await moderation"
    assert links(mails[2])["panel"] == [f"/moderation/comments/{i}" for i in ids[2:]]


def test_a_digest_with_nothing_left_is_not_sent(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
    make_token: Callable[..., str],
) -> None:
    add_moderator(mail_app, "digest@example.com", notify=NotifyMode.DIGEST)
    comment = submit(client)
    deliver()
    auth = {"Authorization": f"Bearer {make_token('all@example.com')}"}
    client.patch(f"/api/v1/moderation/comments/{comment}", json={"status": "spam"}, headers=auth)
    age_held_mails(mail_app, DIGEST_WAIT)
    deliver()
    assert smtp_server.messages == []
    [digest] = mail_deliveries(mail_app, "moderator_digest")
    assert digest.state == DeliveryState.SKIPPED
    assert digest.last_error == "nothing left to moderate: 1 of 1 moderated"


# --- SMTP refusals ------------------------------------------------------------------------------


def test_a_4xx_answer_is_retried_and_a_5xx_gives_up(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
    moderator: str,
) -> None:
    smtp_server.refuse_next("451 4.3.0 Try again later")
    submit(client, body="Retried.")
    deliver()
    assert smtp_server.messages == []
    [delivery] = mail_deliveries(mail_app)
    assert (delivery.state, delivery.attempts, delivery.last_code) == (
        DeliveryState.PENDING,
        1,
        451,
    )
    assert delivery.next_attempt_at > utcnow()

    make_due(mail_app)
    deliver()
    [mail] = smtp_server.messages
    assert "> Retried." in plain_text(mail)
    assert mail_deliveries(mail_app)[0].state == DeliveryState.DELIVERED

    smtp_server.refuse_next("550 5.1.1 No such user")
    submit(client, body="Refused for good.")
    deliver()
    refused = mail_deliveries(mail_app)[1]
    assert (refused.state, refused.last_code) == (DeliveryState.FAILED, 550)
    assert refused.last_error is not None and "No such user" in refused.last_error
    assert len(smtp_server.messages) == 1


# --- no header injection ------------------------------------------------------------------------

INJECTIONS = [
    "\r\nBcc: x@evil.example",
    "\nBcc: x@evil.example",
    "\rBcc: x@evil.example",
    "\r\n\r\nBcc: x@evil.example",
    "\u2028Bcc: x@evil.example",
    "\x85Bcc: x@evil.example",
    "\r\nX-Injected: yes",
]
#: The headers of every moderator mail, and nothing else.
HEADERS = {
    "Subject",
    "From",
    "To",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
}


def _assert_clean(mail_app: Flask, smtp_server: SmtpServer, expected: int) -> None:
    mails = smtp_server.wait_for(expected)
    assert len(mails) == expected
    for mail in mails:
        assert mail.recipients == ["mod@example.com"]
        assert set(mail.message.keys()) == HEADERS, mail.message.keys()
        assert mail.message.get_all("To") == ["mod@example.com"]
        head = mail.raw.split(b"\r\n\r\n", 1)[0]
        lines = head.split(b"\r\n")
        assert not any(line.lower().startswith((b"bcc:", b"x-injected:")) for line in lines)
        assert b"\n\n" not in head and b"\r\r" not in head
    with mail_app.app_context():
        delivered = [d.state for d in mail_deliveries(mail_app)]
    assert delivered == [DeliveryState.DELIVERED] * expected


def test_no_header_can_be_injected_through_the_public_api(
    mail_app: Flask,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
    moderator: str,
) -> None:
    fields = {
        "author_name": "Ada",
        "author_email": "ada@example.com",
        "author_url": "https://ada.example/",
        "page_title": "Title",
        "page": "/page",
        "body": "Body",
    }
    stored = 0
    for n, (field, value) in enumerate(fields.items()):
        for injection in INJECTIONS:
            sent = {field: value + injection, "body": f"Comment {n} {injection!r}"}
            if field == "body":
                sent["body"] = f"Body {n}{injection}"
            response = client.post(
                "/api/v1/sites/news/comments",
                json={**fields, **sent, "page_url": f"{ORIGIN}/page"},
                headers={"Origin": ORIGIN},
            )
            if field == "body":
                assert response.status_code in {201, 422}, (injection, response.get_json())
            else:
                assert response.status_code == 422, (field, injection)  # one line only
            stored += response.status_code == 201
    assert stored >= len(INJECTIONS) - 1  # a body may have lines (not NEL, refused)
    deliver()
    _assert_clean(mail_app, smtp_server, stored)


def test_no_header_can_be_injected_by_a_comment_stored_without_the_api(
    mail_app: Flask,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
    moderator: str,
) -> None:
    """Comments that never passed the API's checks (imported, or stored by an older
    release) are mailed safely too: every field carries line breaks."""
    with mail_app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None
        for n, injection in enumerate(INJECTIONS):
            page = Page(site_id=site.id, key=f"/page-{n}{injection}", title=f"Title{injection}")
            db.session.add(page)
            db.session.flush()
            comment = Comment(
                site_id=site.id,
                page_id=page.id,
                body=f"Body{injection}",
                body_html=render_body(f"Body{injection}"),
                author_name=f"Ada{injection}",
                author_email=f"ada@example.com{injection}",
                author_url=f"https://ada.example/{injection}",
                page_title=f"Title{injection}",
                status=CommentStatus.PENDING,
            )
            db.session.add(comment)
            db.session.flush()
            db.session.add(
                OutboxEvent(
                    type="comment.submitted",
                    site_id=site.id,
                    comment_id=comment.id,
                    data={"id": comment.id, "status": "pending"},
                )
            )
        db.session.commit()
    deliver()
    _assert_clean(mail_app, smtp_server, len(INJECTIONS))
    for mail in smtp_server.messages:
        subject = mail.message["Subject"].strip()
        assert subject.startswith("[News] New comment on Title ") and " by Ada " in subject
        plain = plain_text(mail)
        assert "\nBcc:" not in plain.split("\n> ", 1)[0]  # one-line fields stay one line


# --- choosing the mails from the command line ---------------------------------------------------


def test_the_cli_sets_and_lists_the_notify_mode(
    mail_app: Flask,
    runner: FlaskCliRunner,
    client: FlaskClient,
    deliver: Callable[[], None],
    smtp_server: SmtpServer,
) -> None:
    added = runner.invoke(
        args=["moderators", "add", "ann@example.com", "--password-stdin", "--notify", "off"],
        input="ann-password-123\n",
    )
    assert added.exit_code == 0, added.output
    assert "notify=off" in added.output
    assert (
        "ann@example.com\tall sites\tnotify=off"
        in runner.invoke(args=["moderators", "list"]).output
    )
    submit(client, body="Nobody hears of this one.")
    deliver()
    assert smtp_server.messages == []

    changed = runner.invoke(args=["moderators", "set", "ANN@example.com", "--notify", "each"])
    assert changed.exit_code == 0, changed.output
    assert changed.output == "moderator ann@example.com: notify=each\n"
    shown = runner.invoke(args=["moderators", "set", "ann@example.com"])
    assert shown.output == "moderator ann@example.com: notify=each\n"
    submit(client, body="Ann hears of this one.")
    deliver()
    [mail] = smtp_server.messages
    assert mail.recipients == ["ann@example.com"]

    refused = runner.invoke(args=["moderators", "set", "ann@example.com", "--notify", "often"])
    assert refused.exit_code != 0
    unknown = runner.invoke(args=["moderators", "set", "nobody@example.com", "--notify", "off"])
    assert unknown.exit_code != 0 and "there is no moderator nobody@example.com" in unknown.output
    with mail_app.app_context():
        moderator = db.session.scalar(sa.select(Moderator))
        assert moderator is not None and moderator.notify == NotifyMode.EACH


@pytest.mark.sqlite_only
def test_the_hourly_cap_reads_only_the_last_hour_of_the_moderators_mails(app: Flask) -> None:
    """Planning a new comment's mail counts the moderator's mails of the last hour. With
    ``state NOT IN (…)`` SQLite used the index for the moderator only and read their whole
    history, once per comment (12 to 15 ms per event at 100,000 past mails, holding the write
    lock while submissions waited): the lookup must reach the time column."""
    statement = mailed_last_hour_statement([1, 2], utcnow(), 30)
    with app.app_context(), db.engine.connect() as connection:
        compiled = statement.compile(db.engine, compile_kwargs={"render_postcompile": True})
        parameters = tuple(str(compiled.params[name]) for name in compiled.positiontup or ())
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", parameters).all()
    details = " ".join(row[-1] for row in plan)
    assert "ix_deliveries_moderator (moderator_id=? AND state=? AND created_at>?)" in details


def test_the_digests_due_are_found_on_the_index_not_by_reading_every_delivery(
    mail_app: Flask,
) -> None:
    """Once a minute the worker looks for digests that are due. Grouping every held mail of
    the table read all deliveries (on PostgreSQL a parallel sequential scan, which took both
    cores of the soak's machine for a moment once a minute): each moderator's held mails are
    read on ``ix_deliveries_moderator`` instead."""
    add_moderator(mail_app, "ann@example.com")
    with mail_app.app_context(), db.engine.connect() as connection:
        statement = digests_due_statement(utcnow())
        compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
        if db.engine.dialect.name == "sqlite":
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
            details = " ".join(row[-1] for row in plan)
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")  # as on a big table
            plan = connection.exec_driver_sql(f"EXPLAIN {compiled}").all()
            details = " ".join(row[0] for row in plan)
    assert "ix_deliveries_moderator" in details, details
    assert "SCAN deliveries" not in details and "Seq Scan on deliveries" not in details


def test_the_hourly_cap_counts_each_moderators_mails_only_up_to_the_cap(mail_app: Flask) -> None:
    """Planning asks only whether a moderator is under the cap. Counting every mail of the
    hour made each new comment read the whole hour again: at a cap of ten million (the soak's)
    that was up to 34,000 index entries per comment, and the database's CPU grew all run."""
    ann = add_moderator(mail_app, "ann@example.com")
    bob = add_moderator(mail_app, "bob@example.com")
    quiet = add_moderator(mail_app, "quiet@example.com")
    with mail_app.app_context():
        site_id = db.session.scalars(sa.select(Site.id)).first()
        assert site_id is not None
        mailed = [(ann, DeliveryState.DELIVERED)] * 5 + [(bob, DeliveryState.PENDING)]
        held = [(bob, DeliveryState.HELD)] * 4  # held for a digest: not mailed as such
        planned = [
            outbox.Planned(channel="mail", kind="moderator_comment", moderator_id=who, state=state)
            for who, state in mailed + held
        ]
        outbox.add_deliveries(site_id, planned)
        db.session.commit()
        now = utcnow()
        counted = db.session.execute(mailed_last_hour_statement([ann, bob, quiet], now, 3)).all()
        assert sorted(tuple(row) for row in counted) == [(ann, 3), (bob, 1), (quiet, 0)]
        [(only, count)] = db.session.execute(mailed_last_hour_statement([ann], now, 10)).all()
        assert (only, count) == (ann, 5)
        an_hour_on = now + timedelta(hours=1)
        later = db.session.execute(mailed_last_hour_statement([ann, bob], an_hour_on, 3)).all()
        assert sorted(tuple(row) for row in later) == [(ann, 0), (bob, 0)]


def test_a_batch_of_events_looks_up_its_sites_once_and_writes_its_deliveries_at_once(
    mail_app: Flask, client: FlaskClient, moderator: str
) -> None:
    """Planning reads a site's webhooks, its moderators and their hourly counts once per
    batch, not once per event: at 200 submissions a second on PostgreSQL, four round trips
    per event held planning to about 130 events a second."""
    with mail_app.app_context():
        webhooks.add_webhook("news", "https://hooks.example/", [], "test")
    for number in range(5):
        submit(client, body=f"Comment number {number}.")
    statements: list[str] = []

    def executed(*args: object) -> None:
        statements.append(" ".join(str(args[2]).split()))

    with mail_app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", executed)
        try:
            assert outbox.dispatch() == 5
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", executed)
        kinds = list(db.session.scalars(sa.select(Delivery.kind)))
    assert sorted(kinds) == ["moderator_comment"] * 5 + ["webhook"] * 5

    def count(part: str) -> int:
        return sum(part in statement for statement in statements)

    assert count("FROM webhooks") == 1
    assert count("FROM moderators") == 1
    assert count("count(*) AS mailed") == 1
    assert count("INSERT INTO deliveries") == 1

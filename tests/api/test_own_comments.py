"""A commenter's own comment (DESIGN §10): the edit token of the 201 answer edits it (every
check of a new submission again) or deletes it, within the window, until an approved reply
answers it."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.api.serializers import isotime
from commentsvc.extensions import db
from commentsvc.models import Comment, CommentStatus, ModerationEvent, OutboxEvent, Page
from commentsvc.services.submissions import token_hash
from tests.api.test_submit_bad_input import BAD_INPUT, Bad, assert_problem
from tests.conftest import ORIGIN, valid_submission

SUBMIT = "/api/v1/sites/news/comments"


def post(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    response = client.post(SUBMIT, json=valid_submission(**fields), headers={"Origin": ORIGIN})
    assert response.status_code == 201, response.get_json()
    answer: dict[str, Any] = response.get_json()
    return answer


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Origin": ORIGIN}


def edit(client: FlaskClient, comment: dict[str, Any], body: Any = "Fixed typo.", **kw: Any) -> Any:
    token = kw.pop("token", comment["edit_token"])
    return client.patch(f"{SUBMIT}/{comment['id']}", json={"body": body}, headers=bearer(token))


def stored(app: Flask, comment_id: int) -> Comment | None:
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        if comment is not None:
            db.session.expunge(comment)
        return comment


def moderate(client: FlaskClient, auth: dict[str, str], comment_id: int, status: str) -> None:
    response = client.patch(
        f"/api/v1/moderation/comments/{comment_id}", json={"status": status}, headers=auth
    )
    assert response.status_code == 200, response.get_json()


def test_the_201_carries_an_edit_token_stored_only_as_its_hash(
    app: Flask, client: FlaskClient
) -> None:
    answer = post(client)
    token = answer["edit_token"]
    assert isinstance(token, str) and len(token) >= 40
    assert answer["editable_until"].endswith("Z")
    comment = stored(app, answer["id"])
    assert comment is not None
    assert comment.edit_token_hash == token_hash(token) != token
    assert answer["editable_until"] == isotime(comment.created_at + timedelta(minutes=15))


def test_the_author_edits_within_the_window(app: Flask, client: FlaskClient) -> None:
    answer = post(client, body="Teh first version.")
    response = edit(client, answer, "The first version, fixed.\n\nhttps://example.org/x")
    assert response.status_code == 200, response.get_json()
    edited = response.get_json()
    assert edited["body"] == "The first version, fixed.\n\nhttps://example.org/x"
    assert '<a href="https://example.org/x" rel="nofollow ugc noopener">' in edited["body_html"]
    assert edited["status"] == "pending"
    assert edited["edit_token"] is None  # shown once, in the 201
    with app.app_context():
        events = db.session.scalars(
            sa.select(ModerationEvent).where(ModerationEvent.comment_id == answer["id"])
        ).all()
        assert [(e.actor, e.action.value, e.note) for e in events] == [
            ("system", "edit", "edited by author")
        ]
        kinds = db.session.scalars(
            sa.select(OutboxEvent.type).where(OutboxEvent.comment_id == answer["id"])
        ).all()
        assert kinds == ["comment.submitted", "comment.edited"]


def test_an_approved_comment_edited_goes_back_to_pending(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    answer = post(client)
    moderate(client, auth, answer["id"], "approved")
    thread = client.get(SUBMIT, query_string={"page": "/2025/10/us-china-talks"})
    assert len(thread.get_json()["comments"]) == 1
    response = edit(client, answer, "Now with something else entirely.")
    assert response.get_json()["status"] == "pending"
    assert stored(app, answer["id"]).status == CommentStatus.PENDING  # type: ignore[union-attr]
    thread = client.get(SUBMIT, query_string={"page": "/2025/10/us-china-talks"})
    assert thread.get_json()["comments"] == []
    with app.app_context():
        page = db.session.scalars(sa.select(Page)).one()
        assert page.approved_count == 0


def test_a_trusted_author_on_a_moderate_first_site_stays_approved(
    app: Flask, client: FlaskClient, auth: dict[str, str], runner: Any
) -> None:
    assert runner.invoke(args=["sites", "set", "news", "--moderation", "first"]).exit_code == 0
    earlier = post(client, body="An earlier comment.")
    moderate(client, auth, earlier["id"], "approved")
    answer = post(client)
    assert answer["status"] == "approved"
    assert edit(client, answer, "Edited.").get_json()["status"] == "approved"
    # Known only by this very comment: not trusted.
    with app.app_context():
        db.session.execute(sa.delete(Comment).where(Comment.id == earlier["id"]))
        db.session.commit()
    assert edit(client, answer, "Edited again.").get_json()["status"] == "pending"


def test_an_edit_the_rules_find_spam_is_spam_and_the_author_is_not_told(
    app: Flask, client: FlaskClient, runner: Any
) -> None:
    assert runner.invoke(args=["blocklist", "add", "word", "cheap pills"]).exit_code == 0
    answer = post(client)
    response = edit(client, answer, "Buy cheap pills now")
    assert response.status_code == 200
    assert response.get_json()["status"] == "pending"
    comment = stored(app, answer["id"])
    assert comment is not None and comment.status == CommentStatus.SPAM
    assert "blocklist" in comment.spam_reasons


def test_the_same_text_again_changes_nothing(app: Flask, client: FlaskClient) -> None:
    answer = post(client)
    assert edit(client, answer, answer["body"]).status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ModerationEvent)) == 0


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Basic abc"}, 401), ({"Authorization": "Bearer nope"}, 403)],
)
def test_without_the_token_nothing_changes(
    app: Flask, client: FlaskClient, headers: dict[str, str], status: int
) -> None:
    answer = post(client)
    url = f"{SUBMIT}/{answer['id']}"
    for response in (
        client.patch(url, json={"body": "Hijacked."}, headers=headers),
        client.delete(url, headers=headers),
    ):
        assert response.status_code == status
        assert response.mimetype == "application/problem+json"
    assert stored(app, answer["id"]).body == answer["body"]  # type: ignore[union-attr]


def test_the_token_of_another_comment_is_refused(app: Flask, client: FlaskClient) -> None:
    mine = post(client, body="Mine.")
    theirs = post(client, body="Theirs.", author_email="other@example.com")
    response = edit(client, theirs, "Hijacked.", token=mine["edit_token"])
    assert response.status_code == 403
    response = client.delete(f"{SUBMIT}/{theirs['id']}", headers=bearer(mine["edit_token"]))
    assert response.status_code == 403
    assert stored(app, theirs["id"]).body == "Theirs."  # type: ignore[union-attr]


def test_after_the_window_the_token_is_refused(app: Flask, client: FlaskClient) -> None:
    answer = post(client)
    with app.app_context():
        comment = db.session.get(Comment, answer["id"])
        assert comment is not None
        comment.created_at -= timedelta(minutes=15)
        db.session.commit()
    response = edit(client, answer)
    assert response.status_code == 403
    assert "15 minutes" in response.get_json()["detail"]
    assert (
        client.delete(f"{SUBMIT}/{answer['id']}", headers=bearer(answer["edit_token"])).status_code
        == 403
    )


def test_an_approved_reply_locks_the_comment(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    answer = post(client)
    moderate(client, auth, answer["id"], "approved")
    reply = post(client, body="A reply.", author_email="b@example.com", parent_id=answer["id"])
    assert edit(client, answer).status_code == 200  # a pending reply does not lock it
    moderate(client, auth, answer["id"], "approved")
    moderate(client, auth, reply["id"], "approved")
    response = edit(client, answer, "Changed after the reply.")
    assert response.status_code == 409
    assert (
        client.delete(f"{SUBMIT}/{answer['id']}", headers=bearer(answer["edit_token"])).status_code
        == 409
    )


def test_the_author_deletes_and_replies_stay(app: Flask, client: FlaskClient) -> None:
    answer = post(client)
    reply = post(client, body="A reply.", author_email="b@example.com")
    response = client.delete(f"{SUBMIT}/{answer['id']}", headers=bearer(answer["edit_token"]))
    assert response.status_code == 204
    assert stored(app, answer["id"]) is None
    assert stored(app, reply["id"]) is not None
    with app.app_context():
        event = db.session.scalars(
            sa.select(ModerationEvent).where(ModerationEvent.comment_id == answer["id"])
        ).one()
        assert (event.actor, event.action.value, event.note) == (
            "system",
            "delete",
            "deleted by author",
        )
    again = client.delete(f"{SUBMIT}/{answer['id']}", headers=bearer(answer["edit_token"]))
    assert again.status_code == 404


def test_a_retry_with_the_idempotency_key_gets_the_same_token(
    app: Flask, client: FlaskClient
) -> None:
    headers = {"Origin": ORIGIN, "Idempotency-Key": "retry-1"}
    first = client.post(SUBMIT, json=valid_submission(), headers=headers).get_json()
    second = client.post(SUBMIT, json=valid_submission(), headers=headers).get_json()
    assert second == first
    other = client.post(
        SUBMIT, json=valid_submission(body="Another."), headers={**headers, "Idempotency-Key": "2"}
    ).get_json()
    assert other["edit_token"] != first["edit_token"]
    assert edit(client, second).status_code == 200


def test_a_comment_of_another_site_is_not_found(client: FlaskClient) -> None:
    answer = post(client)
    response = client.patch(
        f"/api/v1/sites/blog/comments/{answer['id']}",
        json={"body": "x"},
        headers={"Authorization": f"Bearer {answer['edit_token']}"},
    )
    assert response.status_code == 404


# -- every check of a new submission's text, on an edit ----------------------------------


def _edit_cases() -> list[Any]:
    """The bad-input table's cases that concern the text, or the JSON body itself."""
    cases = []
    for param in BAD_INPUT:
        case: Bad = param.values[0]
        if case.site != "news" or case.origin or case.form is not None or case.chunked:
            continue
        text = case.json is not None and case.field == "body"
        malformed = (
            case.raw is not None
            and case.field is None
            and (case.content_type or "").startswith("application/json")
        )
        if text or malformed:
            cases.append(param)
    return cases


EDIT_CASES = _edit_cases()


def test_the_table_has_text_and_body_cases() -> None:
    assert len(EDIT_CASES) >= 10


@pytest.mark.parametrize("case", EDIT_CASES)
def test_an_edit_is_checked_as_a_submission_is(app: Flask, client: FlaskClient, case: Bad) -> None:
    answer = post(client)
    if case.json is not None:
        payload = dict(case.json(app.config) if callable(case.json) else case.json)
        request: dict[str, Any] = {"json": {k: v for k, v in payload.items() if k == "body"}}
    else:
        request = {"data": case.raw, "content_type": case.content_type}
    response = client.patch(
        f"{SUBMIT}/{answer['id']}", headers=bearer(answer["edit_token"]), **request
    )
    assert response.status_code == case.status, response.get_data(as_text=True)
    assert_problem(response, case.status, case.field)
    assert stored(app, answer["id"]).body == answer["body"]  # type: ignore[union-attr]


# -- an edit and a moderation at once ------------------------------------------------------


@pytest.mark.postgresql_only
def test_an_edit_and_a_moderation_at_once_lose_nothing(app: Flask, auth: dict[str, str]) -> None:
    """Both lock the comment: whichever comes second sees the first's change."""
    client = app.test_client()
    answer = post(client)
    moderate(client, auth, answer["id"], "approved")
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def run(name: str, call: Callable[[FlaskClient], Any]) -> None:
        local = app.test_client()
        barrier.wait()
        results[name] = call(local).status_code

    threads = [
        threading.Thread(target=run, args=("edit", lambda c: edit(c, answer, "Edited at once."))),
        threading.Thread(
            target=run,
            args=(
                "moderation",
                lambda c: c.patch(
                    f"/api/v1/moderation/comments/{answer['id']}",
                    json={"status": "rejected"},
                    headers=auth,
                ),
            ),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"edit": 200, "moderation": 200}
    comment = stored(app, answer["id"])
    assert comment is not None
    assert comment.body == "Edited at once."  # the edit was not lost
    with app.app_context():
        events = db.session.scalars(
            sa.select(ModerationEvent)
            .where(ModerationEvent.comment_id == answer["id"])
            .order_by(ModerationEvent.id)
        ).all()
    # The audit log tells the story in the order it happened, each step from the state the
    # one before left.
    for before, after in itertools.pairwise(events):
        if after.from_status is not None and before.to_status is not None:
            assert after.from_status == before.to_status
    assert comment.status == events[-1].to_status


def test_moderators_hear_of_an_approved_comment_edited_back_to_pending(
    mail_app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    deliver: Callable[[], None],
    smtp_server: Any,
) -> None:
    from tests.support.moderator_mail import add_moderator

    add_moderator(mail_app, "news@example.com", sites=("news",))
    answer = post(client)
    deliver()
    moderate(client, auth, answer["id"], "approved")
    deliver()

    def to_news() -> list[Any]:
        return [m for m in smtp_server.messages if m.recipients == ["news@example.com"]]

    assert len(to_news()) == 1  # the new comment
    edit(client, answer, "Something else now.")
    deliver()
    assert len(to_news()) == 2
    assert "Something else now." in to_news()[-1].part("plain")

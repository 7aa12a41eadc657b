"""A site's markup at every write (DESIGN §10): submitted, edited by its author, edited by a
moderator; each body rendered in the markup of its own site."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.markup import Markup
from commentsvc.models import Comment
from commentsvc.services.sites import set_markup
from tests.conftest import ORIGIN, OTHER_ORIGIN, valid_submission

BODY = "Some *emphasis*, `code` and <b>tags</b>:\n\n> a quote\n\nhttps://a.example/x."
MARKDOWN_HTML = (
    "<p>Some <em>emphasis</em>, <code>code</code> and &lt;b&gt;tags&lt;/b&gt;:</p>\n"
    "<blockquote>\n<p>a quote</p>\n</blockquote>\n"
    '<p><a href="https://a.example/x" rel="nofollow ugc noopener">https://a.example/x</a>.</p>'
)
TEXT_HTML = (
    "<p>Some *emphasis*, `code` and &lt;b&gt;tags&lt;/b&gt;:</p><p>&gt; a quote</p>"
    '<p><a href="https://a.example/x" rel="nofollow ugc noopener">https://a.example/x</a>.</p>'
)


@pytest.fixture
def markdown_news(app: Flask) -> None:
    """The site "news" writes Markdown; "blog" keeps plain text."""
    with app.app_context():
        set_markup("news", Markup.MARKDOWN)


def submit(client: FlaskClient, site: str = "news", **fields: Any) -> dict[str, Any]:
    origin = ORIGIN if site == "news" else OTHER_ORIGIN
    response = client.post(
        f"/api/v1/sites/{site}/comments",
        json=valid_submission(**fields),
        headers={"Origin": origin},
    )
    assert response.status_code == 201, response.get_json()
    answer: dict[str, Any] = response.get_json()
    return answer


def stored_html(app: Flask, comment_id: int) -> str:
    with app.app_context():
        return db.session.scalar(sa.select(Comment.body_html).where(Comment.id == comment_id)) or ""


def test_a_submission_is_rendered_in_its_sites_markup(
    app: Flask, client: FlaskClient, markdown_news: None
) -> None:
    on_news = submit(client, body=BODY)
    assert on_news["body"] == BODY
    assert on_news["body_html"] == MARKDOWN_HTML
    assert stored_html(app, on_news["id"]) == MARKDOWN_HTML
    on_blog = submit(client, "blog", body=BODY, page_url=None)
    assert on_blog["body_html"] == TEXT_HTML
    assert stored_html(app, on_blog["id"]) == TEXT_HTML


def test_an_edit_by_its_author_is_rendered_in_its_sites_markup(
    app: Flask, client: FlaskClient, markdown_news: None
) -> None:
    answer = submit(client)
    response = client.patch(
        f"/api/v1/sites/news/comments/{answer['id']}",
        json={"body": "**Fixed** typo."},
        headers={"Authorization": f"Bearer {answer['edit_token']}", "Origin": ORIGIN},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["body_html"] == "<p><strong>Fixed</strong> typo.</p>"
    assert stored_html(app, answer["id"]) == "<p><strong>Fixed</strong> typo.</p>"


def test_an_edit_by_a_moderator_is_rendered_in_the_comments_sites_markup(
    app: Flask, client: FlaskClient, auth: dict[str, str], markdown_news: None
) -> None:
    on_news = submit(client)
    on_blog = submit(client, "blog", page_url=None)
    for comment, expected in (
        (on_news, "<p><em>moderated</em></p>"),
        (on_blog, "<p>*moderated*</p>"),
    ):
        response = client.patch(
            f"/api/v1/moderation/comments/{comment['id']}",
            json={"body": "*moderated*"},
            headers=auth,
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["body_html"] == expected
        assert stored_html(app, comment["id"]) == expected


def stored_comment(app: Flask, comment_id: int) -> Comment:
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment is not None
        db.session.expunge(comment)
        return comment


def test_the_rules_see_a_markdown_links_real_target(
    app: Flask, client: FlaskClient, runner: Any, markdown_news: None
) -> None:
    """A link target spelled with entities is a link all the same: the domain blocklist
    and the links rule count what the rendered body points to, not the raw text."""
    assert runner.invoke(args=["blocklist", "add", "domain", "spam.example"]).exit_code == 0
    hidden = submit(client, body="Look [here](http&#58;//spam.example/offer).")
    comment = stored_comment(app, hidden["id"])
    assert 'href="http://spam.example/offer"' in comment.body_html
    assert comment.status.value == "spam"
    assert "blocklist:domain" in comment.spam_reasons

    assert runner.invoke(args=["sites", "set", "news", "--max-links", "1"]).exit_code == 0
    links = submit(
        client,
        body="[a](http&#58;//a.example/1) and [b](https&#58;//b.example/2)",
        author_email="x@example.org",
    )
    held = stored_comment(app, links["id"])
    assert "links" in held.spam_reasons.split()

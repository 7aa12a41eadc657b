"""A moderator's own settings page: which mails of new comments they get (DESIGN §8)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import Moderator, NotifyMode
from tests.support.html import flashes, html
from tests.support.panel import (
    BLOG_MODERATOR,
    PANEL,
    csrf_token,
    is_login_redirect,
    logged_in,
    submit,
)
from tests.support.state import snapshot

SETTINGS = f"{PANEL}/settings"


def notify_of(app: Flask, email: str) -> NotifyMode:
    with app.app_context():
        mode = db.session.scalar(sa.select(Moderator.notify).where(Moderator.email == email))
        assert mode is not None
        return mode


def test_anonymous_visitors_go_to_login(app: Flask, client: FlaskClient) -> None:
    assert is_login_redirect(client.get(SETTINGS), next_path=SETTINGS)
    before = snapshot(app)
    token = csrf_token(client)
    assert is_login_redirect(client.post(SETTINGS, data={"csrf_token": token, "notify": "off"}))
    assert snapshot(app) == before


def test_any_moderator_sees_the_choices_explained_and_linked_from_the_nav(
    blog_client: FlaskClient,
) -> None:
    page = html(blog_client.get(SETTINGS))
    nav = page.find("nav")
    link = nav.find("a", href=SETTINGS)
    assert link.text == "My settings" and link.attrs["aria-current"] == "page"
    choices = page.find("form", id="my-settings-form").find_all("label", cls="choice")
    texts = [choice.text for choice in choices]
    assert [text.split(":")[0] for text in texts] == ["Each", "Digest", "Off"]
    assert "Past 30 in an hour, the rest come together in one digest." in texts[0]
    assert "One mail listing the new comments, at most one an hour" in texts[1]
    checked = [
        c.find("input").attrs["value"] for c in choices if "checked" in c.find("input").attrs
    ]
    assert checked == ["each"]
    assert page.find("p", id="mail-off")  # this app sends no mail
    assert html(blog_client.get(f"{PANEL}/")).find("nav").find("a", href=SETTINGS)


def test_the_explanations_say_this_services_cap_and_interval(
    app: Flask, blog_client: FlaskClient
) -> None:
    app.config.update(
        NOTIFY_MAX_PER_HOUR=5, NOTIFY_DIGEST_MINUTES=15, SMTP_URL="smtp://127.0.0.1:25"
    )
    page = html(blog_client.get(SETTINGS))
    texts = [label.text for label in page.find_all("label", cls="choice")]
    assert "Past 5 in an hour" in texts[0]
    assert "at most one every 15 minutes" in texts[1]
    assert page.find_all("p", id="mail-off") == []


def test_saving_a_choice_stores_it(app: Flask, blog_client: FlaskClient) -> None:
    response = submit(blog_client, SETTINGS, {"notify": "digest"})
    assert response.status_code == 303
    assert response.headers["Location"] == SETTINGS
    assert notify_of(app, BLOG_MODERATOR) == NotifyMode.DIGEST
    page = blog_client.get(SETTINGS)
    assert flashes(page) == [("success", "Saved: notifications digest.")]
    checked = html(page).find("input", value="digest")
    assert "checked" in checked.attrs

    assert submit(blog_client, SETTINGS, {"notify": "off"}).status_code == 303
    assert notify_of(app, BLOG_MODERATOR) == NotifyMode.OFF


def test_a_choice_that_is_not_offered_is_refused(app: Flask, blog_client: FlaskClient) -> None:
    before = snapshot(app)
    response = submit(blog_client, SETTINGS, {"notify": "hourly"})
    assert response.status_code == 422
    assert html(response).find("span", cls="field-error").text
    assert snapshot(app) == before


def test_the_form_needs_its_csrf_token(app: Flask, blog_client: FlaskClient) -> None:
    before = snapshot(app)
    response = blog_client.post(SETTINGS, data={"notify": "off"})
    assert response.status_code == 400
    assert snapshot(app) == before
    assert notify_of(app, BLOG_MODERATOR) == NotifyMode.EACH


def test_each_moderator_changes_only_their_own(
    app: Flask,
    blog_client: FlaskClient,
    make_moderator: Callable[..., int],
) -> None:
    make_moderator("other@example.com", sites=("news",))
    other = logged_in(app, "other@example.com")
    assert submit(other, SETTINGS, {"notify": "off"}).status_code == 303
    assert notify_of(app, "other@example.com") == NotifyMode.OFF
    assert notify_of(app, BLOG_MODERATOR) == NotifyMode.EACH

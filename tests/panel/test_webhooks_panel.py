"""The panel's webhooks page of a site (administrators only): its webhooks, adding one (the
secret shown once), removing one, a test event, and the recent deliveries."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from commentsvc.extensions import db
from commentsvc.models import Delivery, Site, Webhook
from commentsvc.services import webhooks as webhook_service
from tests.support.html import flashes, html
from tests.support.panel import (
    BLOG_MODERATOR,
    PANEL,
    add_moderator,
    assert_refused_unchanged,
    field_error,
    is_login_redirect,
    logged_in,
    submit,
)
from tests.support.receiver import WebhookReceiver


def site_id(app: Flask, slug: str = "news") -> int:
    with app.app_context():
        found = db.session.scalar(sa.select(Site.id).where(Site.slug == slug))
        assert found is not None
        return found


def page(app: Flask, slug: str = "news") -> str:
    return f"{PANEL}/sites/{site_id(app, slug)}/webhooks"


def stored(app: Flask) -> list[Webhook]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Webhook).order_by(Webhook.id)))


def add_hook(app: Flask, url: str = "https://hooks.example/in", site: str = "news") -> int:
    with app.app_context():
        return webhook_service.add_webhook(site, url, [], "test@example.com")[0].id


def rows(response: TestResponse, table: str) -> list[list[str]]:
    body = html(response).find("table", id=table).find("tbody")
    return [[cell.text for cell in row.find_all("td")] for row in body.find_all("tr")]


def test_only_administrators_reach_it(app: Flask, client: FlaskClient) -> None:
    webhook_id = add_hook(app)
    path = page(app)
    assert is_login_redirect(client.get(path), path)
    add_moderator(app, BLOG_MODERATOR)  # a moderator of every site, not an administrator
    moderator = logged_in(app, BLOG_MODERATOR)
    response = moderator.get(path)
    assert response.status_code == 403
    assert "You are not allowed to do this." in html(response).find("main").text
    for action, data in [
        ("", {"url": "https://evil.example/"}),
        (f"/{webhook_id}/remove", {}),
        (f"/{webhook_id}/test", {}),
    ]:
        assert_refused_unchanged(app, moderator, path + action, data, status=403)


def test_the_site_page_links_to_it(app: Flask, admin_client: FlaskClient) -> None:
    response = admin_client.get(f"{PANEL}/sites/{site_id(app)}")
    assert html(response).find("a", id="webhooks-link").attrs["href"] == page(app)
    listing = admin_client.get(page(app))
    assert listing.status_code == 200
    assert "This site has no webhooks." in html(listing).find("main").text
    nav = html(listing).find("nav", aria_label="Main")
    assert nav.find("a", aria_current="page").text == "Sites"


def test_adding_shows_the_secret_once(app: Flask, admin_client: FlaskClient) -> None:
    response = submit(
        admin_client,
        page(app),
        {"url": "https://hooks.example/in", "events": ["comment.approved", "comment.spam"]},
    )
    assert response.status_code == 201
    [webhook] = stored(app)
    assert (webhook.url, webhook.events) == (
        "https://hooks.example/in",
        ["comment.approved", "comment.spam"],
    )
    assert webhook.created_by == "admin@example.com"
    doc = html(response)
    assert doc.find("code", id="webhook-secret").text == webhook.secret
    assert "shown only once" in doc.find("div", role="status").text
    # The form starts blank again.
    form = doc.find("form", id="webhook-form")
    assert form.find("input", name="url").attrs.get("value", "") == ""
    assert rows(response, "webhooks")[0][:4] == [
        str(webhook.id),
        "https://hooks.example/in",
        "comment.approved, comment.spam",
        "yes",
    ]
    again = admin_client.get(page(app))
    assert webhook.secret not in again.get_data(as_text=True)


def test_the_form_labels_every_control(app: Flask, admin_client: FlaskClient) -> None:
    doc = html(admin_client.get(page(app)))
    form = doc.find("form", id="webhook-form")
    assert form.find("label", for_="url")
    assert form.find("fieldset").find("legend").text.startswith("Events")
    # Each checkbox inside its label, which names the event.
    labels = form.find_all("label", cls="choice")
    boxes = [label.find("input", type="checkbox") for label in labels]
    assert [box.attrs["value"] for box in boxes] == list(webhook_service.EVENT_TYPES)
    assert [label.text for label in labels] == list(webhook_service.EVENT_TYPES)
    assert len(form.find_all("input", type="checkbox")) == len(boxes)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "This field is required."),
        ("ftp://hooks.example/", "Must start with http:// or https://."),
        ("https://user:pw@hooks.example/", "Must not contain a user name or password."),
        ("http://169.254.169.254/latest/", "169.254.169.254 is a link-local address"),
    ],
)
def test_a_bad_url_is_refused(
    app: Flask, admin_client: FlaskClient, url: str, message: str
) -> None:
    response = assert_refused_unchanged(app, admin_client, page(app), {"url": url}, status=422)
    assert message in field_error(response, "url")
    assert "whsec_" not in response.get_data(as_text=True)


def test_removing(app: Flask, admin_client: FlaskClient) -> None:
    webhook_id = add_hook(app)
    kept = add_hook(app, "https://other.example/in")
    response = submit(admin_client, f"{page(app)}/{webhook_id}/remove")
    assert response.status_code == 303
    assert response.headers["Location"] == page(app)
    listing = admin_client.get(page(app))
    assert ("success", "Removed the webhook https://hooks.example/in.") in flashes(listing)
    assert [webhook.id for webhook in stored(app)] == [kept]


def test_a_webhook_of_another_site_is_not_found(app: Flask, admin_client: FlaskClient) -> None:
    blog_hook = add_hook(app, site="blog")
    for action in ("remove", "test"):
        response = submit(admin_client, f"{page(app, 'news')}/{blog_hook}/{action}")
        assert response.status_code == 404
    assert admin_client.get(f"{PANEL}/sites/999/webhooks").status_code == 404
    assert len(stored(app)) == 1


def test_the_test_button_queues_a_call_that_reaches_the_receiver(
    app: Flask,
    admin_client: FlaskClient,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    response = submit(admin_client, page(app), {"url": webhook_receiver.url})
    assert response.status_code == 201
    [webhook] = stored(app)
    webhook_receiver.secret = webhook.secret
    webhook_receiver.then(500)
    # The button's own form posts the test.
    button_form = html(admin_client.get(page(app))).find(
        "form", action=f"{page(app)}/{webhook.id}/test"
    )
    assert button_form.find("button").text.startswith("Send test event")
    queued = submit(admin_client, button_form.attrs["action"])
    assert queued.status_code == 303
    assert webhook_receiver.calls == []  # sent by the worker, not the request
    deliver()
    [call] = webhook_receiver.calls
    assert call.verified is True
    assert call.json["type"] == "webhook.test"
    listing = admin_client.get(page(app))
    [failed] = rows(listing, "deliveries")
    assert failed[1:7] == [
        str(webhook.id),
        "webhook.test",
        "pending",
        "1",
        "500",
        "answered 500: " + "x" * 199 + "…",
    ]
    assert failed[7]  # the next attempt
    with app.app_context():
        db.session.execute(sa.update(Delivery).values(next_attempt_at=Delivery.created_at))
        db.session.commit()
    deliver()
    [delivered] = rows(admin_client.get(page(app)), "deliveries")
    assert delivered[1:8] == [str(webhook.id), "webhook.test", "delivered", "2", "200", "", ""]


def test_recent_deliveries_are_the_last_twenty(app: Flask, admin_client: FlaskClient) -> None:
    webhook_id = add_hook(app)
    with app.app_context():
        for _ in range(webhook_service.RECENT + 3):
            webhook_service.send_test(webhook_id)
        newest = db.session.scalar(sa.select(sa.func.max(Delivery.id)))
    listing = html(admin_client.get(page(app))).find("table", id="deliveries")
    ids = [row.attrs["data-id"] for row in listing.find("tbody").find_all("tr")]
    assert len(ids) == webhook_service.RECENT
    assert ids[0] == str(newest)
    assert [th.attrs.get("scope") for th in listing.find("thead").find_all("th")] == ["col"] * 8

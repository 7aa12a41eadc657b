"""``commentsvc webhooks``: add (the secret printed last), list, remove and test."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from commentsvc.extensions import db
from commentsvc.models import Webhook
from tests.conftest import ORIGIN, valid_submission
from tests.support.receiver import WebhookReceiver


def stored(app: Flask) -> list[Webhook]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Webhook).order_by(Webhook.id)))


def test_add_prints_the_secret_last_and_the_receiver_verifies_with_it(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    result = runner.invoke(
        args=["webhooks", "add", "news", webhook_receiver.url, "--event", "comment.submitted"]
    )
    assert result.exit_code == 0, result.output
    [webhook] = stored(app)
    secret = result.output.split()[-1]
    assert secret == webhook.secret
    assert secret.startswith("whsec_")
    assert result.output.startswith(
        f"added webhook {webhook.id} of news: {webhook_receiver.url} (comment.submitted);"
    )
    assert (webhook.created_by, webhook.events) == ("cli", ["comment.submitted"])
    webhook_receiver.secret = secret
    response = client.post(
        "/api/v1/sites/news/comments", json=valid_submission(), headers={"Origin": ORIGIN}
    )
    assert response.status_code == 201
    deliver()
    [call] = webhook_receiver.calls
    assert call.verified is True
    assert call.json["data"]["id"] == response.get_json()["id"]


def test_add_refuses_bad_input(app: Flask, runner: FlaskCliRunner) -> None:
    unknown_event = runner.invoke(
        args=["webhooks", "add", "news", "https://hooks.example/", "--event", "comment.posted"]
    )
    assert unknown_event.exit_code == 1
    assert "Unknown event comment.posted: the events are comment.submitted," in (
        unknown_event.output
    )
    unknown_site = runner.invoke(args=["webhooks", "add", "nope", "https://hooks.example/"])
    assert unknown_site.exit_code == 1
    assert "There is no site 'nope'." in unknown_site.output
    loopback = runner.invoke(args=["webhooks", "add", "news", "http://127.0.0.1/hook"])
    assert loopback.exit_code == 1
    assert "127.0.0.1 is a loopback address" in loopback.output
    assert "whsec_" not in unknown_event.output + unknown_site.output + loopback.output
    assert stored(app) == []


def test_list_shows_each_webhook_and_its_last_delivery(
    app: Flask,
    runner: FlaskCliRunner,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    runner.invoke(args=["webhooks", "add", "news", webhook_receiver.url])
    events = ["--event", "comment.spam", "--event", "comment.approved"]
    runner.invoke(args=["webhooks", "add", "blog", "https://hooks.example/in", *events])
    first, second = stored(app)
    assert runner.invoke(args=["webhooks", "list"]).output.splitlines() == [
        f"{first.id}\tnews\t{webhook_receiver.url}\tall\tactive\tnever called",
        f"{second.id}\tblog\thttps://hooks.example/in\tcomment.approved,comment.spam\t"
        "active\tnever called",
    ]
    webhook_receiver.then(500)
    tested = runner.invoke(args=["webhooks", "test", str(first.id)])
    assert tested.exit_code == 0, tested.output
    assert tested.output.startswith(f"queued a test event for webhook {first.id}")
    deliver()
    listed = runner.invoke(args=["webhooks", "list", "--site", "news"]).output
    assert listed.splitlines() == [
        f"{first.id}\tnews\t{webhook_receiver.url}\tall\tactive\tlast pending 500"
    ]
    assert runner.invoke(args=["webhooks", "list", "--site", "nope"]).exit_code == 1


def test_test_queues_a_test_event_the_worker_sends(
    app: Flask,
    runner: FlaskCliRunner,
    deliver: Callable[[], None],
    webhook_receiver: WebhookReceiver,
) -> None:
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    added = runner.invoke(args=["webhooks", "add", "news", webhook_receiver.url])
    webhook_receiver.secret = added.output.split()[-1]
    [webhook] = stored(app)
    assert runner.invoke(args=["webhooks", "test", str(webhook.id)]).exit_code == 0
    assert webhook_receiver.calls == []  # the worker sends it, not the command
    deliver()
    [call] = webhook_receiver.calls
    assert call.verified is True
    assert call.json["type"] == "webhook.test"
    listed = runner.invoke(args=["webhooks", "list"]).output
    assert listed.rstrip().endswith("active\tlast delivered 200")
    missing = runner.invoke(args=["webhooks", "test", "999"])
    assert missing.exit_code == 1
    assert "There is no webhook 999." in missing.output


def test_remove(app: Flask, runner: FlaskCliRunner) -> None:
    runner.invoke(args=["webhooks", "add", "news", "https://hooks.example/in"])
    [webhook] = stored(app)
    removed = runner.invoke(args=["webhooks", "remove", str(webhook.id)])
    assert removed.exit_code == 0, removed.output
    assert removed.output == f"removed webhook {webhook.id}: https://hooks.example/in\n"
    assert stored(app) == []
    again = runner.invoke(args=["webhooks", "remove", str(webhook.id)])
    assert again.exit_code == 1
    assert f"There is no webhook {webhook.id}." in again.output

"""Moderators' mails in the tests: moderators who get them, comments submitted through the
public API, the deliveries planned, and the one-click links read out of a received mail."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import Delivery, DeliveryState, Moderator, NotifyMode, Site
from tests.conftest import ORIGIN, PUBLIC_URL, password_hash, valid_submission
from tests.support.smtp import Received

SUBMIT = "/api/v1/sites/news/comments"
#: What each line of a mail's text part that carries a link starts with, by link.
LINK_LINES = {
    "approve": "Approve:",
    "reject": "Reject:",
    "spam": "Spam:",
    "panel": "Open in the panel:",
}


def add_moderator(
    app: Flask,
    email: str,
    *,
    notify: NotifyMode = NotifyMode.EACH,
    sites: tuple[str, ...] = (),
    admin: bool = False,
    active: bool = True,
) -> int:
    """A moderator of ``sites`` (none: every site), stored directly; returns the id."""
    with app.app_context():
        chosen = list(db.session.scalars(sa.select(Site).where(Site.slug.in_(sites))))
        moderator = Moderator(
            email=email,
            password_hash=password_hash(),
            is_admin=admin,
            all_sites=not sites,
            sites=chosen,
            notify=notify,
            is_active=active,
        )
        db.session.add(moderator)
        db.session.commit()
        return moderator.id


def submit(client: FlaskClient, **fields: Any) -> int:
    """Submit a comment through the public API as the site's page would; its id."""
    response = client.post(SUBMIT, json=valid_submission(**fields), headers={"Origin": ORIGIN})
    assert response.status_code == 201, response.get_json()
    comment_id: int = response.get_json()["id"]
    return comment_id


def mail_deliveries(app: Flask, kind: str = "moderator_comment") -> list[Delivery]:
    """The deliveries of one kind of moderator mail, oldest first."""
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(Delivery).where(Delivery.kind == kind).order_by(Delivery.id)
            )
        )


def age_held_mails(app: Flask, by: timedelta) -> None:
    """Make every held mail ``by`` older, as if it had been held that long."""
    with app.app_context():
        for delivery in db.session.scalars(
            sa.select(Delivery).where(Delivery.state == DeliveryState.HELD)
        ):
            delivery.created_at -= by
        db.session.commit()


def make_due(app: Flask) -> None:
    """Make every delivery waiting for another attempt due now."""
    with app.app_context():
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.state == DeliveryState.PENDING)
            .values(next_attempt_at=Delivery.created_at)
        )
        db.session.commit()


def plain_text(received: Received) -> str:
    """A mail's text part, its lines ending in ``\\n`` (they came over SMTP as CRLF)."""
    return received.part("plain").replace("\r\n", "\n")


def links(received: Received) -> dict[str, list[str]]:
    """The links of a mail's text part by kind (approve, reject, spam, panel), as paths
    on the service, in the order the mail lists its comments."""
    found: dict[str, list[str]] = {kind: [] for kind in LINK_LINES}
    for line in received.part("plain").splitlines():
        for kind, start in LINK_LINES.items():
            if line.startswith(start):
                url = line.removeprefix(start).strip()
                assert url.startswith(PUBLIC_URL + "/"), url
                found[kind].append(url.removeprefix(PUBLIC_URL))
    return found


def html_links(received: Received) -> list[str]:
    """Every ``href`` of a mail's HTML part."""
    return re.findall(r'href="([^"]*)"', received.part("html"))

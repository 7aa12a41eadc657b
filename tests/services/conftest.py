"""Fixtures for calling the use cases directly: an app context and a moderator to act as."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from commentsvc.extensions import db
from commentsvc.models import Moderator, Site
from commentsvc.services.events import CommentEvent, comment_changed, comment_committed
from tests.conftest import password_hash


@pytest.fixture
def context(app: Flask) -> Iterator[None]:
    """The app's context, for calling services as a request would."""
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def make_moderator(context: None) -> Callable[..., Moderator]:
    """A stored moderator (of the named sites, or of every site)."""

    def make(email: str = "mod@example.com", sites: tuple[str, ...] = ()) -> Moderator:
        chosen = list(db.session.scalars(sa.select(Site).where(Site.slug.in_(sites))))
        moderator = Moderator(
            email=email, password_hash=password_hash(), all_sites=not sites, sites=chosen
        )
        db.session.add(moderator)
        db.session.commit()
        return moderator

    return make


@pytest.fixture
def moderator(make_moderator: Callable[..., Moderator]) -> Moderator:
    """A moderator of every site."""
    return make_moderator()


class Heard:
    """What the event seam announced: inside transactions, and after commits."""

    def __init__(self) -> None:
        self.changed: list[CommentEvent] = []
        self.committed: list[CommentEvent] = []

    def on_changed(self, change: CommentEvent) -> None:
        self.changed.append(change)

    def on_committed(self, change: CommentEvent) -> None:
        self.committed.append(change)

    def committed_types(self) -> list[str]:
        return [change.type.value for change in self.committed]


@pytest.fixture
def heard() -> Iterator[Heard]:
    """Every comment event announced while the test runs."""
    listener = Heard()
    comment_changed.connect(listener.on_changed)
    comment_committed.connect(listener.on_committed)
    yield listener
    comment_changed.disconnect(listener.on_changed)
    comment_committed.disconnect(listener.on_committed)

"""One-click moderation links of the moderators' mails (DESIGN §8).

A link names one stored :class:`~commentsvc.models.MailLink` (one moderator, one comment,
one action) by a token that signs its id: a token nobody signed names nothing. It expires
after ``MAIL_LINK_HOURS`` (by the signature's age and by the row's ``expires_at``, so a
lifetime shortened later holds for links already sent) and works once: a decision taken
through any link of a moderator for a comment uses up all of them (approve, reject and
spam of that mail, and of any other mail of theirs for the comment), one decision per
mail. Opening a link decides nothing (:func:`open_link`); :func:`use_link` decides, as
that moderator, with the audit note ``from email``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from commentsvc.extensions import db, write_transaction
from commentsvc.models import (
    ACTION_STATUS,
    Comment,
    CommentStatus,
    MailLink,
    ModerationAction,
    ModerationEvent,
    Moderator,
    Page,
    Site,
    is_row_id,
    utcnow,
)
from commentsvc.services import moderation
from commentsvc.services.errors import Conflict, Forbidden, NotFound, ServiceError
from commentsvc.services.listing import LISTING_COLUMNS

SALT = "commentsvc.mail-link"
#: The actions a mail offers for each comment, in the order it offers them.
MAIL_ACTIONS = (ModerationAction.APPROVE, ModerationAction.REJECT, ModerationAction.SPAM)
#: The audit note of a decision taken through a link.
FROM_EMAIL = "from email"
#: The actions that decide what became of a comment (an edit does not).
_DECISIONS = (*ACTION_STATUS, ModerationAction.DELETE)

#: Comments as a mail and a link's page show them: the listing's row and the site's name.
_COMMENT_ROWS = (
    sa.select(*LISTING_COLUMNS, Site.name.label("site_name"))
    .join(Page, Page.id == Comment.page_id)
    .join(Site, Site.id == Comment.site_id)
    .outerjoin(Moderator, Moderator.id == Comment.moderated_by_id)
    .where(Comment.id.in_(sa.bindparam("ids", expanding=True)))
)


def comment_rows(ids: Iterable[int]) -> dict[int, sa.Row[Any]]:
    """The comments with these ids that exist, as listing rows with ``site_name``, by id."""
    wanted = sorted({comment_id for comment_id in ids if is_row_id(comment_id)})
    if not wanted:
        return {}
    return {row.id: row for row in db.session.execute(_COMMENT_ROWS, {"ids": wanted})}


def link_lifetime() -> timedelta:
    """How long a link works after its mail was written."""
    return timedelta(hours=int(current_app.config["MAIL_LINK_HOURS"]))


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=SALT)


def create_links(
    moderator_id: int, comment_ids: Iterable[int], now: datetime | None = None
) -> dict[int, dict[ModerationAction, str]]:
    """New links for one mail to a moderator, an approve, a reject and a spam link per
    comment, stored in one transaction: the token of each, by comment id and action."""
    now = now or utcnow()
    expires_at = now + link_lifetime()
    links = [
        MailLink(
            moderator_id=moderator_id,
            comment_id=comment_id,
            action=action,
            created_at=now,
            expires_at=expires_at,
        )
        for comment_id in dict.fromkeys(comment_ids)
        for action in MAIL_ACTIONS
    ]
    with write_transaction():
        db.session.add_all(links)
        db.session.flush()
    tokens: dict[int, dict[ModerationAction, str]] = {}
    for link in links:
        tokens.setdefault(link.comment_id, {})[link.action] = _serializer().dumps(link.id)
    return tokens


@dataclass(frozen=True)
class Happened:
    """What became of a comment: its status now (None: deleted) and the decision the audit
    log recorded last (who, what, when), if any."""

    status: CommentStatus | None
    action: ModerationAction | None = None
    actor: str | None = None
    at: datetime | None = None


def what_happened(comment_id: int) -> Happened:
    """The comment's status and its last recorded decision, in the current transaction."""
    status = db.session.scalar(sa.select(Comment.status).where(Comment.id == comment_id))
    event = db.session.scalars(
        sa.select(ModerationEvent)
        .where(ModerationEvent.comment_id == comment_id, ModerationEvent.action.in_(_DECISIONS))
        .order_by(ModerationEvent.id.desc())
        .limit(1)
    ).first()
    if event is None:
        return Happened(status)
    return Happened(status, event.action, event.actor, event.created_at)


class LinkGone(ServiceError):
    """The link worked once already, or expired: it does nothing any more."""

    title = "Link no longer valid"

    def __init__(
        self, message: str, comment_id: int | None = None, happened: Happened | None = None
    ) -> None:
        super().__init__(message)
        self.comment_id = comment_id
        self.happened = happened


class Changed(Conflict):
    """The comment is no longer what the mail showed (moderated, or deleted): the link
    leaves it as it is."""

    def __init__(self, message: str, comment_id: int, happened: Happened) -> None:
        super().__init__(message)
        self.comment_id = comment_id
        self.happened = happened


def link_id(token: str) -> int:
    """The id of the link a token signs; NotFound for a token we did not sign, LinkGone
    for one older than the links' lifetime."""
    serializer = _serializer()
    try:
        value = serializer.loads(token, max_age=int(link_lifetime().total_seconds()))
    except SignatureExpired:
        raise LinkGone("This link has expired.") from None
    except BadSignature:
        raise NotFound("There is no such link.") from None
    if not isinstance(value, int) or not is_row_id(value):
        raise NotFound("There is no such link.")
    return value


@dataclass(frozen=True)
class OpenLink:
    """A link that would act now: what it does, as whom, to which comment."""

    link: MailLink
    moderator: Moderator
    comment: sa.Row[Any]


def _check(link: MailLink, moderator: Moderator | None, now: datetime) -> Moderator:
    """LinkGone if the link was used or expired, Forbidden if its moderator may no longer
    moderate; else the moderator."""
    if link.used_at is not None:
        happened = what_happened(link.comment_id)
        raise LinkGone("This link has been used already.", link.comment_id, happened)
    if link.expires_at <= now:
        raise LinkGone("This link has expired.", link.comment_id)
    if moderator is None or not moderator.is_active:
        raise Forbidden("The moderator this link was sent to is no longer active.")
    return moderator


def _in_scope(moderator: Moderator, site_id: int) -> None:
    scope = moderator.site_scope()
    if scope is not None and site_id not in scope:
        raise Forbidden("The moderator this link was sent to no longer moderates this site.")


def _changed(comment_id: int) -> Changed:
    happened = what_happened(comment_id)
    if happened.status is None:
        return Changed("This comment has been deleted since the mail.", comment_id, happened)
    return Changed("This comment has been moderated since the mail.", comment_id, happened)


def open_link(token: str, now: datetime | None = None) -> OpenLink:
    """The link a token names, if it would act now; decides nothing (mail scanners open
    links). Raises NotFound, LinkGone, Forbidden, or Changed if the comment is gone or no
    longer pending."""
    link = db.session.get(MailLink, link_id(token))
    if link is None:
        raise NotFound("There is no such link.")
    moderator = _check(link, db.session.get(Moderator, link.moderator_id), now or utcnow())
    comment = comment_rows([link.comment_id]).get(link.comment_id)
    if comment is not None:
        _in_scope(moderator, comment.site_id)
    if comment is None or comment.status != CommentStatus.PENDING:
        raise _changed(link.comment_id)
    return OpenLink(link, moderator, comment)


@dataclass(frozen=True)
class Decided:
    """A decision taken through a link."""

    action: ModerationAction
    comment_id: int
    moderator: str


def _lock_mail_links(link: MailLink) -> Mapping[int, MailLink]:
    """Every link of the link's moderator for its comment, locked in id order: two links of
    one mail used at once wait for each other here, before either locks the comment."""
    locked = db.session.scalars(
        sa.select(MailLink)
        .where(MailLink.moderator_id == link.moderator_id, MailLink.comment_id == link.comment_id)
        .order_by(MailLink.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.id: row for row in locked}


def use_link(token: str, now: datetime | None = None) -> Decided:
    """Take the link's decision as its moderator, once: the check, the change (audit note
    ``from email``) and the links used up, in one transaction under the links' row locks.
    Raises as :func:`open_link` does, and nothing is done then."""
    wanted = link_id(token)
    now = now or utcnow()
    with write_transaction():
        found = db.session.get(MailLink, wanted)
        link = _lock_mail_links(found).get(wanted) if found is not None else None
        if link is None:
            raise NotFound("There is no such link.")
        moderator = db.session.get(Moderator, link.moderator_id, populate_existing=True)
        moderator = _check(link, moderator, now)
        site_id = db.session.scalar(sa.select(Comment.site_id).where(Comment.id == link.comment_id))
        if site_id is not None:
            _in_scope(moderator, site_id)
        status = ACTION_STATUS[link.action]
        if not moderation.decide_pending(moderator, link.comment_id, status, FROM_EMAIL):
            raise _changed(link.comment_id)
        db.session.execute(
            sa.update(MailLink)
            .where(
                MailLink.moderator_id == link.moderator_id,
                MailLink.comment_id == link.comment_id,
                MailLink.used_at.is_(None),
            )
            .values(used_at=now)
        )
    return Decided(link.action, link.comment_id, moderator.email)

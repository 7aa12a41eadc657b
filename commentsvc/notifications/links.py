"""The pages of the one-click links in moderators' mails, at ``/moderation/mail/<token>``
(DESIGN §8; the links themselves are :mod:`commentsvc.services.mail_links`).

``GET`` shows the comment and one button and changes nothing: mail scanners and link
previews open every link of a mail. The button ``POST``s to the same URL and decides as the
moderator the link names.

The pages sit under the panel's prefix, so they get its look, its security headers (a strict
CSP, ``nosniff``, no framing, ``Referrer-Policy: same-origin`` so the token never leaves in
a ``Referer``) and ``Cache-Control: no-store``. The button's form carries no CSRF token: the
signed token in its URL is the authority, as the mail is, and a page of another site cannot
know it. A CSRF token would add nothing but failures: it lives in a session that a mail
client's browser may refuse or lose between the mail and the click, and expires after an
hour while the link works for days.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from commentsvc.mail import public_url
from commentsvc.models import ACTION_STATUS, ModerationAction
from commentsvc.paths import PANEL_PREFIX
from commentsvc.services import mail_links
from commentsvc.services.errors import Forbidden, NotFound, ServiceError

bp = Blueprint("mail_links", __name__, url_prefix=f"{PANEL_PREFIX}/mail")

#: The button of each action, and what the page says once it is done.
BUTTONS = {
    ModerationAction.APPROVE: "Approve",
    ModerationAction.REJECT: "Reject",
    ModerationAction.SPAM: "Mark as spam",
}
DONE = {
    ModerationAction.APPROVE: "Approved",
    ModerationAction.REJECT: "Rejected",
    ModerationAction.SPAM: "Marked as spam",
}
assert set(BUTTONS) == set(DONE) == set(mail_links.MAIL_ACTIONS)
#: A link that does nothing now: the status and heading of its page, by refusal.
REFUSALS: tuple[tuple[type[ServiceError], int, str], ...] = (
    (mail_links.LinkGone, 410, "This link no longer works"),
    (mail_links.Changed, 409, "This comment has changed"),
    (Forbidden, 403, "Not allowed"),
    (NotFound, 404, "There is no such link"),
)

#: What a panel view answers: a page and its status.
Answer = tuple[str, int]


def link_url(token: str) -> str:
    """The external URL of a one-click link, for a mail."""
    return public_url(f"{bp.url_prefix}/{token}")


@bp.get("/<token>")
def show(token: str) -> Answer:
    """The comment and one button; nothing changes."""
    try:
        opened = mail_links.open_link(token)
    except ServiceError as error:
        return _refused(error)
    page = render_template(
        "mail_links/confirm.html",
        comment=opened.comment,
        action=opened.link.action,
        button=BUTTONS[opened.link.action],
        moderator=opened.moderator.email,
        to_status=ACTION_STATUS[opened.link.action],
    )
    return page, 200


@bp.post("/<token>")
def act(token: str) -> Answer:
    """Take the link's decision, once."""
    try:
        decided = mail_links.use_link(token)
    except ServiceError as error:
        return _refused(error)
    page = render_template(
        "mail_links/done.html",
        done=DONE[decided.action],
        comment=mail_links.comment_rows([decided.comment_id]).get(decided.comment_id),
        comment_id=decided.comment_id,
        moderator=decided.moderator,
    )
    return page, 200


def _refused(error: ServiceError) -> Answer:
    """The page of a link that does nothing now: 404 for a token we did not sign, 410 used
    or expired, 403 for a moderator who may no longer moderate the comment, 409 with what
    became of a comment moderated or deleted since the mail."""
    found = next((found for found in REFUSALS if isinstance(error, found[0])), None)
    if found is None:
        raise error
    _, status, title = found
    page = render_template(
        "mail_links/refused.html",
        title=title,
        message=error.message,
        status=status,
        comment_id=getattr(error, "comment_id", None),
        happened=getattr(error, "happened", None),
    )
    return page, status

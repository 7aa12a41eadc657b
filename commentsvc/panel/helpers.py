"""What every panel page needs: who is logged in, where to go back to, how to show time
and links, and the abuse rules' reasons and the audit log's events in a moderator's words."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from commentsvc.models import BlocklistKind, ModerationAction, Moderator, Site
from commentsvc.paths import PANEL_PREFIX
from commentsvc.security import web_url
from commentsvc.services import sites
from commentsvc.services.errors import ServiceError
from commentsvc.services.screening import REASONS
from commentsvc.services.submissions import RULES_NOTE

#: What a panel view answers: a redirect, or a page (with its status).
Page = Response | str | tuple[str, int]


def current_moderator() -> Moderator:
    """The logged-in moderator."""
    user: Moderator = current_user._get_current_object()
    return user


def visible_sites() -> list[Site]:
    """The sites the logged-in moderator may see."""
    scope = current_moderator().site_scope()
    return [site for site in sites.all_sites() if scope is None or site.id in scope]


def wants_json() -> bool:
    """Whether our script asked for JSON rather than a page."""
    return request.accept_mimetypes.best == "application/json"


def safe_next(target: str | None) -> str | None:
    """The panel path (and query) ``target`` points to on this host, else None.

    Only paths inside the panel are followed, so a crafted link cannot turn the login
    into an open redirect; nor a path with ``.`` or ``..`` segments (raw or percent-encoded),
    which the browser would resolve to somewhere else.
    """
    if not target or any(c in target for c in "\\\r\n"):
        return None
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc) and parts.netloc != request.host:
        return None
    if not parts.path.startswith(PANEL_PREFIX + "/") or parts.path.startswith("//"):
        return None
    if any(unquote(segment) in {".", ".."} for segment in parts.path.split("/")):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def ascii_url(url: str | None) -> str | None:
    """A URL as the panel links and shows it: written out again from its parts, with an
    internationalized host as punycode (``http://xn--pple-43d.com/``, not a look-alike of
    ``apple.com``); None when it is not an http(s) URL we accept (shown as text, if at all)."""
    parsed = web_url(url)
    return parsed.ascii() if parsed is not None else None


def site_url(url: str | None, origins: Collection[str] | None) -> str | None:
    """:func:`ascii_url` of a URL on one of the site's ``origins``, else None: a page link
    leads to the site's own pages or is shown as text."""
    parsed = web_url(url)
    if parsed is None or parsed.origin not in (origins or ()):
        return None
    return parsed.ascii()


def form_page(
    form: FlaskForm,
    save: Callable[[], str],
    done: str,
    template: str,
    default_field: str,
    **context: Any,
) -> Page:
    """A page with one form: on a valid POST run ``save`` (which returns the flash message)
    and go to ``done``; a refusal shows on each field it names (on ``default_field`` when it
    names none of the form's)."""
    if form.validate_on_submit():
        try:
            message = save()
        except ServiceError as error:
            fields = {name: messages for name, messages in error.errors.items() if name in form}
            for name, messages in (fields or {default_field: [error.message]}).items():
                form[name].errors = list(messages)
        else:
            flash(message, "success")
            return redirect(url_for(done), code=303)
    status = 422 if form.errors else 200
    return render_template(template, form=form, **context), status


_UNITS = (("minute", 60, 3600), ("hour", 3600, 86400), ("day", 86400, 86400 * 30))


def relative_time(value: datetime | None, now: datetime | None = None) -> str:
    """'just now', '5 minutes ago', '3 days ago', or the date for anything older."""
    if value is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 45:
        return "just now"
    for unit, size, below in _UNITS:
        if seconds < below:
            amount = max(1, round(seconds / size))
            return f"{amount} {unit}{'' if amount == 1 else 's'} ago"
    return value.strftime("%-d %b %Y")


#: Each reason code of the abuse rules (DESIGN §7) as a moderator reads it.
REASON_LABELS = {
    "honeypot": "Honeypot field filled",
    "blocklist:email": "Blocked email",
    "blocklist:domain": "Blocked domain",
    "blocklist:ip": "Blocked address",
    "blocklist:word": "Blocked word",
    "too_fast": "Sent too fast",
    "links": "Too many links",
}
assert set(REASON_LABELS) == set(REASONS), "every reason needs its label"


def reason_label(code: str) -> str:
    """A reason code in words (an unknown code as it is)."""
    return REASON_LABELS.get(code, code)


def reasons(codes: str | None) -> list[tuple[str, str]]:
    """(code, label) of each reason of a comment's space-separated ``spam_reasons``."""
    return [(code, reason_label(code)) for code in (codes or "").split()]


#: What each audit action says in a sentence ("… approved", "… marked as spam").
ACTION_WORDS = {
    ModerationAction.APPROVE: "approved",
    ModerationAction.REJECT: "rejected",
    ModerationAction.SPAM: "marked as spam",
    ModerationAction.REQUEUE: "sent back to pending",
    ModerationAction.EDIT: "edited",
    ModerationAction.DELETE: "deleted",
}


def event_note(note: str | None) -> str:
    """An audit note for people: the rules' codes (``rules: honeypot, links``) in words."""
    if not note:
        return ""
    if note.startswith(RULES_NOTE):
        codes = [code.strip() for code in note.removeprefix(RULES_NOTE).split(",")]
        return RULES_NOTE + ", ".join(
            f"{reason_label(code)} ({code})" if code in REASON_LABELS else code
            for code in codes
            if code
        )
    return note


#: What blocking each kind of entry means, as the "spam and block" form says it.
BLOCK_WHAT = {
    BlocklistKind.EMAIL: "Email address",
    BlocklistKind.DOMAIN: "Domain (every address there, and links to it)",
    BlocklistKind.IP: "Address range",
}

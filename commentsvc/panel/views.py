"""The queue, per-comment and bulk actions with undo, comment detail and the audit log.

Every action goes through :mod:`commentsvc.services.moderation`, the same code the
moderation API uses. Each action answers with a redirect and a flash message (plain
forms, no JavaScript needed) or, when our script asks for JSON, with what changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from commentsvc.errors import ApiError
from commentsvc.models import ACTION_STATUS, CommentStatus, ModerationAction, Moderator, Site
from commentsvc.pagination import decode_cursor, encode_cursor
from commentsvc.panel import bp
from commentsvc.panel.auth import safe_next
from commentsvc.services import accounts
from commentsvc.services import moderation as service

STATUSES = tuple(CommentStatus)
PAST_TENSE = {
    "approve": "Approved",
    "reject": "Rejected",
    "spam": "Marked as spam:",
    "delete": "Deleted",
}


def moderator() -> Moderator:
    """The logged-in moderator."""
    user: Moderator = current_user._get_current_object()
    return user


def relative_time(value: datetime | None, now: datetime | None = None) -> str:
    """'just now', '5 minutes ago', '3 days ago', or the date for anything older."""
    if value is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 45:
        return "just now"
    for unit, size in (("minute", 60), ("hour", 3600), ("day", 86400)):
        limit = {"minute": 3600, "hour": 86400, "day": 86400 * 30}[unit]
        if seconds < limit:
            amount = max(1, round(seconds / size))
            return f"{amount} {unit}{'' if amount == 1 else 's'} ago"
    return value.strftime("%-d %b %Y")


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _text_arg(name: str) -> str | None:
    return request.args.get(name, "").strip()[:500] or None


def _cursor_arg() -> int | None:
    try:
        return decode_cursor(request.args.get("cursor"))
    except ApiError:
        return None


def visible_sites() -> list[Site]:
    scope = moderator().site_scope()
    return [site for site in accounts.all_sites() if scope is None or site.id in scope]


@bp.get("/")
@login_required
def queue() -> str:
    raw_status = request.args.get("status") or CommentStatus.PENDING.value
    if raw_status not in {status.value for status in STATUSES}:
        raw_status = CommentStatus.PENDING.value
    status = CommentStatus(raw_status)
    filters = service.CommentFilter(
        site=_text_arg("site"), page=_text_arg("page"), q=_text_arg("q")
    )
    scope = moderator().site_scope()
    limit = current_app.config["PANEL_PAGE_SIZE"]
    comments = list(
        service.list_comments(
            scope,
            service.CommentFilter(status, filters.site, filters.page, filters.q),
            _cursor_arg(),
            limit,
        )
    )
    next_cursor = encode_cursor(comments[limit - 1].id) if len(comments) > limit else None
    return render_template(
        "panel/queue.html",
        comments=comments[:limit],
        counts=service.status_counts(scope, filters),
        status=status,
        statuses=STATUSES,
        filters=filters,
        sites=visible_sites(),
        next_cursor=next_cursor,
        undo=session.get("undo"),
    )


def _queue_filters() -> service.CommentFilter:
    """The filters of the queue the action came from (its ``next`` URL), for the tab counts."""
    query = parse_qs(urlsplit(safe_next(request.form.get("next")) or "").query)

    def value(name: str) -> str | None:
        return (query.get(name) or [""])[0].strip()[:500] or None

    return service.CommentFilter(site=value("site"), page=value("page"), q=value("q"))


def _counts() -> dict[str, int]:
    counts = service.status_counts(moderator().site_scope(), _queue_filters())
    return {status.value: n for status, n in counts.items()}


def _back(deleted: list[int] | None = None) -> str:
    """Where to go after an action: the page it came from, unless that page is gone."""
    target = safe_next(request.form.get("next"))
    if target and deleted:
        gone = {url_for("panel.detail", comment_id=comment_id) for comment_id in deleted}
        if target.split("?")[0] in gone:
            target = None
    return target or url_for("panel.queue")


def _apply(ids: list[int], action: str) -> Response:
    try:
        previous = service.bulk_moderate(moderator(), ids, action)
    except ApiError as error:
        if wants_json():
            raise
        flash(error.detail, "error")
        return redirect(_back(), code=303)
    count = len(previous)
    noun = "comment" if count == 1 else "comments"
    message = f"{PAST_TENSE[action]} {count} {noun}."
    if action != ModerationAction.DELETE and previous:
        session["undo"] = {
            "action": action,
            "message": message,
            "previous": {str(k): v.value for k, v in previous.items()},
        }
    else:
        session.pop("undo", None)
    if wants_json():
        return jsonify(
            {
                "message": message,
                "action": action,
                "changed": list(previous),
                "undo": action != ModerationAction.DELETE and bool(previous),
                "counts": _counts(),
            }
        )
    flash(message, "success")
    deleted = list(previous) if action == ModerationAction.DELETE else None
    return redirect(_back(deleted), code=303)


@bp.post("/comments/<id:comment_id>/<action>")
@login_required
def act(comment_id: int, action: str) -> Response:
    if action not in service.BULK_ACTIONS:
        abort(404)
    try:
        service.get_comment(moderator().site_scope(), comment_id)
    except ApiError:
        abort(404)
    return _apply([comment_id], action)


@bp.post("/comments/bulk")
@login_required
def bulk() -> Response:
    action = request.form.get("action", "")
    if action not in service.BULK_ACTIONS:
        abort(400, "Choose approve, reject, spam or delete.")
    ids = [
        int(value) for value in request.form.getlist("ids") if value.isascii() and value.isdigit()
    ]
    if not ids:
        flash("Select at least one comment first.", "error")
        return redirect(_back(), code=303)
    return _apply(ids, action)


@bp.post("/undo")
@login_required
def undo() -> Response:
    record: dict[str, Any] | None = session.pop("undo", None)
    if not record:
        message = "There is nothing to undo."
        restored: list[int] = []
    else:
        previous = {int(k): CommentStatus(v) for k, v in record["previous"].items()}
        expected = ACTION_STATUS[ModerationAction(record["action"])]
        restored = service.restore_statuses(moderator(), previous, expected)
        count = len(restored)
        message = f"Undone: {count} {'comment' if count == 1 else 'comments'} restored."
    if wants_json():
        return jsonify({"message": message, "restored": restored, "counts": _counts()})
    flash(message, "success")
    return redirect(_back(), code=303)


@bp.get("/comments/<id:comment_id>")
@login_required
def detail(comment_id: int) -> str:
    scope = moderator().site_scope()
    try:
        comment = service.get_comment(scope, comment_id)
    except ApiError:
        abort(404)
    same_author = [
        other
        for other in service.list_comments(
            scope, service.CommentFilter(author_email=comment.author_email), None, 20
        )
        if other.id != comment.id
    ][:20]
    return render_template(
        "panel/detail.html",
        comment=comment,
        events=service.comment_events(comment.id),
        same_author=same_author,
        undo=session.get("undo"),
    )


@bp.get("/audit")
@login_required
def audit() -> str:
    limit = current_app.config["PANEL_PAGE_SIZE"] * 2
    comment_id = request.args.get("comment_id", "")
    filters = service.EventFilter(
        comment_id=int(comment_id) if comment_id.isascii() and comment_id.isdigit() else None,
        moderator=_text_arg("moderator"),
        site=_text_arg("site"),
    )
    events = list(service.list_events(moderator().site_scope(), filters, _cursor_arg(), limit))
    next_cursor = encode_cursor(events[limit - 1].id) if len(events) > limit else None
    sites = {site.id: site for site in accounts.all_sites()}
    return render_template(
        "panel/audit.html",
        events=events[:limit],
        filters=filters,
        sites=sites,
        visible_sites=visible_sites(),
        next_cursor=next_cursor,
    )

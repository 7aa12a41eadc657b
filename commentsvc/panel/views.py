"""The queue, per-comment and bulk actions with undo, comment detail and the audit log.

Every action goes through :mod:`commentsvc.services.moderation`, the same code the
moderation API uses. Each action answers with a redirect and a flash message (plain
forms, no JavaScript needed) or, when our script asks for JSON, with what changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
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
from flask_login import login_required
from werkzeug.wrappers import Response

from commentsvc.args import cursor_arg, id_arg, status_arg, text_arg
from commentsvc.models import CommentStatus, ModerationAction
from commentsvc.pagination import paginate
from commentsvc.panel.blueprint import bp
from commentsvc.panel.helpers import current_moderator, safe_next, visible_sites, wants_json
from commentsvc.services import audit, listing, moderation, sites
from commentsvc.services.errors import Invalid, ServiceError

PAST_TENSE = {
    ModerationAction.APPROVE: "Approved",
    ModerationAction.REJECT: "Rejected",
    ModerationAction.SPAM: "Marked as spam:",
    ModerationAction.DELETE: "Deleted",
}
#: The session key of the last undoable action.
UNDO = "undo"
#: How many other comments of the same author the detail page shows.
SAME_AUTHOR_SHOWN = 20


def _filters() -> listing.CommentFilter:
    """The queue's site, page and text filters (the tab counts ignore the status)."""
    return listing.CommentFilter(
        site=text_arg("site"),
        page=text_arg("page", limit="MAX_PAGE_KEY_LENGTH"),
        q=text_arg("q"),
    )


@bp.get("/")
@login_required
def queue() -> str:
    status = status_arg() or CommentStatus.PENDING
    filters = _filters()
    scope = current_moderator().site_scope()
    limit = current_app.config["PANEL_PAGE_SIZE"]
    shown = dataclasses.replace(filters, status=status)
    found = paginate(listing.list_comments(scope, shown, cursor_arg(), limit), limit)
    return render_template(
        "panel/queue.html",
        comments=found.items,
        parents=listing.parents_of(found.items),
        counts=listing.status_counts(scope, filters),
        status=status,
        statuses=tuple(CommentStatus),
        filters=filters,
        sites=visible_sites(),
        next_cursor=found.next_cursor,
        undo=session.get(UNDO),
    )


def _queue_filters() -> listing.CommentFilter:
    """The filters of the queue the action came from (its ``next`` URL), for the tab counts."""
    query = parse_qs(urlsplit(safe_next(request.form.get("next")) or "").query)
    limit = current_app.config["MAX_FILTER_LENGTH"]

    def value(name: str) -> str | None:
        return (query.get(name) or [""])[0].strip()[:limit] or None

    return listing.CommentFilter(site=value("site"), page=value("page"), q=value("q"))


def _counts() -> dict[str, int]:
    counts = listing.status_counts(current_moderator().site_scope(), _queue_filters())
    return {status.value: n for status, n in counts.items()}


def _back(deleted: Iterable[int] = ()) -> str:
    """Where to go after an action: the page it came from, unless that page is gone."""
    target = safe_next(request.form.get("next"))
    gone = {url_for("panel.detail", comment_id=comment_id) for comment_id in deleted}
    if target and target.split("?")[0] in gone:
        target = None
    return target or url_for("panel.queue")


def _done(message: str, payload: dict[str, Any], deleted: Iterable[int] = ()) -> Response:
    """Answer an action: JSON for our script, else a flash message and back."""
    if wants_json():
        return jsonify({"message": message, **payload, "counts": _counts()})
    flash(message, "success")
    return redirect(_back(deleted), code=303)


def _apply(ids: list[int], action: ModerationAction) -> Response:
    try:
        previous = moderation.bulk_moderate(current_moderator(), ids, action)
    except ServiceError as error:
        if wants_json():
            raise
        flash(error.message, "error")
        return redirect(_back(), code=303)
    noun = "comment" if len(previous) == 1 else "comments"
    message = f"{PAST_TENSE[action]} {len(previous)} {noun}."
    undoable = action != ModerationAction.DELETE and bool(previous)
    if undoable:
        session[UNDO] = {**moderation.Undo(action, previous).to_record(), "message": message}
    else:
        session.pop(UNDO, None)
    deleted = list(previous) if action == ModerationAction.DELETE else []
    payload = {"action": action.value, "changed": list(previous), "undo": undoable}
    return _done(message, payload, deleted)


@bp.post("/comments/<id:comment_id>/<action>")
@login_required
def act(comment_id: int, action: str) -> Response:
    try:
        chosen = moderation.bulk_action(action)
    except Invalid:
        abort(404)
    listing.find_comment(current_moderator().site_scope(), comment_id)  # else 404
    return _apply([comment_id], chosen)


@bp.post("/comments/bulk")
@login_required
def bulk() -> Response:
    try:
        action = moderation.bulk_action(request.form.get("action", ""))
    except Invalid:
        abort(400, "Choose approve, reject, spam or delete.")
    values = request.form.getlist("ids")
    ids = [int(value) for value in values if value.isascii() and value.isdigit()]
    if not ids:
        flash("Select at least one comment first.", "error")
        return redirect(_back(), code=303)
    return _apply(ids, action)


@bp.post("/undo")
@login_required
def undo() -> Response:
    record: dict[str, Any] | None = session.pop(UNDO, None)
    restored: list[int] = []
    message = "There is nothing to undo."
    if record:
        restored = moderation.undo(current_moderator(), moderation.Undo.from_record(record))
        noun = "comment" if len(restored) == 1 else "comments"
        message = f"Undone: {len(restored)} {noun} restored."
    return _done(message, {"restored": restored})


@bp.get("/comments/<id:comment_id>")
@login_required
def detail(comment_id: int) -> str:
    scope = current_moderator().site_scope()
    comment = listing.find_comment(scope, comment_id)
    by_author = listing.CommentFilter(author_email=comment.author_email)
    others = listing.list_comments(scope, by_author, None, SAME_AUTHOR_SHOWN)
    same_author = [other for other in others if other.id != comment.id][:SAME_AUTHOR_SHOWN]
    return render_template(
        "panel/detail.html",
        comment=comment,
        parents=listing.parents_of([comment]),
        events=audit.comment_events(comment.id),
        same_author=same_author,
        undo=session.get(UNDO),
    )


@bp.get("/audit", endpoint="audit")
@login_required
def audit_log() -> str:
    # Audit rows are one line each: twice as many fit where comments do.
    limit = current_app.config["PANEL_PAGE_SIZE"] * 2
    filters = audit.EventFilter(
        comment_id=id_arg("comment_id"),
        moderator=text_arg("moderator"),
        site=text_arg("site"),
    )
    events = audit.list_events(current_moderator().site_scope(), filters, cursor_arg(), limit)
    found = paginate(events, limit)
    return render_template(
        "panel/audit.html",
        events=found.items,
        filters=filters,
        sites={site.id: site for site in sites.all_sites()},
        visible_sites=visible_sites(),
        next_cursor=found.next_cursor,
    )

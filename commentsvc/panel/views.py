"""The queue, per-comment and bulk actions with undo, "spam and block this author", comment
detail and the audit log.

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

from commentsvc.args import (
    choice_arg,
    cursor_arg,
    fraction,
    fraction_arg,
    id_arg,
    order_args,
    status_arg,
    text_arg,
)
from commentsvc.models import BlocklistKind, CommentStatus, ModerationAction
from commentsvc.pagination import paginate
from commentsvc.panel.blueprint import bp
from commentsvc.panel.helpers import (
    REASON_LABELS,
    current_moderator,
    safe_next,
    visible_sites,
    wants_json,
)
from commentsvc.services import audit, blocklist, listing, moderation, sites
from commentsvc.services.errors import ServiceError
from commentsvc.services.screening import REASONS

PAST_TENSE = {
    ModerationAction.APPROVE: "Approved",
    ModerationAction.REJECT: "Rejected",
    ModerationAction.SPAM: "Marked as spam:",
    ModerationAction.REQUEUE: "Back to pending:",
    ModerationAction.DELETE: "Deleted",
}
#: What the panel's buttons may do, by the name their URL gives: the bulk actions of the
#: API, and "Not spam" (back to pending, where the comment is moderated like any other).
PANEL_ACTIONS = {
    **{action.value: action for action in moderation.BULK_ACTIONS},
    "not-spam": ModerationAction.REQUEUE,
}
#: The session key of the last undoable action.
UNDO = "undo"
#: How many other comments of the same author the detail page shows.
SAME_AUTHOR_SHOWN = 20
#: The queue's orders as its sort control names them.
ORDER_LABELS = {
    listing.Order.NEWEST: "Newest first",
    listing.Order.SPAM_SCORE: "Most suspicious first",
}
assert set(ORDER_LABELS) == set(listing.Order)
#: The "spam and block" form's choice of where the entries hold.
BLOCK_EVERYWHERE = "every"


def _panel_action(value: str) -> ModerationAction | None:
    """The action a panel button names, or None."""
    return PANEL_ACTIONS.get(value)


def _filters() -> listing.CommentFilter:
    """The queue's filters (the tab counts ignore the status)."""
    return listing.CommentFilter(
        site=text_arg("site"),
        page=text_arg("page", limit="MAX_PAGE_KEY_LENGTH"),
        q=text_arg("q"),
        spam_score_min=fraction_arg("spam_score_min"),
        reason=choice_arg("reason", REASONS),
    )


def _query_args(filters: listing.CommentFilter, order: listing.Order) -> dict[str, str]:
    """The queue's arguments that the tabs and the next page keep (those that are set)."""
    args = {
        "site": filters.site,
        "page": filters.page,
        "q": filters.q,
        "reason": filters.reason,
        "spam_score_min": None if filters.spam_score_min is None else f"{filters.spam_score_min:g}",
        "order": None if order == listing.Order.NEWEST else order.value,
    }
    return {name: value for name, value in args.items() if value is not None}


@bp.get("/")
@login_required
def queue() -> str:
    status = status_arg() or CommentStatus.PENDING
    filters = _filters()
    order, before = order_args()
    scored = order == listing.Order.SPAM_SCORE
    scope = current_moderator().site_scope()
    limit = current_app.config["PANEL_PAGE_SIZE"]
    shown = dataclasses.replace(filters, status=status)
    rows = listing.list_comments(scope, shown, before, limit, order)
    found = paginate(rows, limit, score=listing.row_score if scored else None)
    return render_template(
        "panel/queue.html",
        comments=found.items,
        parents=listing.parents_of(found.items),
        offers=_offers(found.items),
        block_everywhere=blocklist.can_manage(scope, None),
        counts=listing.status_counts(scope, filters),
        status=status,
        statuses=tuple(CommentStatus),
        filters=filters,
        order=order,
        orders=ORDER_LABELS,
        reasons=REASON_LABELS,
        query=_query_args(filters, order),
        sites=visible_sites(),
        next_cursor=found.next_cursor,
        undo=session.get(UNDO),
    )


def _offers(rows: Iterable[Any]) -> dict[int, list[tuple[BlocklistKind, str]]]:
    """What "spam and block this author" offers for each comment, by id."""
    return {row.id: blocklist.offered_entries(row.author_email, row.ip_prefix) for row in rows}


def _queue_filters() -> listing.CommentFilter:
    """The filters of the queue the action came from (its ``next`` URL), for the tab counts."""
    query = parse_qs(urlsplit(safe_next(request.form.get("next")) or "").query)
    limit = current_app.config["MAX_FILTER_LENGTH"]

    def value(name: str) -> str | None:
        return (query.get(name) or [""])[0].strip()[:limit] or None

    reason = value("reason")
    score = value("spam_score_min")
    return listing.CommentFilter(
        site=value("site"),
        page=value("page"),
        q=value("q"),
        spam_score_min=fraction(score) if score else None,
        reason=reason if reason in REASONS else None,
    )


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


def _remember_undo(
    action: ModerationAction, previous: dict[int, CommentStatus], message: str
) -> bool:
    """Keep what undoes ``action`` in the session (a deletion, or no change, has none)."""
    undoable = action != ModerationAction.DELETE and bool(previous)
    if undoable:
        session[UNDO] = {**moderation.Undo(action, previous).to_record(), "message": message}
    else:
        session.pop(UNDO, None)
    return undoable


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
    undoable = _remember_undo(action, previous, message)
    deleted = list(previous) if action == ModerationAction.DELETE else []
    payload = {"action": action.value, "changed": list(previous), "undo": undoable}
    return _done(message, payload, deleted)


@bp.post("/comments/<id:comment_id>/<action>")
@login_required
def act(comment_id: int, action: str) -> Response:
    chosen = _panel_action(action)
    if chosen is None:
        abort(404)
    listing.find_comment(current_moderator().site_scope(), comment_id)  # else 404
    return _apply([comment_id], chosen)


@bp.post("/comments/bulk")
@login_required
def bulk() -> Response:
    action = _panel_action(request.form.get("action", ""))
    if action is None:
        abort(400, "Choose approve, reject, spam, not-spam or delete.")
    values = request.form.getlist("ids")
    ids = [int(value) for value in values if value.isascii() and value.isdigit()]
    if not ids:
        flash("Select at least one comment first.", "error")
        return redirect(_back(), code=303)
    return _apply(ids, action)


@bp.post("/comments/<id:comment_id>/block")
@login_required
def block(comment_id: int) -> Response:
    """Spam and block this author: the chosen entries of those offered for the comment
    (email, domain, address range), on its site or on every site, then the comment as spam."""
    moderator = current_moderator()
    scope = moderator.site_scope()
    comment = listing.find_comment(scope, comment_id)  # else 404
    everywhere = request.form.get("scope") == BLOCK_EVERYWHERE
    site_id = None if everywhere else comment.site_id
    if not blocklist.can_manage(scope, site_id):
        abort(403, "Only a moderator of every site may block on every site.")
    wanted = set(request.form.getlist("block"))
    chosen = [
        (kind, value)
        for kind, value in blocklist.offered_entries(comment.author_email, comment.ip_prefix)
        if kind.value in wanted
    ]
    if not chosen:
        flash("Choose what to block first: the email, the domain or the address range.", "error")
        return redirect(_back(), code=303)
    before = moderation.spam_and_block(moderator, comment_id, chosen, site_id)
    where = "every site" if everywhere else f"site {comment.site_slug}"
    already = before == CommentStatus.SPAM
    done = "Blocked" if already else "Marked as spam and blocked"
    message = f"{done} on {where}: {blocklist.described(chosen)}."
    previous = {} if already else {comment_id: before}
    _remember_undo(ModerationAction.SPAM, previous, message)
    flash(message, "success")
    return redirect(_back(), code=303)


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
    same_author = []
    if comment.author_email:  # an erased author has none: no one else is "the same"
        by_author = listing.CommentFilter(author_email=comment.author_email)
        others = listing.list_comments(scope, by_author, None, SAME_AUTHOR_SHOWN)
        same_author = [other for other in others if other.id != comment.id][:SAME_AUTHOR_SHOWN]
    return render_template(
        "panel/detail.html",
        comment=comment,
        parents=listing.parents_of([comment]),
        events=audit.comment_events(comment.id),
        same_author=same_author,
        offers=_offers([comment]),
        block_everywhere=blocklist.can_manage(scope, None),
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

"""The moderation API (DESIGN §4): bearer-token auth, list, get, change, delete, bulk, audit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for

from commentsvc.api.serializers import (
    blocklist_entry_json,
    moderation_comment,
    moderation_event,
)
from commentsvc.args import (
    choice_arg,
    fraction_arg,
    id_arg,
    limit_arg,
    order_args,
    page_args,
    status_arg,
    text_arg,
)
from commentsvc.errors import ApiError
from commentsvc.forms import (
    BlocklistEntryForm,
    ModerationUpdateForm,
    json_to_formdata,
    validated,
)
from commentsvc.models import CommentStatus, Moderator, is_row_id
from commentsvc.pagination import paginate
from commentsvc.paths import MODERATION_API_PREFIX, in_moderation_api
from commentsvc.payloads import read_json_object, refuse_nul
from commentsvc.services import audit, blocklist, listing, moderation, personal_data, sites
from commentsvc.services.errors import Invalid
from commentsvc.services.screening import REASONS
from commentsvc.services.tokens import TokenHolder, authenticate_token

bp = Blueprint("moderation_api", __name__, url_prefix=MODERATION_API_PREFIX)

bp.before_request(refuse_nul)


@bp.after_app_request
def add_security_headers(response: Response) -> Response:
    """Every moderation API answer (emails, client facts): no cache may store it, no content
    sniffing. On the app, not the blueprint, so that errors of paths no route matches too."""
    if in_moderation_api(request.path):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_request
def authenticate() -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    holder = None
    if scheme.lower() == "bearer" and token.strip():
        holder = authenticate_token(token.strip())
    if holder is None:
        raise _unauthorized()
    g.token_holder = holder


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        "Send a valid API token as 'Authorization: Bearer <token>'.",
        title="Unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="commentsvc"'},
    )


def _scope() -> set[int] | None:
    """The sites the request's token may see (None: all)."""
    holder: TokenHolder = g.token_holder
    return holder.scope


def _moderator() -> Moderator:
    """The moderator the request's token speaks for, loaded to act (reads need only scope)."""
    holder: TokenHolder = g.token_holder
    moderator = holder.moderator()
    if moderator is None:
        raise _unauthorized()  # removed or deactivated since the token was checked
    return moderator


@bp.get("/comments")
def list_comments() -> Response:
    limit = limit_arg()
    order, before = order_args()
    filters = listing.CommentFilter(
        status=status_arg(),
        site=text_arg("site"),
        page=text_arg("page", limit="MAX_PAGE_KEY_LENGTH"),
        q=text_arg("q"),
        spam_score_min=fraction_arg("spam_score_min"),
        reason=choice_arg("reason", REASONS),
    )
    rows = listing.list_comments(_scope(), filters, before, limit, order)
    scored = order == listing.Order.SPAM_SCORE
    found = paginate(rows, limit, score=listing.row_score if scored else None)
    comments = [moderation_comment(row) for row in found.items]
    return jsonify({"comments": comments, "next_cursor": found.next_cursor})


def _comment_with_events(comment_id: int) -> dict[str, Any]:
    row = listing.find_comment(_scope(), comment_id)
    events = [moderation_event(event) for event in audit.comment_events(comment_id)]
    return {**moderation_comment(row), "events": events}


@bp.get("/comments/<id:comment_id>")
def get_comment(comment_id: int) -> Response:
    return jsonify(_comment_with_events(comment_id))


@bp.patch("/comments/<id:comment_id>")
def update_comment(comment_id: int) -> Response:
    data, type_errors = json_to_formdata(_json_payload(), ModerationUpdateForm)
    form = validated(ModerationUpdateForm, data, type_errors)
    status = CommentStatus(form.status.data) if form.status.data else None
    moderation.update_comment(
        _moderator(), comment_id, status, form.body.data, form.note.data or None
    )
    return jsonify(moderation_comment(listing.find_comment(_scope(), comment_id)))


@bp.delete("/comments/<id:comment_id>")
def delete_comment(comment_id: int) -> Response:
    moderation.delete_comment(_moderator(), comment_id)
    return current_app.response_class(status=204)


def _bulk_payload(payload: dict[str, Any]) -> tuple[list[int], moderation.ModerationAction]:
    """The ids and action of a bulk request; Invalid naming every field at fault."""
    ids = payload.get("ids")
    errors: dict[str, list[str]] = {}
    if not isinstance(ids, list) or not ids or not all(_is_id(i) for i in ids):
        errors["ids"] = ["Must be a non-empty list of comment ids."]
    try:
        action = moderation.bulk_action(payload.get("action"))
    except Invalid as error:
        errors.update(error.errors)
    if errors or not isinstance(ids, list):
        raise Invalid(errors)
    return ids, action


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and is_row_id(value)


@bp.post("/comments/bulk")
def bulk() -> Response:
    ids, action = _bulk_payload(_json_payload())
    changed = moderation.bulk_moderate(_moderator(), ids, action)
    return jsonify(
        {"action": action.value, "ids": list(dict.fromkeys(ids)), "changed": list(changed)}
    )


@bp.get("/events")
def list_events() -> Response:
    limit, before_id = page_args()
    filters = audit.EventFilter(
        comment_id=id_arg("comment_id"),
        moderator=text_arg("moderator"),
        site=text_arg("site"),
    )
    found = paginate(audit.list_events(_scope(), filters, before_id, limit), limit)
    events = [moderation_event(event) for event in found.items]
    return jsonify({"events": events, "next_cursor": found.next_cursor})


@bp.get("/blocklist")
def list_blocklist() -> Response:
    """The entries the token's moderator may see; ``site=SLUG``: those that hold there."""
    slug = text_arg("site")
    site_id = None
    if slug is not None:
        site_id = _site_in_scope(slug)
    entries = blocklist.entries(_scope(), site_id)
    return jsonify({"entries": [blocklist_entry_json(entry) for entry in entries]})


def _site_in_scope(slug: str) -> int:
    """The id of the site ``slug``; Invalid (naming ``site``) if it is unknown or out of
    the token's scope (no existence leak)."""
    site = sites.get_site(slug)
    scope = _scope()
    if site is None or (scope is not None and site.id not in scope):
        raise Invalid.on("site", f"There is no site {slug!r}.")
    return site.id


@bp.post("/blocklist")
def add_blocklist_entry() -> Response:
    data, type_errors = json_to_formdata(_json_payload(), BlocklistEntryForm)
    form = validated(BlocklistEntryForm, data, type_errors)
    site_id = _site_in_scope(form.site.data) if form.site.data else None
    moderator = _moderator()
    if not blocklist.can_manage(moderator.site_scope(), site_id):
        raise Invalid.on("site", "Only a moderator of every site may block on every site.")
    entry, created = blocklist.add_entry(form.kind.data, form.value.data, site_id, moderator.email)
    response = jsonify(blocklist_entry_json(entry))
    response.status_code = 201 if created else 200
    response.headers["Location"] = url_for(".blocklist_entry", entry_id=entry.id)
    return response


@bp.get("/blocklist/<id:entry_id>")
def blocklist_entry(entry_id: int) -> Response:
    return jsonify(blocklist_entry_json(blocklist.find_entry(entry_id, _scope())))


@bp.delete("/blocklist/<id:entry_id>")
def remove_blocklist_entry(entry_id: int) -> Response:
    blocklist.remove_entry(entry_id, _moderator().site_scope())
    return current_app.response_class(status=204)


def _administrator() -> Moderator:
    """The administrator the token speaks for; 403 for any other moderator."""
    moderator = _moderator()
    if not moderator.is_admin:
        raise ApiError(
            403, "Only administrators may read or erase personal data.", title="Forbidden"
        )
    return moderator


@bp.get("/personal-data")
def personal_data_export() -> Response:
    """Every comment, reply subscription and mail of one address (DESIGN §9)."""
    _administrator()
    email = request.args.get("email", "")
    return jsonify(personal_data.export(email))


@bp.post("/personal-data/erase")
def personal_data_erase() -> Response:
    """Erase one address's personal data on every site, or its comments (DESIGN §9)."""
    moderator = _administrator()
    payload = _json_payload()
    errors: dict[str, list[str]] = {}
    email = None
    try:
        email = personal_data.address(payload.get("email"))
    except Invalid as error:
        errors.update(error.errors)
    delete_comments = payload.get("delete_comments", False)
    if not isinstance(delete_comments, bool):
        errors["delete_comments"] = ["Must be true or false."]
    if errors or email is None:
        raise Invalid(errors)
    erased = personal_data.erase(email, delete_comments=delete_comments, moderator=moderator)
    return jsonify(erased.to_json())


def _json_payload() -> dict[str, Any]:
    if request.mimetype != "application/json":
        accept_header = "Accept-Patch" if request.method == "PATCH" else "Accept-Post"
        raise ApiError(
            415,
            "Send application/json.",
            title="Unsupported Media Type",
            headers={accept_header: "application/json"},
        )
    return read_json_object(request)

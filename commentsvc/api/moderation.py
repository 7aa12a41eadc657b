"""The moderation API (DESIGN §4): bearer-token auth, list, get, change, delete, bulk, audit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from commentsvc.api.serializers import moderation_comment, moderation_event
from commentsvc.errors import ApiError, ValidationError
from commentsvc.extensions import db
from commentsvc.forms import read_json_object, refuse_nul, unsafe_text_reason
from commentsvc.models import MAX_ID, CommentStatus, Moderator
from commentsvc.pagination import encode_cursor, page_args
from commentsvc.services import moderation as service

bp = Blueprint("moderation_api", __name__, url_prefix="/api/v1/moderation")

STATUSES = tuple(status.value for status in CommentStatus)

bp.before_request(refuse_nul)


@bp.before_request
def authenticate() -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    holder = None
    if scheme.lower() == "bearer" and token.strip():
        holder = service.authenticate_token(token.strip())
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
    holder: service.TokenHolder = g.token_holder
    return holder.scope


def _moderator() -> Moderator:
    """The moderator the request's token speaks for, loaded to act (reads need only scope)."""
    holder: service.TokenHolder = g.token_holder
    moderator = db.session.get(Moderator, holder.moderator_id)
    if moderator is None or not moderator.is_active:
        raise _unauthorized()  # removed or deactivated since the token was checked
    return moderator


def _status_arg(value: str | None) -> CommentStatus | None:
    if value in (None, ""):
        return None
    if value not in STATUSES:
        raise ApiError(
            400, "Unknown status.", errors={"status": [f"Must be one of: {', '.join(STATUSES)}."]}
        )
    return CommentStatus(value)


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    if value == "":
        return None
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= MAX_ID:
        raise ApiError(
            400, f"{name} must be an id.", errors={name: ["Must be a positive integer."]}
        )
    return int(value)


def _text_arg(name: str) -> str | None:
    return request.args.get(name, "").strip() or None


def _listing(key: str, items: list[dict[str, Any]], last_ids: list[int], limit: int) -> Response:
    has_more = len(items) > limit
    return jsonify(
        {
            key: items[:limit],
            "next_cursor": encode_cursor(last_ids[limit - 1]) if has_more else None,
        }
    )


@bp.get("/comments")
def list_comments() -> Response:
    limit, before_id = page_args()
    filters = service.CommentFilter(
        status=_status_arg(request.args.get("status")),
        site=_text_arg("site"),
        page=_text_arg("page"),
        q=_text_arg("q"),
    )
    rows = service.list_comment_rows(_scope(), filters, before_id, limit)
    return _listing(
        "comments", [moderation_comment(row) for row in rows], [row.id for row in rows], limit
    )


@bp.get("/comments/<id:comment_id>")
def get_comment(comment_id: int) -> Response:
    comment = service.get_comment(_scope(), comment_id)
    events = service.comment_events(comment.id)
    return jsonify({**moderation_comment(comment), "events": [moderation_event(e) for e in events]})


def _optional_string(payload: dict[str, Any], name: str, errors: dict[str, list[str]]) -> Any:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        errors[name] = ["Must be a string."]
        return None
    return value


@bp.patch("/comments/<id:comment_id>")
def update_comment(comment_id: int) -> Response:
    payload = _json_payload()
    errors: dict[str, list[str]] = {}
    status = _optional_string(payload, "status", errors)
    body = _optional_string(payload, "body", errors)
    note = _optional_string(payload, "note", errors)
    if status is not None and status not in STATUSES:
        errors["status"] = [f"Must be one of: {', '.join(STATUSES)}."]
    if body is not None:
        body = body.strip()
        limit = current_app.config["MAX_BODY_LENGTH"]
        reason = unsafe_text_reason(body, multiline=True)
        if not body:
            errors["body"] = ["This field is required."]
        elif len(body) > limit:
            errors["body"] = [f"Must be at most {limit} characters."]
        elif reason:
            errors["body"] = [reason]
    if note is not None and (reason := unsafe_text_reason(note, multiline=True)):
        errors["note"] = [reason]
    if status is None and body is None and not errors:
        errors["status"] = ["Send a status, a body, or both."]
    if errors:
        raise ValidationError(errors)
    comment = service.update_comment(
        _moderator(),
        comment_id,
        CommentStatus(status) if status else None,
        body,
        note.strip() or None if note else None,
    )
    return jsonify(moderation_comment(comment))


@bp.delete("/comments/<id:comment_id>")
def delete_comment(comment_id: int) -> Response:
    service.delete_comment(_moderator(), comment_id)
    return current_app.response_class(status=204)


def _bulk_payload(payload: dict[str, Any]) -> tuple[list[int], str]:
    """The ids and action of a bulk request, or a 422 naming what is wrong."""
    ids = payload.get("ids")
    action = payload.get("action")
    errors: dict[str, list[str]] = {}
    if not isinstance(ids, list) or not ids or not all(_is_id(i) for i in ids):
        errors["ids"] = ["Must be a non-empty list of comment ids."]
    if not isinstance(action, str) or action not in service.BULK_ACTIONS:
        errors["action"] = [f"Must be one of: {', '.join(service.BULK_ACTIONS)}."]
    if errors or not isinstance(ids, list) or not isinstance(action, str):
        raise ValidationError(errors)
    return ids, action


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


@bp.post("/comments/bulk")
def bulk() -> Response:
    ids, action = _bulk_payload(_json_payload())
    changed = service.bulk_moderate(_moderator(), ids, action)
    return jsonify({"action": action, "ids": list(dict.fromkeys(ids)), "changed": list(changed)})


@bp.get("/events")
def list_events() -> Response:
    limit, before_id = page_args()
    filters = service.EventFilter(
        comment_id=_int_arg("comment_id"),
        moderator=_text_arg("moderator"),
        site=_text_arg("site"),
    )
    events = service.list_events(_scope(), filters, before_id, limit)
    return _listing("events", [moderation_event(e) for e in events], [e.id for e in events], limit)


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

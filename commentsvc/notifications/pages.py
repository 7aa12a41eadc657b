"""The pages of the links in mails to commenters: confirm an address, unsubscribe (DESIGN
§8); export or erase one's personal data (DESIGN §9).

``GET`` shows a page with a button and changes nothing (mail scanners follow links); the
button ``POST``s and acts. The unsubscribe ``POST`` is also RFC 8058's one-click request,
which a mail provider sends with the body ``List-Unsubscribe=One-Click``, without cookies
and without any token of a form: so these POSTs carry no CSRF token and need none. The
signed token in the URL is the authority, and it reached only the mailbox it was sent to;
a forged cross-site POST would need that token too, and no session is involved.

The pages load nothing and run no script; they are never framed, cached or sent as a
referrer (the URL holds the token).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, render_template, request
from flask.blueprints import BlueprintSetupState

from commentsvc.api.public import PAGE_STYLE, page_headers
from commentsvc.notifications import personal_data, replies
from commentsvc.services.errors import NotFound

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

_HEADERS = "commentsvc.notification_page_headers"


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    style = state.app.jinja_env.get_template(PAGE_STYLE).render()
    state.app.extensions[_HEADERS] = {
        **page_headers(style, form_action="'self'"),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers.update(current_app.extensions[_HEADERS])
    return response


def _page(template: str, status: int = 200, **context: object) -> Response:
    return current_app.response_class(
        render_template(template, **context), status=status, mimetype="text/html"
    )


def _link_error(error: NotFound | replies.LinkExpired | personal_data.LinkExpired) -> Response:
    status = 410 if isinstance(error, replies.LinkExpired | personal_data.LinkExpired) else 404
    return _page("notifications/link_error.html", status, error=error)


@bp.get("/confirm/<token>")
def confirm_page(token: str) -> Response:
    try:
        found = replies.confirmation(token)
    except (NotFound, replies.LinkExpired) as error:
        return _link_error(error)
    return _page("notifications/confirm.html", confirmation=found, posted=False)


@bp.post("/confirm/<token>")
def confirm(token: str) -> Response:
    try:
        done = replies.confirm(token)
    except (NotFound, replies.LinkExpired) as error:
        return _link_error(error)
    return _page("notifications/confirm.html", confirmation=done, posted=True)


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> Response:
    try:
        found = replies.unsubscription(token)
    except NotFound as error:
        return _link_error(error)
    return _page("notifications/unsubscribe.html", state=found, posted=False)


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> Response:
    """The page's buttons, and RFC 8058's one-click POST (which stops this comment's mails)."""
    try:
        done = replies.unsubscribe(token, whole_site=request.form.get("scope") == "site")
    except NotFound as error:
        return _link_error(error)
    return _page("notifications/unsubscribe.html", state=done, posted=True)


@bp.get("/personal-data/<token>")
def personal_data_page(token: str) -> Response:
    try:
        link = personal_data.open_link(token)
    except (NotFound, personal_data.LinkExpired) as error:
        return _link_error(error)
    return _page("notifications/personal_data.html", link=link, erased=None)


@bp.post("/personal-data/<token>")
def personal_data_act(token: str) -> Response:
    """The page's button: the export as a JSON download, or the erasure."""
    try:
        link = personal_data.open_link(token)
        if link.kind == "export":
            return _download(*personal_data.export_by_link(token))
        delete_comments = request.form.get("delete_comments") in ("true", "on", "1")
        erased = personal_data.erase_by_link(token, delete_comments)
    except (NotFound, personal_data.LinkExpired) as error:
        return _link_error(error)
    return _page("notifications/personal_data.html", link=link, erased=erased)


def _download(link: personal_data.Link, document: dict[str, object]) -> Response:
    body = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    response = current_app.response_class(body, mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="personal-data-{link.request_id}.json"'
    )
    return response

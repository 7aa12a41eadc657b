"""The public API a site's pages call (DESIGN §4): submit, thread, counts. CORS per site."""

from __future__ import annotations

import base64
import hashlib

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from jinja2 import Environment
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from commentsvc.api.serializers import public_comment_json, public_thread_json, submitted_comment
from commentsvc.args import page_args, required_arg
from commentsvc.errors import PROBLEM_JSON, ApiError, from_service_error
from commentsvc.forms import CommentForm, OnOrigins, json_to_formdata, validated
from commentsvc.paths import PUBLIC_API_PREFIX, in_public_api
from commentsvc.payloads import read_json_object, read_urlencoded, refuse_nul
from commentsvc.security import anonymize_ip, origin_of_url, web_url
from commentsvc.services import idempotency, sites, submissions, threads
from commentsvc.services.errors import ServiceError
from commentsvc.services.sites import PublicSite

bp = Blueprint("public", __name__, url_prefix=PUBLIC_API_PREFIX + "<site_slug>")

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
PREFLIGHT_MAX_AGE = "86400"
#: The stylesheet the no-JavaScript form's pages carry inline (public/base.html).
PAGE_STYLE = "public/page.css"
_PAGE_HEADERS = "commentsvc.public_page_headers"


@bp.url_value_preprocessor
def load_site(endpoint: str | None, values: dict[str, object] | None) -> None:
    refuse_nul()  # the body is the form's to check, field by field
    slug = str((values or {}).pop("site_slug", ""))
    site = sites.get_site(slug)
    if site is None:
        raise ApiError(404, f"There is no site {slug!r}.", title="Unknown site")
    g.site = site


def _request_origin() -> str | None:
    return request.headers.get("Origin")


def _origin_allowed(site: PublicSite, origin: str | None) -> bool:
    return origin is not None and origin_of_url(origin) in site.origins


@bp.before_request
def answer_preflight() -> Response | None:
    if request.method != "OPTIONS":
        return None
    origin = _request_origin()
    if not _origin_allowed(g.site, origin):
        raise ApiError(403, "This origin may not use this site's comments.", title="Forbidden")
    response = current_app.response_class(status=204)
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = (
        "Content-Type, If-None-Match, Idempotency-Key"
    )
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


@bp.after_request
def add_cors_headers(response: Response) -> Response:
    response.vary.add("Origin")
    site = g.get("site")
    origin = _request_origin()
    if site is not None and _origin_allowed(site, origin):
        response.headers["Access-Control-Allow-Origin"] = origin or ""
        response.headers["Access-Control-Expose-Headers"] = "ETag, Location, Retry-After"
    return response


def page_headers(templates: Environment) -> dict[str, str]:
    """The headers of the no-JavaScript form's HTML pages: no script, no framing, nothing
    loaded; their one inline stylesheet is allowed by its hash."""
    style = templates.get_template(PAGE_STYLE).render()
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")
    policy = [
        "default-src 'none'",
        f"style-src 'sha256-{digest}'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
    return {
        "Content-Security-Policy": "; ".join(policy),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }


@bp.record_once
def _make_page_headers(state: BlueprintSetupState) -> None:
    state.app.extensions[_PAGE_HEADERS] = page_headers(state.app.jinja_env)


@bp.after_app_request
def add_security_headers(response: Response) -> Response:
    """Every public API answer: no content sniffing; its HTML pages also :func:`page_headers`.

    On the app, not the blueprint, so that errors of paths no route matches get it too. It
    only sets headers: it runs on every thread and counts read, the hot path.
    """
    if in_public_api(request.path):
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.mimetype == "text/html":
            response.headers.update(current_app.extensions[_PAGE_HEADERS])
    return response


def _wants_problem_json() -> bool:
    """Form posts answer in HTML unless the client explicitly prefers JSON."""
    explicit = {mimetype for mimetype, quality in request.accept_mimetypes if quality > 0}
    return bool(explicit & {JSON, PROBLEM_JSON}) and "text/html" not in explicit


def _on_site(site: PublicSite, value: str) -> str | None:
    """``value`` written out again from its parts, if it is a URL on one of the site's
    origins (one that browsers read as our checks do: see :func:`~.security.parse_web_url`)."""
    parsed = web_url(value.strip())
    return str(parsed) if parsed is not None and parsed.origin in site.origins else None


def _return_to(site: PublicSite, data: MultiDict[str, str]) -> str | None:
    """The form's ``return_to``, if it is on one of the site's origins (400 otherwise)."""
    value = data.get("return_to", "").strip()
    if not value:
        return None
    # No control character reaches the Location header: a line break cannot be sent
    # there at all (500, after the comment was stored), the others would be altered.
    on_site = _on_site(site, value)
    if on_site is None:
        raise ApiError(
            400,
            "return_to must be a URL on one of the site's origins.",
            errors={"return_to": [OnOrigins.message]},
        )
    return on_site


@bp.post("/comments")
def submit() -> BaseResponse:
    site: PublicSite = g.site
    origin = _request_origin()
    if origin is not None and not _origin_allowed(site, origin):
        raise ApiError(403, "This origin may not post comments to this site.", title="Forbidden")
    if request.mimetype == JSON:
        key = _idempotency_key()
        data, type_errors = json_to_formdata(read_json_object(request))
        return _submit_json(site, data, type_errors, key)
    if request.mimetype == FORM:
        return _submit_form(site, read_urlencoded(request))
    raise ApiError(
        415,
        f"Send {JSON} or {FORM}.",
        title="Unsupported Media Type",
        headers={"Accept-Post": f"{JSON}, {FORM}"},
    )


#: The longest ``Idempotency-Key`` taken (a UUID is 36 characters).
MAX_IDEMPOTENCY_KEY_LENGTH = 255
_KEY_CHARACTERS = frozenset(chr(code) for code in range(0x21, 0x7F))


def _idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` (bare, or quoted as a structured-field string);
    400 when it is empty, too long or not visible ASCII."""
    raw = request.headers.get(idempotency.FIELD)
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not set(key) <= _KEY_CHARACTERS:
        message = f"Must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters."
        raise ApiError(
            400,
            f"The Idempotency-Key header is not valid. {message}",
            errors={idempotency.FIELD: [message]},
        )
    return key


def _comment_form(
    site: PublicSite, data: MultiDict[str, str], type_errors: dict[str, list[str]]
) -> CommentForm:
    """The submission's form, validated; a ``page_url`` only on one of the site's origins."""
    return validated(CommentForm, data, type_errors, {"page_url": [OnOrigins(site.origins)]})


def _store(
    site: PublicSite, form: CommentForm, idempotency_key: str | None = None
) -> submissions.StoredComment:
    user_agent = request.user_agent.string or None
    if user_agent:
        user_agent = user_agent[: current_app.config["MAX_USER_AGENT_LENGTH"]] or None
    submission = submissions.Submission(
        page=form.page.data,
        body=form.body.data,
        author_name=form.author_name.data,
        author_email=form.author_email.data,
        author_url=form.author_url.data or None,
        page_url=form.page_url.data or None,
        page_title=form.page_title.data or None,
        parent_id=form.parent_id.data,
        honeypot=form.subject.data or "",
        fill_ms=form.fill_ms.data,
    )
    address = request.remote_addr
    client = submissions.ClientInfo(anonymize_ip(address), user_agent, address)
    return submissions.submit_comment(site, submission, client, idempotency_key)


def _submit_json(
    site: PublicSite,
    data: MultiDict[str, str],
    type_errors: dict[str, list[str]],
    idempotency_key: str | None,
) -> Response:
    comment = _store(site, _comment_form(site, data, type_errors), idempotency_key)
    response = jsonify(submitted_comment(comment))
    response.status_code = 201
    response.headers["Location"] = url_for(".comment", site_slug=site.slug, comment_id=comment.id)
    return response


def _submit_form(site: PublicSite, data: MultiDict[str, str]) -> BaseResponse:
    """The no-JavaScript form: 303 back to the page, or an HTML page listing the errors."""
    back = _page_url_on_site(site, data)
    try:
        back = _return_to(site, data) or back
        _store(site, _comment_form(site, data, {}))
    except (ApiError, ServiceError) as failure:
        if _wants_problem_json():
            raise
        error = from_service_error(failure) if isinstance(failure, ServiceError) else failure
        body = render_template("public/form_error.html", error=error, back=back)
        page = current_app.response_class(body, status=error.status, mimetype="text/html")
        page.headers.update(error.headers)  # Retry-After
        return page
    if back:
        return current_app.redirect(back, code=303)
    body = render_template("public/form_thanks.html")
    return current_app.response_class(body, status=201, mimetype="text/html")


def _page_url_on_site(site: PublicSite, data: MultiDict[str, str]) -> str | None:
    return _on_site(site, data.get("page_url", ""))


@bp.get("/comments")
def thread() -> Response:
    key = required_arg("page", limit="MAX_PAGE_KEY_LENGTH")
    limit, after_id = page_args()
    wanted = threads.ThreadRequest(g.site.id, key, after_id, limit)
    tag = threads.thread_tag(wanted)
    if request.if_none_match.contains_weak(tag):
        response = current_app.response_class(status=304)
    else:
        page = threads.thread_page(wanted, tag, lambda rows: public_thread_json(wanted.key, rows))
        response = current_app.response_class(page.body, mimetype=JSON)
        tag = page.tag
    response.set_etag(tag)
    response.cache_control.public = True
    response.cache_control.no_cache = True
    return response


@bp.get("/comments/<id:comment_id>")
def comment(comment_id: int) -> Response:
    row = threads.find_published_comment(g.site.id, comment_id)
    if row is None:
        raise ApiError(404, f"There is no published comment {comment_id}.", title="Not Found")
    return jsonify({**public_comment_json(row), "page": row.key})


@bp.get("/counts")
def counts() -> Response:
    site: PublicSite = g.site
    keys = [key.strip() for key in request.args.getlist("page") if key.strip()]
    if not keys:
        raise ApiError(
            400, "Name at least one page.", errors={"page": ["This parameter is required."]}
        )
    maximum = current_app.config["MAX_COUNT_PAGES"]
    if len(set(keys)) > maximum:
        raise ApiError(
            400,
            f"Ask for at most {maximum} pages at once.",
            errors={"page": [f"At most {maximum} pages."]},
        )
    response = jsonify({"counts": threads.approved_counts(site.id, keys)})
    response.cache_control.no_cache = True
    return response

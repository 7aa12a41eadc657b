"""The public API a site's pages call (DESIGN §4): submit, thread, counts. CORS per site."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace

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
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from commentsvc.api.serializers import public_comment_json, public_thread_json, submitted_comment
from commentsvc.args import choice_arg, page_args, required_arg, text_arg
from commentsvc.errors import (
    PROBLEM_JSON,
    ApiError,
    from_service_error,
    handle_api_error,
    handle_http_exception,
    handle_service_error,
)
from commentsvc.forms import (
    CommentBodyForm,
    CommentForm,
    OnOrigins,
    json_to_formdata,
    validated,
)
from commentsvc.notifications import personal_data
from commentsvc.paths import PUBLIC_API_PREFIX, in_public_api
from commentsvc.payloads import read_json_object, read_urlencoded, refuse_nul
from commentsvc.responses import NO_CACHE, REVALIDATE, vary_on
from commentsvc.security import anonymize_ip, normalize_origin, origin_of_url, web_url
from commentsvc.services import feeds, idempotency, preview, sites, submissions, threads
from commentsvc.services.errors import ServiceError
from commentsvc.services.sites import PublicSite

bp = Blueprint("public", __name__, url_prefix=PUBLIC_API_PREFIX + "<site_slug>")

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
PREFLIGHT_MAX_AGE = "86400"
#: The stylesheet the no-JavaScript form's pages carry inline (public/base.html).
PAGE_STYLE = "public/page.css"
_PAGE_HEADERS = "commentsvc.public_page_headers"
_PAGE_STYLE_TEXT = "commentsvc.public_page_style"


@bp.url_value_preprocessor
def load_site(endpoint: str | None, values: dict[str, object] | None) -> None:
    refuse_nul()  # the body is the form's to check, field by field
    slug = str((values or {}).pop("site_slug", ""))
    site = sites.get_site(slug)
    if site is None:
        detail = f"There is no site {slug!r}."
        origin = normalize_origin(_request_origin() or "")
        if origin is not None:
            # Said to the page's console by the widget: what its data-site should be.
            detail += (
                f" The page at {origin} names it in data-site; `commentsvc sites list` shows"
                " the sites there are."
            )
        raise ApiError(404, detail, title="Unknown site")
    g.site = site


def _request_origin() -> str | None:
    return request.headers.get("Origin")


def _origin_allowed(site: PublicSite, origin: str | None) -> bool:
    return origin is not None and origin_of_url(origin) in site.origins


#: What a browser sends as ``Origin`` when it hides the page's origin (a form posted from
#: a page with ``Referrer-Policy: no-referrer``, a sandboxed frame, a local file).
NULL_ORIGIN = "null"


def _is_form_post() -> bool:
    return request.method == "POST" and request.mimetype == FORM


def _own_origins() -> set[str]:
    """The service's own origins, where its discuss pages are served (DESIGN §10): the
    request's, and ``PUBLIC_URL``'s when set."""
    own = {origin_of_url(request.host_url), origin_of_url(current_app.config["PUBLIC_URL"] or "")}
    return {origin for origin in own if origin is not None}


def _from_own_page(origin: str) -> bool:
    """Whether a request's ``Origin`` is the service's own: a form on one of its pages."""
    return origin_of_url(origin) in _own_origins()


def refused_origin(site: PublicSite, origin: str) -> ApiError:
    """403 for a request from an ``Origin`` that is not one of the site's, saying how to
    add it; never kept by a cache (the same URL answers the site's own origins)."""
    detail = f"The origin {origin} is not one of the origins of site {site.slug!r}."
    addable = normalize_origin(origin)
    if addable is not None:
        detail += (
            f" Add it with: commentsvc sites set {site.slug} --add-origin {addable}"
            " (or on the moderation panel's Sites page)."
        )
    elif origin == NULL_ORIGIN:
        detail += (
            " Browsers send Origin: null from pages that hide their origin (Referrer-Policy:"
            " no-referrer); only the no-JavaScript form, with a return_to on one of the"
            " site's origins, is taken from them."
        )
    return ApiError(403, detail, title="Origin not allowed", headers={"Cache-Control": "no-store"})


@bp.before_request
def check_origin() -> Response | None:
    """Answer a preflight; refuse a request whose ``Origin`` is not one of the site's.

    A preflight from any origin is answered 204 (it grants nothing: the request itself is
    checked here), so that a refused origin's POST gets this readable 403, not a bare CORS
    failure. Requests without ``Origin`` (curl, servers) are not browsers': no check. A
    form post with ``Origin: null`` is left to :func:`submit`, which needs its return_to.
    A form post from the service's own origin (its discuss page, DESIGN §10) is taken as
    one from the site's.
    """
    site: PublicSite = g.site
    origin = _request_origin()
    allowed = g.origin_allowed = _origin_allowed(site, origin)  # for add_cors_headers
    if request.method == "OPTIONS":
        if origin is None:
            raise ApiError(403, "A preflight request needs an Origin header.", title="Forbidden")
        return _preflight(origin if allowed else "*")
    if origin is None or allowed:
        return None
    if _is_form_post() and (origin == NULL_ORIGIN or _from_own_page(origin)):
        return None
    raise refused_origin(site, origin)


def _preflight(allow_origin: str) -> Response:
    response = current_app.response_class(status=204)
    response.headers["Access-Control-Allow-Origin"] = allow_origin
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = (
        "Content-Type, If-None-Match, Idempotency-Key, Authorization"
    )
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response


#: The response headers the widget reads (none of them is CORS-safelisted).
EXPOSED_HEADERS = "ETag, Location, Retry-After"


@bp.after_app_request
def add_cors_headers(response: Response) -> Response:
    """CORS on every public API answer, errors of paths no route matches included.

    The site's own origins get their exact origin back; an error answer to any other
    ``Origin`` gets ``*`` (no credentials: it holds no data, only why the request failed),
    so that the widget can read and log it. An answer that varies by ``Origin`` says so.
    """
    if not in_public_api(request.path):
        return response
    vary_on(response, "Origin")
    origin = _request_origin()
    if origin is None or "Access-Control-Allow-Origin" in response.headers:  # a preflight
        return response
    allowed = g.get("origin_allowed")
    if allowed is None:  # check_origin did not run: no site, or refused before it
        site = g.get("site")
        allowed = site is not None and _origin_allowed(site, origin)
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
    elif response.status_code >= 400:
        response.headers["Access-Control-Allow-Origin"] = "*"
    else:
        return response
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return response


def page_headers(style: str, form_action: str = "'none'") -> dict[str, str]:
    """The headers of the no-JavaScript form's HTML pages: no script, no framing, nothing
    loaded; their one inline stylesheet, ``style``, is allowed by its hash. Forms may post
    to ``form_action`` (a CSP source list; browsers check the redirects after it too)."""
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")
    policy = [
        "default-src 'none'",
        f"style-src 'sha256-{digest}'",
        "base-uri 'none'",
        f"form-action {form_action}",
        "frame-ancestors 'none'",
    ]
    return {
        "Content-Security-Policy": "; ".join(policy),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }


@bp.record_once
def _make_page_headers(state: BlueprintSetupState) -> None:
    style = state.app.jinja_env.get_template(PAGE_STYLE).render()
    state.app.extensions[_PAGE_STYLE_TEXT] = style
    state.app.extensions[_PAGE_HEADERS] = page_headers(style)


@bp.after_app_request
def add_security_headers(response: Response) -> Response:
    """Every public API answer: no content sniffing; its HTML pages also :func:`page_headers`
    (unless the page set its own, as the error page with a form does).

    On the app, not the blueprint, so that errors of paths no route matches get it too. It
    only sets headers: it runs on every thread and counts read, the hot path.
    """
    if in_public_api(request.path):
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.mimetype == "text/html":
            for name, value in current_app.extensions[_PAGE_HEADERS].items():
                response.headers.setdefault(name, value)
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


def _discuss_page(site: PublicSite, value: str) -> str | None:
    """``value`` written out again from its parts, if it is the site's discuss page (DESIGN
    §10) on the service's own origin, with any query and fragment."""
    parsed = web_url(value.strip())
    if parsed is None or parsed.userinfo is not None or parsed.origin not in _own_origins():
        return None
    path = url_for("pages.discuss", site_slug=site.slug)
    paths = {path}
    public = web_url(current_app.config["PUBLIC_URL"])
    if public is not None:  # PUBLIC_URL names the service's root, prefix and all
        paths.add(public.path.rstrip("/") + path.removeprefix(request.script_root))
    return str(parsed) if parsed.path in paths else None


def _return_to(site: PublicSite, data: MultiDict[str, str]) -> str | None:
    """The form's ``return_to``, if it is on one of the site's origins or is the site's
    discuss page (400 otherwise)."""
    value = data.get("return_to", "").strip()
    if not value:
        return None
    # No control character reaches the Location header: a line break cannot be sent
    # there at all (500, after the comment was stored), the others would be altered.
    on_site = _on_site(site, value) or _discuss_page(site, value)
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
        notify_replies=form.notify_replies.data,
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
        return_to = _return_to(site, data)
        if return_to is None and _request_origin() == NULL_ORIGIN:
            # Only a return_to on the site's origins ties a post from a page that hides
            # its origin to the site (DESIGN §4).
            raise refused_origin(site, NULL_ORIGIN)
        back = return_to or back
        _store(site, _comment_form(site, data, {}))
    except (ApiError, ServiceError) as failure:
        if _wants_problem_json():
            raise
        error = from_service_error(failure) if isinstance(failure, ServiceError) else failure
        return _form_error_page(error, FormAgain(site, data, back) if back else None)
    if back:
        return current_app.redirect(back, code=303)
    body = render_template("public/form_thanks.html")
    return current_app.response_class(body, status=201, mimetype="text/html")


#: The fields the reader fills in (README, "Without JavaScript"), in the form's order; the
#: page's own fields (the form's hidden ones) come before them.
READER_FIELDS = ("body", "author_name", "author_email", "author_url")
PAGE_FIELDS = ("page", "page_url", "page_title", "parent_id")
#: Other fields a refusal may name, as the error page calls them.
_OTHER_LABELS = {"return_to": "Return address"}
#: Refusals the reader can put right by posting again: corrected, or a little later.
_POST_AGAIN = frozenset({422, 429, 503})


@dataclass(frozen=True)
class FormAgain:
    """What the error page needs to show the form again: the site, what was posted, and
    the checked URL on the site's origins to come back to (the new post's return_to)."""

    site: PublicSite
    data: MultiDict[str, str]
    back: str


def _form_error_page(error: ApiError, again: FormAgain | None = None) -> Response:
    """The no-JavaScript form's error page: what went wrong, named as the reader's form
    names it; when posting again can succeed, the form again with what was typed (every
    value escaped by the template: it is the reader's, or anyone's)."""
    labels = {field.name: field.label.text for field in CommentForm()}
    labels.update(_OTHER_LABELS)
    order = {name: index for index, name in enumerate((*PAGE_FIELDS, *READER_FIELDS))}
    fields = sorted(error.errors, key=lambda name: (order.get(name, len(order)), name))
    show_form = (
        again is not None
        and error.status in _POST_AGAIN
        and set(error.errors) <= set(READER_FIELDS)
    )
    back = web_url(again.back) if again is not None else None
    body = render_template(
        "public/form_error.html",
        error=error,
        fields=fields,
        labels=labels,
        reader_fields=READER_FIELDS,
        page_fields=PAGE_FIELDS,
        again=again if show_form else None,
        # The article, not where a success lands (return_to#comment-pending says "thank you").
        article=str(replace(back, fragment=None)) if back is not None else None,
    )
    page = current_app.response_class(body, status=error.status, mimetype="text/html")
    page.headers.update(error.headers)  # Retry-After
    if show_form and back is not None:
        # The form posts here, and its success redirects to the article's origin.
        target = web_url(back.ascii())  # an internationalized host as xn--, for a header
        sources = "'self'" + (f" {target.origin}" if target is not None else "")
        style = current_app.extensions[_PAGE_STYLE_TEXT]
        page.headers.update(page_headers(style, form_action=sources))
    return page


@bp.errorhandler(ApiError)
def _refused(error: ApiError) -> Response:
    """A form post refused before its form was read (unknown site, another origin, bad
    encoding) answers with the form's HTML page too, unless the client asks for JSON."""
    if _is_form_post() and not _wants_problem_json():
        return _form_error_page(error)
    return handle_api_error(error)


@bp.errorhandler(ServiceError)
def _refused_by_service(error: ServiceError) -> Response:
    if _is_form_post() and not _wants_problem_json():
        return _form_error_page(from_service_error(error))
    return handle_service_error(error)


#: What the form's page says for HTTP errors whose own description is for developers.
_FORM_HTTP_DETAILS = {413: "What you sent is too large to be taken. Please shorten your comment."}


@bp.errorhandler(HTTPException)
def _refused_by_http(error: HTTPException) -> Response | HTTPException:
    status = error.code or 500
    if _is_form_post() and not _wants_problem_json() and 400 <= status < 500:
        detail = _FORM_HTTP_DETAILS.get(status, error.description or "")
        return _form_error_page(ApiError(status, detail))
    return handle_http_exception(error)


def _page_url_on_site(site: PublicSite, data: MultiDict[str, str]) -> str | None:
    return _on_site(site, data.get("page_url", ""))


@bp.get("/comments")
def thread() -> Response:
    key = required_arg("page", limit="MAX_PAGE_KEY_LENGTH")
    limit, after_id = page_args()
    sort = choice_arg("sort", threads.SORTS) or "oldest"
    markup = g.site.markup.value
    wanted = threads.ThreadRequest(g.site.id, key, after_id, limit, sort, markup)
    tag = threads.thread_tag(wanted)
    if request.if_none_match.contains_weak(tag):
        response = current_app.response_class(status=304, mimetype=JSON)
    else:
        page = threads.thread_page(
            wanted, tag, lambda rows: public_thread_json(wanted.key, rows, markup)
        )
        response = current_app.response_class(page.body, mimetype=JSON)
        tag = page.tag
    response.set_etag(tag)
    response.headers["Cache-Control"] = REVALIDATE
    return response


@bp.get("/comments/<id:comment_id>")
def comment(comment_id: int) -> Response:
    row = threads.find_published_comment(g.site.id, comment_id)
    if row is None:
        raise ApiError(404, f"There is no published comment {comment_id}.", title="Not Found")
    return jsonify({**public_comment_json(row), "page": row.key})


def _edit_token() -> str:
    """The request's edit token (``Authorization: Bearer <edit_token>``); 401 without one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "Send the edit token the comment's 201 answer carried, as "
            "'Authorization: Bearer <edit_token>'.",
            title="Unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="commentsvc-edit"'},
        )
    return token.strip()


@bp.patch("/comments/<id:comment_id>")
def edit_comment(comment_id: int) -> Response:
    """The author changes the text of their comment (DESIGN §10): the checks of a new
    submission, then pending again unless the site approves the author at once."""
    site: PublicSite = g.site
    token = _edit_token()
    if request.mimetype != JSON:
        raise ApiError(
            415, f"Send {JSON}.", title="Unsupported Media Type", headers={"Accept-Patch": JSON}
        )
    data, type_errors = json_to_formdata(read_json_object(request), CommentBodyForm)
    form = validated(CommentBodyForm, data, type_errors)
    address = request.remote_addr
    client = submissions.ClientInfo(anonymize_ip(address), None, address)
    edited = submissions.edit_own_comment(site, comment_id, token, form.body.data, client)
    return jsonify(submitted_comment(edited))


@bp.delete("/comments/<id:comment_id>")
def delete_comment(comment_id: int) -> Response:
    """The author deletes their comment (DESIGN §10); replies to it stay."""
    submissions.delete_own_comment(g.site, comment_id, _edit_token())
    return current_app.response_class(status=204)


@bp.post("/preview")
def preview_comment() -> Response:
    """A comment's text rendered as it would be stored on this site (DESIGN §10): the same
    renderer and sanitizer, nothing stored."""
    if request.mimetype != JSON:
        raise ApiError(
            415, f"Send {JSON}.", title="Unsupported Media Type", headers={"Accept-Post": JSON}
        )
    body = read_json_object(request).get("body")
    body_html = preview.preview(g.site, body, request.remote_addr)
    response = jsonify({"body_html": body_html})
    response.cache_control.no_store = True
    return response


@bp.post("/personal-data-requests")
def personal_data_request() -> Response:
    """A commenter asks for their data or its erasure (DESIGN §9): 202 whatever the address;
    the link goes to the address's mailbox only."""
    site: PublicSite = g.site
    if request.mimetype != JSON:
        raise ApiError(
            415, f"Send {JSON}.", title="Unsupported Media Type", headers={"Accept-Post": JSON}
        )
    payload = read_json_object(request)
    personal_data.ask(site.id, payload.get("email"), payload.get("kind"), request.remote_addr)
    response = jsonify(
        {
            "detail": "A link to carry out the request is being mailed to that address "
            "(a few a day at most)."
        }
    )
    response.status_code = 202
    response.cache_control.no_store = True
    return response


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
    found = threads.counts_answer(site.id, keys)
    # An index page asks for the same pages again and again: revalidated, not sent again.
    if request.if_none_match.contains_weak(found.tag):
        response = current_app.response_class(status=304, mimetype=JSON)
    else:
        response = current_app.response_class(found.body, mimetype=JSON)
    response.set_etag(found.tag)
    response.headers["Cache-Control"] = NO_CACHE
    return response


@bp.get("/feed.atom")
def feed() -> Response:
    """The site's Atom feed, or one page's with ``?page=KEY`` (DESIGN §8)."""
    site: PublicSite = g.site
    if not site.feeds:
        raise ApiError(404, f"Site {site.slug!r} has its Atom feeds turned off.", title="Feeds off")
    key = text_arg("page", limit="MAX_PAGE_KEY_LENGTH")
    self_url = url_for(".feed", site_slug=site.slug, page=key, _external=True)
    found = feeds.atom_feed(feeds.FeedRequest(site, key, self_url))
    if request.if_none_match.contains_weak(found.tag):
        response = current_app.response_class(status=304)
    else:
        response = current_app.response_class(found.body, content_type=feeds.ATOM)
    response.set_etag(found.tag)
    response.cache_control.public = True
    response.cache_control.no_cache = True
    return response

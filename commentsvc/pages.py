"""A page's thread for readers without JavaScript and for search engines (DESIGN §10).

``GET /sites/{site}/thread.html?page=KEY`` is the approved thread as an HTML fragment, for a
site to include server-side (a static site generator at build time, nginx SSI, a WordPress
theme): the widget's own structure and class names, each comment an
``<article id="comment-{id}">`` with schema.org ``Comment`` microdata, no emails. It holds
the first ``MAX_PAGE_SIZE`` comments oldest first, the JSON thread's slice of that size:
rendered once per page version, its strong ETag answered 304. Later comments are on the
discuss page, which the fragment links to.

``GET /sites/{site}/discuss?page=KEY`` is a whole page: the fragment and the comment form
(DESIGN §2), which posts form-encoded to the public API with this page as ``return_to`` and
so comes back to it at ``#comment-pending``, the note that the comment awaits moderation.
``&cursor=`` shows the following comments, ``&reply=ID`` the form as a reply to one.

Their links point at the service's own address: ``PUBLIC_URL`` when set, else the request's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cachetools import LRUCache
from flask import Blueprint, Response, current_app, g, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from commentsvc.api.public import PAGE_STYLE, page_headers
from commentsvc.api.serializers import isotime
from commentsvc.args import cursor_arg, id_arg, required_arg
from commentsvc.caching import worker_cache
from commentsvc.errors import ApiError
from commentsvc.forms import CommentForm
from commentsvc.pagination import encode_cursor
from commentsvc.payloads import refuse_nul
from commentsvc.responses import REVALIDATE, vary_on
from commentsvc.security import WebUrl, origin_of_url, web_url
from commentsvc.services import sites, thread_fragments, threads
from commentsvc.services.sites import PublicSite
from commentsvc.services.thread_fragments import FragmentRequest, PageFacts, ThreadSlice
from commentsvc.widget import FIELD_LIMITS

bp = Blueprint("pages", __name__, url_prefix="/sites/<site_slug>")

HTML = "text/html"
#: The templates whose text is the fragment's markup: their hash is part of its ETag.
FRAGMENT_TEMPLATES = ("pages/thread.html", "pages/_comment.html")
DISCUSS_STYLE = "pages/discuss.css"
#: What a whole page answers for a server-side include, crawlers and other browsers' scripts.
FRAGMENT_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Indexed where a site includes it (and on the discuss page), not as a page of its own.
    "X-Robots-Tag": "noindex",
}
_SETUP = "commentsvc.reader_pages"
_BASES = "discuss_bases"


@dataclass(frozen=True)
class Setup:
    """What the pages need of the app, made once: the fragment templates' version and the
    headers of the discuss page and of the error pages."""

    template_version: str
    discuss_headers: Mapping[str, str]
    error_headers: Mapping[str, str]


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = state.app
    environment = app.jinja_env
    assert environment.loader is not None
    sources = [environment.loader.get_source(environment, name)[0] for name in FRAGMENT_TEMPLATES]
    version = hashlib.sha1("\0".join(sources).encode(), usedforsecurity=False).hexdigest()[:12]
    style = environment.get_template(DISCUSS_STYLE).render()
    # The form posts here and comes back here: to this host, or to PUBLIC_URL's.
    public = app.config["PUBLIC_URL"]
    posts_to = "'self'" + (f" {origin_of_url(public)}" if public and origin_of_url(public) else "")
    discuss = {
        **page_headers(style, form_action=posts_to),
        # The form's post then carries this origin (the service's own), not "null".
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
    }
    error_style = environment.get_template(PAGE_STYLE).render()
    errors = {**page_headers(error_style), "X-Content-Type-Options": "nosniff"}
    app.extensions[_SETUP] = Setup(version, discuss, errors)


def _settings() -> Setup:
    setup: Setup = current_app.extensions[_SETUP]
    return setup


@bp.url_value_preprocessor
def _load_site(endpoint: str | None, values: dict[str, Any] | None) -> None:
    refuse_nul()
    slug = str((values or {}).pop("site_slug", ""))
    site = sites.get_site(slug)
    if site is None:
        raise ApiError(404, "There is no such site.", title="Unknown site")
    g.site = site


@bp.url_defaults
def _site_slug(endpoint: str, values: dict[str, Any]) -> None:
    """Links from one of these pages to another stay on its site."""
    site = g.get("site")
    if site is not None:
        values.setdefault("site_slug", site.slug)


def service_url(endpoint: str, **values: Any) -> str:
    """The absolute URL of one of the service's own pages: under ``PUBLIC_URL`` when set
    (the address readers and including servers know it by), else the request's host."""
    public = current_app.config["PUBLIC_URL"]
    if not public:
        return url_for(endpoint, _external=True, **values)
    path = url_for(endpoint, **values)
    return str(public) + path.removeprefix(request.script_root)


def page_address(site: PublicSite, page: PageFacts | None, key: str) -> WebUrl | None:
    """Where the page is read: its URL when known, else its key when that is a URL; only on
    one of the site's origins now (a canonical link never points off the site)."""
    for candidate in (page.url if page is not None else None, key):
        address = web_url(candidate)
        if address is not None and address.origin in site.origins:
            return address
    return None


@dataclass(frozen=True)
class Links:
    """The links a rendered slice holds: the article (for each comment's permalink), the
    discuss page, its next slice, its reply form; none to post when the site takes none."""

    article: str | None
    discuss: str
    more: str | None
    reply_base: str
    open: bool


def _discuss_base(site: PublicSite) -> str:
    """The site's discuss page without its page key, as :func:`service_url` makes it: made
    once per site and host by each worker, since building a URL cost a tenth of a
    fragment's 304."""
    bases: LRUCache[tuple[str, str, str], str] = worker_cache(_BASES, _make_bases)
    key = (site.slug, request.host_url, current_app.config["PUBLIC_URL"] or "")
    base = bases.get(key)
    if base is None:
        base = bases[key] = service_url("pages.discuss", page="")
    return base


def _make_bases(config: Mapping[str, Any]) -> LRUCache[tuple[str, str, str], str]:
    return LRUCache(maxsize=1024)  # hosts are the client's to name, unless TRUSTED_HOSTS


def _fragment_request(site: PublicSite, key: str, after_id: int | None) -> FragmentRequest:
    """The slice these pages show, and everything else its markup depends on."""
    base = _discuss_base(site)
    origins = " ".join(site.origins)  # where permalinks may point
    variant = f"{_settings().template_version}|{base}|{int(site.comments_open)}|{origins}"
    limit = current_app.config["MAX_PAGE_SIZE"]
    return FragmentRequest(site.id, key, after_id, limit, variant, site.markup)


def _render(site: PublicSite, wanted: FragmentRequest, read: ThreadSlice) -> bytes:
    next_cursor = encode_cursor(read.next_after_id) if read.next_after_id is not None else None
    article = page_address(site, read.page, wanted.key)
    slice_cursor = encode_cursor(wanted.after_id) if wanted.after_id else None
    links = Links(
        article=str(article) if article is not None else None,
        discuss=service_url("pages.discuss", page=wanted.key),
        more=service_url("pages.discuss", page=wanted.key, cursor=next_cursor)
        if next_cursor
        else None,
        # The reply form shows the slice the comment is on, so "their comment" is there.
        reply_base=service_url("pages.discuss", page=wanted.key, cursor=slice_cursor) + "&reply=",
        open=site.comments_open,
    )
    body = render_template(
        "pages/thread.html",
        site=site,
        key=wanted.key,
        limit=wanted.limit,
        read=read,
        next_cursor=next_cursor,
        links=links,
    )
    return body.encode("utf-8")


def _fragment(site: PublicSite, wanted: FragmentRequest, tag: str) -> threads.ThreadPage:
    return thread_fragments.thread_fragment(wanted, tag, lambda read: _render(site, wanted, read))


@bp.get("/thread.html")
def thread_html() -> Response:
    """The approved thread as an HTML fragment, to include server-side."""
    site: PublicSite = g.site
    key = required_arg("page", limit="MAX_PAGE_KEY_LENGTH")
    wanted = _fragment_request(site, key, cursor_arg())
    tag = thread_fragments.fragment_tag(wanted)
    if request.if_none_match.contains_weak(tag):
        response = current_app.response_class(status=304)
    else:
        found = _fragment(site, wanted, tag)
        response = current_app.response_class(found.body, mimetype=HTML)
        tag = found.tag
    response.set_etag(tag)
    response.headers["Cache-Control"] = REVALIDATE
    response.headers.update(FRAGMENT_HEADERS)
    _allow_site_origins(site, response)
    return response


def _allow_site_origins(site: PublicSite, response: Response) -> None:
    """CORS as on the public API: scripts of the site's own origins may read the fragment
    (the exact origin back); no other origin gets the header. Public data, so no refusal."""
    vary_on(response, "Origin")
    origin = request.headers.get("Origin")
    if origin is not None and origin_of_url(origin) in site.origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "ETag"


@bp.get("/discuss")
def discuss() -> Response:
    """The thread and the comment form, as a whole page for readers without JavaScript."""
    site: PublicSite = g.site
    key = required_arg("page", limit="MAX_PAGE_KEY_LENGTH")
    after_id = cursor_arg()
    reply = id_arg("reply")
    wanted = _fragment_request(site, key, after_id)
    fragment = _fragment(site, wanted, thread_fragments.fragment_tag(wanted))
    page = thread_fragments.page_facts(site.id, key)
    parent = threads.find_published_comment(site.id, reply) if reply is not None else None
    if parent is not None and parent.key != key:
        parent = None
    article = page_address(site, page, key)
    cursor = encode_cursor(after_id) if after_id else None
    here = service_url("pages.discuss", page=key, cursor=cursor)
    # The article holds the first comments (where the site includes them), so it is their
    # canonical page; the following ones are only here.
    canonical = str(article) if article is not None and cursor is None else here
    body = render_template(
        "pages/discuss.html",
        site=site,
        key=key,
        title=page.title if page is not None and page.title else key,
        article=str(article) if article is not None else None,
        canonical=canonical,
        noindex=reply is not None,
        first=service_url("pages.discuss", page=key) if cursor else None,
        fragment=Markup(fragment.body.decode("utf-8")),
        parent=parent,
        cancel=here + "#respond",
        action=url_for("public.submit", site_slug=site.slug),
        return_to=service_url("pages.discuss", page=key) + "#comment-pending",
        labels={field.name: field.label.text for field in CommentForm()},
        limits={name: current_app.config[setting] for name, setting in FIELD_LIMITS.items()},
    )
    response = current_app.response_class(body, mimetype=HTML)
    response.cache_control.no_cache = True
    response.headers.update(_settings().discuss_headers)
    return response


@bp.errorhandler(ApiError)
def _refused(error: ApiError) -> Response:
    return _error_page(error.status, error.detail, error.headers)


@bp.errorhandler(HTTPException)
def _refused_by_http(error: HTTPException) -> Response:
    return _error_page(error.code or 500, error.description or "")


def _error_page(status: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    """The fragment's error is an HTML comment (an include shows nothing, its source says
    why); the discuss page's is a page of the no-JavaScript form's look."""
    if request.endpoint == "pages.thread_html":
        body = render_template("pages/fragment_error.html", status=status, detail=detail)
        extra: Mapping[str, str] = FRAGMENT_HEADERS
    else:
        body = render_template("pages/error.html", status=status, detail=detail)
        extra = _settings().error_headers
    response = current_app.response_class(body, status=status, mimetype=HTML)
    response.headers.update(headers or {})
    response.headers.update(extra)
    response.cache_control.no_store = True
    return response


@bp.app_template_filter("http_url")
def http_url(value: str | None) -> str | None:
    """An http(s) URL written out again from its parts (what is linked is what was
    checked), or None for anything else."""
    parsed = web_url(value)
    return str(parsed) if parsed is not None else None


@bp.app_template_filter("iso_time")
def iso_time(value: datetime) -> str:
    """A time as ISO 8601 in UTC, as the JSON thread writes it."""
    return isotime(value) or ""


@bp.app_template_filter("utc_time_text")
def utc_time_text(value: datetime) -> str:
    """A time as readers read it, in any language: ``30 Nov 2026, 14:05 UTC``."""
    moment = value.astimezone(UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"

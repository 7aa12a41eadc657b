"""The public API: submit, thread (order, pagination, ETag), counts, CORS, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import MAX_ID, Comment, CommentStatus, Page, Site
from commentsvc.pagination import encode_cursor
from commentsvc.services import sites, submissions
from commentsvc.services.errors import ServiceError, Throttled, Unavailable
from tests.conftest import ORIGIN, OTHER_ORIGIN, valid_submission
from tests.support.html import Element, html

SUBMIT = "/api/v1/sites/news/comments"
PAGE = "/2025/10/us-china-talks"
THREAD = f"/api/v1/sites/news/comments?page={PAGE}"


def test_submit_stores_pending_and_answers_with_the_inserted_row(
    app: Flask, client: FlaskClient
) -> None:
    response = client.post(
        SUBMIT,
        json=valid_submission(body="  Hello <b>world</b>  "),
        headers={"Origin": ORIGIN, "User-Agent": "TestBrowser/1.0"},
        environ_base={"REMOTE_ADDR": "203.0.113.77"},
    )
    assert response.status_code == 201
    data = response.get_json()
    assert data["status"] == "pending"
    assert data["body"] == "Hello <b>world</b>"
    assert data["body_html"] == "<p>Hello &lt;b&gt;world&lt;/b&gt;</p>"
    assert "author_email" not in data
    assert response.headers["Location"] == f"/api/v1/sites/news/comments/{data['id']}"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    with app.app_context():
        comment = db.session.get(Comment, data["id"])
        assert comment is not None
        assert comment.status == CommentStatus.PENDING
        assert comment.ip_prefix == "203.0.113.0"
        assert comment.user_agent == "TestBrowser/1.0"
        assert (comment.page_url, comment.page_title) == (f"{ORIGIN}{PAGE}", "US-China talks")
        # A page is named by its approved comments only.
        assert (comment.page.url, comment.page.title) == (None, None)


def test_pending_comments_are_not_public(client: FlaskClient) -> None:
    comment_id = client.post(SUBMIT, json=valid_submission()).get_json()["id"]
    thread = client.get(THREAD).get_json()
    assert thread["comments"] == []
    assert thread["total"] == 0
    assert client.get(f"{SUBMIT}/{comment_id}").status_code == 404


def test_thread_shows_only_approved_oldest_first_without_emails(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    first = make_comment(body="first")
    make_comment(body="hidden", status=CommentStatus.PENDING)
    make_comment(body="spam", status=CommentStatus.SPAM)
    second = make_comment(body="second")
    make_comment(body="elsewhere", page="/other")
    response = client.get(THREAD)
    assert response.status_code == 200
    data = response.get_json()
    assert [c["id"] for c in data["comments"]] == [first, second]
    assert data["total"] == 2
    assert data["page"] == PAGE
    assert data["next_cursor"] is None
    assert set(data["comments"][0]) == {
        "id",
        "parent_id",
        "author_name",
        "author_url",
        "body",
        "body_html",
        "created_at",
    }
    assert "reader@example.com" not in response.get_data(as_text=True)


def test_thread_cursor_pagination_visits_every_comment_once(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    ids = [make_comment(body=f"comment {n}") for n in range(7)]
    seen: list[int] = []
    url = f"{THREAD}&limit=3"
    pages = 0
    while url:
        data = client.get(url).get_json()
        seen += [c["id"] for c in data["comments"]]
        pages += 1
        url = f"{THREAD}&limit=3&cursor={data['next_cursor']}" if data["next_cursor"] else ""
    assert seen == ids
    assert pages == 3


def test_thread_etag_gives_304_until_the_thread_changes(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int], auth: dict[str, str]
) -> None:
    make_comment()
    first = client.get(THREAD)
    etag = first.headers["ETag"]
    assert "no-cache" in first.headers["Cache-Control"]
    again = client.get(THREAD, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["ETag"] == etag
    assert again.get_data() == b""

    pending = make_comment(status=CommentStatus.PENDING)
    client.patch(
        f"/api/v1/moderation/comments/{pending}", json={"status": "approved"}, headers=auth
    )
    after = client.get(THREAD, headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert len(after.get_json()["comments"]) == 2


def test_thread_of_a_page_nobody_commented_on_is_empty(client: FlaskClient) -> None:
    response = client.get("/api/v1/sites/news/comments?page=/new")
    assert response.status_code == 200
    assert response.get_json() == {
        "page": "/new",
        "markup": "text",
        "total": 0,
        "comments": [],
        "next_cursor": None,
    }


def test_thread_requires_a_page_and_a_good_cursor_and_limit(client: FlaskClient) -> None:
    for url, field in [
        ("/api/v1/sites/news/comments", "page"),
        ("/api/v1/sites/news/comments?page=%20", "page"),
        (f"{THREAD}&cursor=garbage!", "cursor"),
        # Past the largest id (32-bit on PostgreSQL): no page of ours ever ends there.
        (f"{THREAD}&cursor={encode_cursor(MAX_ID + 1)}", "cursor"),
        (f"{THREAD}&cursor={encode_cursor(2**63 - 1)}", "cursor"),
        (f"{THREAD}&limit=0", "limit"),
        (f"{THREAD}&limit=10000", "limit"),
        (f"{THREAD}&limit=ten", "limit"),
    ]:
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.mimetype == "application/problem+json"
        assert field in response.get_json()["errors"], url


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/sites/news/comments?page=/a%00b",
        "/api/v1/sites/news/counts?page=/a&page=/a%00b",
        "/api/v1/sites/ne%00ws/comments?page=/a",
    ],
)
def test_a_nul_in_the_url_is_refused_with_400(client: FlaskClient, url: str) -> None:
    """Nothing stored holds a NUL, and PostgreSQL refuses one in a query outright."""
    response = client.get(url)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_one_public_comment(client: FlaskClient, make_comment: Callable[..., int]) -> None:
    comment_id = make_comment(body="see http://example.com")
    data = client.get(f"{SUBMIT}/{comment_id}").get_json()
    assert data["id"] == comment_id
    assert data["page"] == PAGE
    assert 'rel="nofollow ugc noopener"' in data["body_html"]
    assert client.get(f"/api/v1/sites/blog/comments/{comment_id}").status_code == 404


def test_counts_for_many_pages(client: FlaskClient, make_comment: Callable[..., int]) -> None:
    make_comment(page="/a")
    make_comment(page="/a")
    make_comment(page="/a", status=CommentStatus.PENDING)
    make_comment(page="/b", status=CommentStatus.REJECTED)
    make_comment(page="/c", site="blog")
    response = client.get("/api/v1/sites/news/counts?page=/a&page=/b&page=/c&page=/none")
    assert response.status_code == 200
    assert response.get_json() == {"counts": {"/a": 2, "/b": 0, "/c": 0, "/none": 0}}


def test_counts_limits(app: Flask, client: FlaskClient) -> None:
    assert client.get("/api/v1/sites/news/counts").status_code == 400
    too_many = "&".join(f"page=/p{n}" for n in range(app.config["MAX_COUNT_PAGES"] + 1))
    response = client.get(f"/api/v1/sites/news/counts?{too_many}")
    assert response.status_code == 400
    assert "page" in response.get_json()["errors"]


def test_cors_only_for_the_sites_own_origins(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment()
    own = client.get(THREAD, headers={"Origin": ORIGIN})
    assert own.status_code == 200
    assert own.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in own.headers["Vary"]
    assert "ETag" in own.headers["Access-Control-Expose-Headers"]
    # Without Origin (curl, a server, a same-origin GET): data, and no CORS.
    plain = client.get(THREAD)
    assert plain.status_code == 200
    assert plain.get_json()["total"] == 1
    assert "Access-Control-Allow-Origin" not in plain.headers
    assert "Origin" in plain.headers["Vary"]


REFUSED = "http://127.0.0.1:8303"
REFUSED_DETAIL = (
    f"The origin {REFUSED} is not one of the origins of site 'news'. Add it with: "
    f"commentsvc sites set news --add-origin {REFUSED} (or on the moderation panel's Sites page)."
)


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("get", THREAD, {}),
        ("get", "/api/v1/sites/news/counts?page=/a", {}),
        ("get", f"{SUBMIT}/1", {}),
        ("post", SUBMIT, {"json": valid_submission()}),
    ],
    ids=["thread", "counts", "comment", "submit"],
)
def test_a_refused_origin_is_told_why_and_how_to_add_it(
    client: FlaskClient,
    make_comment: Callable[..., int],
    comment_count: Callable[[], int],
    method: str,
    url: str,
    kwargs: dict[str, Any],
) -> None:
    """First-hour review, finding 3: the widget only saw a CORS error in the console."""
    make_comment(status=CommentStatus.APPROVED)
    before = comment_count()
    response = getattr(client, method)(url, headers={"Origin": REFUSED}, **kwargs)
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == REFUSED_DETAIL
    assert "comments" not in response.get_json() and "counts" not in response.get_json()
    # Readable by the widget (no credentials, no data), never cached for other origins.
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Origin" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store"
    assert comment_count() == before


def test_another_sites_origin_is_refused_with_this_sites_name(client: FlaskClient) -> None:
    response = client.get(THREAD, headers={"Origin": f"{OTHER_ORIGIN}:443"})
    assert response.status_code == 403
    detail = response.get_json()["detail"]
    assert detail.startswith(f"The origin {OTHER_ORIGIN}:443 is not one of the origins of site")
    assert f"--add-origin {OTHER_ORIGIN} " in detail  # as the site stores it


@pytest.mark.parametrize("origin", ["null", "file://", "not an origin"])
def test_an_origin_that_cannot_be_added_gets_no_command_to_add_it(
    client: FlaskClient, origin: str
) -> None:
    response = client.get(THREAD, headers={"Origin": origin})
    assert response.status_code == 403
    detail = response.get_json()["detail"]
    assert detail.startswith(f"The origin {origin} is not one of the origins of site 'news'.")
    assert "--add-origin" not in detail
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def close_comments(app: Flask) -> None:
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None
        site.settings = {"comments_open": False}
        db.session.commit()


def test_error_answers_are_readable_from_any_origin(app: Flask, client: FlaskClient) -> None:
    """The widget can log why a request failed, whatever the origin; errors hold no data."""
    close_comments(app)
    unknown_site = "/api/v1/sites/nope/comments?page=/a"
    answers = {
        "unknown site": client.get(unknown_site, headers={"Origin": REFUSED}),
        "no such path": client.get("/api/v1/sites/news/nothing", headers={"Origin": REFUSED}),
        "closed site": client.post(SUBMIT, json=valid_submission(), headers={"Origin": ORIGIN}),
        "no page": client.get(SUBMIT, headers={"Origin": ORIGIN}),
    }
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "unknown site": 404,
        "no such path": 404,
        "closed site": 403,
        "no page": 400,
    }
    for name, answer in answers.items():
        assert answer.mimetype == "application/problem+json", name
        assert "Origin" in answer.headers["Vary"], name
    # A site's own origin keeps its exact origin on errors too; others get *.
    assert answers["unknown site"].headers["Access-Control-Allow-Origin"] == "*"
    assert answers["no such path"].headers["Access-Control-Allow-Origin"] == "*"
    assert answers["closed site"].headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answers["no page"].headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "There is no site 'nope'." in answers["unknown site"].get_json()["detail"]


def test_errors_without_an_origin_carry_no_cors(client: FlaskClient) -> None:
    response = client.get("/api/v1/sites/nope/comments?page=/a")
    assert response.status_code == 404
    assert "Access-Control-Allow-Origin" not in response.headers


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,idempotency-key",
}


def test_preflight(client: FlaskClient, comment_count: Callable[[], int]) -> None:
    response = client.options(SUBMIT, headers={**PREFLIGHT, "Origin": ORIGIN})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    assert "Idempotency-Key" in response.headers["Access-Control-Allow-Headers"]
    assert "Origin" in response.headers["Vary"]
    assert comment_count() == 0


def test_a_refused_origins_preflight_passes_so_that_its_post_gets_a_readable_403(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    """A preflight that fails hides everything from the page; this one grants nothing,
    because the POST itself is checked."""
    preflight = client.options(SUBMIT, headers={**PREFLIGHT, "Origin": REFUSED})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    assert "Origin" in preflight.headers["Vary"]

    post = client.post(
        SUBMIT, json=valid_submission(), headers={"Origin": REFUSED, "Idempotency-Key": "k1"}
    )
    assert post.status_code == 403
    assert post.get_json()["detail"] == REFUSED_DETAIL
    assert post.headers["Access-Control-Allow-Origin"] == "*"
    assert comment_count() == 0


def test_a_preflight_without_origin_or_for_an_unknown_site_is_refused(
    client: FlaskClient,
) -> None:
    assert client.options(SUBMIT, headers=PREFLIGHT).status_code == 403
    unknown = client.options(
        "/api/v1/sites/nope/comments", headers={**PREFLIGHT, "Origin": REFUSED}
    )
    assert unknown.status_code == 404
    assert unknown.mimetype == "application/problem+json"


def test_validation_errors_carry_cors_headers_for_the_widget(client: FlaskClient) -> None:
    response = client.post(
        SUBMIT, json=valid_submission(author_email="x"), headers={"Origin": ORIGIN}
    )
    assert response.status_code == 422
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_form_post_without_return_to_goes_back_to_the_page_url(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    response = client.post(SUBMIT, data=valid_submission())
    assert response.status_code == 303
    assert response.headers["Location"] == f"{ORIGIN}{PAGE}"
    assert comment_count() == 1


def test_form_post_with_nowhere_to_go_shows_a_thank_you_page(client: FlaskClient) -> None:
    response = client.post(SUBMIT, data=valid_submission(page_url=""))
    assert response.status_code == 201
    assert response.mimetype == "text/html"
    assert "awaiting moderation" in response.get_data(as_text=True)


def test_form_errors_escape_what_the_reader_sent(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    typed = "</textarea><script>alert('<x>')</script>"
    response = client.post(
        SUBMIT,
        data=valid_submission(
            author_url="javascript:alert('<x>')", body=typed, author_name='"><b>Ada'
        ),
    )
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "<x>" not in text and "<script>" not in text and '"><b>' not in text
    page = html(response)
    assert not page.find_all("script") and not page.find_all("b")
    # Shown again as the text it is, not as markup.
    assert textarea_value(page.find("textarea", name="body")) == typed
    assert page.find("input", name="author_name").attrs["value"] == '"><b>Ada'
    assert page.find("a").attrs["href"] == f"{ORIGIN}{PAGE}"
    assert comment_count() == 0


# --- the no-JavaScript form's pages (DESIGN §4, README "Without JavaScript") ------------------


def textarea_value(element: Element) -> str:
    """A textarea's value as a browser reads it (the newline after the tag is not part of
    it)."""
    raw = "".join(child for child in element.children if isinstance(child, str))
    return raw[1:] if raw.startswith("\n") else raw


def form_fields(page: Element) -> dict[str, str]:
    """What the page's form would post, as name -> value (a checkbox only when ticked)."""
    form = page.find("form")
    fields = {}
    for element in form.find_all("input"):
        if "name" not in element.attrs:
            continue
        if element.attrs.get("type") != "checkbox":
            fields[element.attrs["name"]] = element.attrs.get("value", "")
        elif "checked" in element.attrs:
            fields[element.attrs["name"]] = element.attrs.get("value", "on")
    fields.update({area.attrs["name"]: textarea_value(area) for area in form.find_all("textarea")})
    return fields


def error_summary(page: Element) -> list[str]:
    return [item.text for item in page.find("ul").find_all("li")]


PENDING = f"{ORIGIN}{PAGE}#comment-pending"


def test_success_goes_back_to_return_to_with_its_fragment(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    """The README's return_to ends in #comment-pending: the page's :target note thanks the
    reader. The 303 goes exactly there."""
    response = client.post(SUBMIT, data=valid_submission(return_to=PENDING))
    assert response.status_code == 303
    assert response.headers["Location"] == PENDING
    assert comment_count() == 1


def test_the_error_page_names_fields_by_the_forms_labels(client: FlaskClient) -> None:
    """First-hour review, finding 6: it said "body" and "author_url"."""
    response = client.post(
        SUBMIT, data=valid_submission(body=" ", author_url="ftp://x.example", return_to=PENDING)
    )
    assert response.status_code == 422
    page = html(response)
    assert page.find("p").text == "Some fields need correcting: Comment, Website."
    assert error_summary(page) == [
        "Comment: This field is required.",
        "Website: Must start with http:// or https://.",
    ]
    assert "body" not in page.find("main").text and "author_url" not in page.find("main").text
    assert page.find("label", for_="body").text == "Comment *"
    assert page.find("label", for_="author_url").text == "Website"
    # Each message is next to its field, and tied to it for screen readers.
    website = page.find("input", name="author_url")
    assert website.attrs["aria-invalid"] == "true"
    assert page.find(id=website.attrs["aria-describedby"]).text == (
        "Must start with http:// or https://."
    )
    assert "aria-invalid" not in page.find("input", name="author_name").attrs


def test_the_error_page_shows_the_form_again_with_what_was_typed(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    typed = valid_submission(
        body="  A long and careful comment,\nover two lines.",
        author_email="not an address",
        parent_id="",
        return_to=PENDING,
        subject="",
    )
    response = client.post(SUBMIT, data=typed)
    assert response.status_code == 422
    assert comment_count() == 0
    page = html(response)
    form = page.find("form")
    assert form.attrs["method"] == "post"
    assert form.attrs["action"] == SUBMIT
    assert form_fields(page) == {
        "page": PAGE,
        "page_url": f"{ORIGIN}{PAGE}",
        "page_title": "US-China talks",
        "return_to": PENDING,
        "body": "  A long and careful comment,\nover two lines.",
        "author_name": "Ada Lovelace",
        "author_email": "not an address",
        "author_url": "https://ada.example/",
        "subject": "",
    }
    hidden = {element.attrs["name"] for element in form.find_all("input", type="hidden")}
    assert hidden == {"page", "page_url", "page_title", "return_to"}
    honeypot = page.find("input", name="subject").attrs
    assert honeypot["tabindex"] == "-1"
    # The article, not the thank-you anchor, is the way back without posting.
    link = page.find("a")
    assert (link.attrs["href"], link.text) == (f"{ORIGIN}{PAGE}", "Back to the article")
    assert "Back button" in page.find("main").text

    # The form posts here (form-action 'self'); its 303 goes to the article's origin,
    # which browsers check against form-action too.
    policy = response.headers["Content-Security-Policy"]
    assert "form-action 'self' https://news.example;" in policy
    assert "default-src 'none'" in policy

    # Posted again, corrected, from the error page (which hides its origin: Origin null).
    corrected = {**form_fields(page), "author_email": "ada@example.com"}
    again = client.post(SUBMIT, data=corrected, headers={"Origin": "null"})
    assert again.status_code == 303
    assert again.headers["Location"] == PENDING
    assert comment_count() == 1


def test_the_form_again_keeps_a_reply_and_comes_back_to_the_page_url(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    parent = make_comment(status=CommentStatus.APPROVED)
    sent = valid_submission(parent_id=str(parent), author_name="")
    page = html(client.post(SUBMIT, data=sent))
    fields = form_fields(page)
    assert fields["parent_id"] == str(parent)
    # No return_to was sent: the form comes back to the page_url, as the first post would.
    assert fields["return_to"] == f"{ORIGIN}{PAGE}"


def test_a_bot_gets_an_empty_honeypot_on_the_error_page(client: FlaskClient) -> None:
    sent = valid_submission(body="", subject="http://spam.example", return_to=PENDING)
    page = html(client.post(SUBMIT, data=sent))
    assert form_fields(page)["subject"] == ""
    assert "spam.example" not in page.find("main").text


def test_an_error_in_the_pages_own_fields_shows_no_form_to_post_again(
    client: FlaskClient,
) -> None:
    """A hidden field's fault is the site owner's: posting again would fail the same way."""
    response = client.post(SUBMIT, data=valid_submission(page="", return_to=PENDING))
    assert response.status_code == 422
    page = html(response)
    assert not page.find_all("form")
    assert error_summary(page) == ["Page (page): This field is required."]
    assert "site's owner" in page.find("main").text
    assert page.find("a").attrs["href"] == f"{ORIGIN}{PAGE}"
    assert "form-action 'none'" in response.headers["Content-Security-Policy"]


def test_a_duplicate_shows_no_form_but_the_way_back(client: FlaskClient) -> None:
    sent = valid_submission(return_to=PENDING)
    assert client.post(SUBMIT, data=sent).status_code == 303
    response = client.post(SUBMIT, data=sent)
    assert response.status_code == 409
    page = html(response)
    assert not page.find_all("form")
    assert error_summary(page) == ["Comment: You have already posted this comment on this page."]
    assert page.find("a").attrs["href"] == f"{ORIGIN}{PAGE}"


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (Throttled("Too many comments: wait a minute.", retry_after=42), 429),
        (Unavailable("The database is busy."), 503),
    ],
)
def test_a_refusal_to_try_again_later_keeps_the_form(
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    refusal: ServiceError,
    status: int,
) -> None:
    def refuse(*args: object) -> None:
        raise refusal

    monkeypatch.setattr(submissions, "submit_comment", refuse)
    response = client.post(SUBMIT, data=valid_submission(body="Keep me.", return_to=PENDING))
    assert response.status_code == status
    page = html(response)
    assert page.find("p").text == refusal.message
    assert form_fields(page)["body"] == "Keep me."
    assert response.headers["Retry-After"]


def test_a_refused_return_to_shows_no_form(client: FlaskClient) -> None:
    response = client.post(SUBMIT, data=valid_submission(return_to="https://evil.example/"))
    assert response.status_code == 400
    page = html(response)
    assert not page.find_all("form")
    assert error_summary(page) == [
        "Return address (return_to): Must be a URL on one of the site's origins."
    ]


def test_a_form_post_with_origin_null_is_taken_with_a_return_to_on_the_site(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    """Chromium sends Origin: null for a form posted from a page with Referrer-Policy:
    no-referrer (first-hour review, finding 6: the reader got a raw JSON 403)."""
    response = client.post(
        SUBMIT, data=valid_submission(return_to=PENDING), headers={"Origin": "null"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == PENDING
    assert comment_count() == 1


@pytest.mark.parametrize(
    ("return_to", "status"), [(None, 403), ("https://evil.example/", 400)], ids=["none", "off-site"]
)
def test_a_form_post_with_origin_null_needs_a_return_to_on_the_site(
    client: FlaskClient, comment_count: Callable[[], int], return_to: str | None, status: int
) -> None:
    sent = valid_submission() if return_to is None else valid_submission(return_to=return_to)
    response = client.post(SUBMIT, data=sent, headers={"Origin": "null"})
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert "was not posted" in response.get_data(as_text=True)
    assert not html(response).find_all("form")
    assert comment_count() == 0


def test_a_refused_form_post_gets_an_html_page_unless_json_is_asked_for(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    sent = valid_submission(return_to=PENDING)
    page = client.post(SUBMIT, data=sent, headers={"Origin": REFUSED})
    assert page.status_code == 403
    assert page.mimetype == "text/html"
    assert html(page).find("p").text == REFUSED_DETAIL
    assert "form-action 'none'" in page.headers["Content-Security-Policy"]

    problem = client.post(
        SUBMIT, data=sent, headers={"Origin": REFUSED, "Accept": "application/problem+json"}
    )
    assert problem.status_code == 403
    assert problem.mimetype == "application/problem+json"
    assert problem.get_json()["detail"] == REFUSED_DETAIL

    unknown = client.post("/api/v1/sites/nope/comments", data=sent)
    assert unknown.status_code == 404
    assert unknown.mimetype == "text/html"
    assert html(unknown).find("p").text == "There is no site 'nope'."
    assert comment_count() == 0


def test_closed_site_refuses_submissions(
    app: Flask, client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    close_comments(app)
    response = client.post(SUBMIT, json=valid_submission())
    assert response.status_code == 403
    assert comment_count() == 0


def moderation_page(client: FlaskClient, auth: dict[str, str], comment_id: int) -> dict[str, Any]:
    """The page of a comment as the moderation API shows it."""
    response = client.get(f"/api/v1/moderation/comments/{comment_id}", headers=auth)
    assert response.status_code == 200
    page: dict[str, Any] = response.get_json()["page"]
    return page


def stored_page(app: Flask) -> tuple[str | None, str | None]:
    """The URL and title the page has (its approved comments')."""
    with app.app_context():
        url, title = db.session.execute(
            sa.select(Page.url, Page.title).where(Page.key == PAGE)
        ).one()
        return url, title


def test_an_off_site_page_url_is_refused_by_the_api_and_the_form(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    """Security review L1: the first submitter could name the page's link for good."""
    phishing = valid_submission(
        page_url="https://evil.example/moderation/login", page_title="Session expired"
    )

    api = client.post(SUBMIT, json=phishing)
    form = client.post(SUBMIT, data=phishing)

    assert api.status_code == form.status_code == 422
    assert api.get_json()["errors"] == {"page_url": ["Must be a URL on one of the site's origins."]}
    assert "Page address (page_url)" in html(form).find("li").text
    assert "evil.example" not in form.get_data(as_text=True)
    assert comment_count() == 0


def test_a_page_is_named_only_by_its_approved_comments(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    """The review's L1 sequence: an attacker's title on a comment that ends up deleted,
    spam or rejected never names the page; approving names it; un-approving the comment
    that named it falls back to the next approved one."""
    attacker = valid_submission(
        page_url=f"{ORIGIN}/moderation/login", page_title="Session expired - sign in again"
    )
    reader = valid_submission(page_title="Upcoming article", author_email="reader@example.com")
    moderation = "/api/v1/moderation/comments"
    attacks = [client.post(SUBMIT, json={**attacker, "body": f"x{n}"}) for n in range(3)]
    first = client.post(SUBMIT, json=reader, headers={"Origin": ORIGIN}).get_json()["id"]
    again = {**reader, "body": "Again", "page_title": "Upcoming"}
    second = client.post(SUBMIT, json=again).get_json()["id"]
    ids = [attack.get_json()["id"] for attack in attacks]

    # Nothing approved: each comment shows what it was sent with, the page has nothing.
    assert stored_page(app) == (None, None)
    assert moderation_page(client, auth, first)["title"] == "Upcoming article"
    assert moderation_page(client, auth, ids[0])["title"] == "Session expired - sign in again"

    assert client.delete(f"{moderation}/{ids[0]}", headers=auth).status_code == 204
    for comment_id, status in ((ids[1], "spam"), (ids[2], "rejected")):
        response = client.patch(f"{moderation}/{comment_id}", json={"status": status}, headers=auth)
        assert response.status_code == 200
    assert stored_page(app) == (None, None)

    client.patch(f"{moderation}/{first}", json={"status": "approved"}, headers=auth)
    assert stored_page(app) == (f"{ORIGIN}{PAGE}", "Upcoming article")
    page = moderation_page(client, auth, first)
    assert page == {"key": PAGE, "url": f"{ORIGIN}{PAGE}", "title": "Upcoming article"}
    # Once the page has a name, every comment of it shows that name, the attacker's too.
    assert moderation_page(client, auth, ids[1])["title"] == "Upcoming article"

    bulk = {"ids": [second], "action": "approve"}
    assert client.post(f"{moderation}/bulk", json=bulk, headers=auth).status_code == 200
    assert stored_page(app) == (f"{ORIGIN}{PAGE}", "Upcoming")  # the newest approved

    client.patch(f"{moderation}/{second}", json={"status": "pending"}, headers=auth)
    assert stored_page(app) == (f"{ORIGIN}{PAGE}", "Upcoming article")
    client.delete(f"{moderation}/{first}", headers=auth)
    assert stored_page(app) == (None, None)


def test_a_comment_approved_at_once_names_its_page(
    app: Flask, client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment(page="/elsewhere", author_email="ada@example.com")  # now trusted
    with app.app_context():
        sites.set_rules("news", moderation="first")
    sent = valid_submission(author_email="ada@example.com", author_name="Reader")

    response = client.post(SUBMIT, json=sent)

    assert response.get_json()["status"] == "approved"
    assert stored_page(app) == (f"{ORIGIN}{PAGE}", "US-China talks")


def test_the_form_answers_with_urls_written_out_again(client: FlaskClient) -> None:
    """Security review L6: what is redirected to, or linked from the error page, is the URL
    that was checked, as its parts write it, never the text that was sent."""
    sent = valid_submission(return_to="HTTPS://NEWS.example:443/a?b=1#comments")
    redirect = client.post(SUBMIT, data=sent)
    assert redirect.status_code == 303
    assert redirect.headers["Location"] == f"{ORIGIN}/a?b=1#comments"

    refused = client.post(SUBMIT, data=valid_submission(body="", page_url="HTTPS://News.Example/x"))
    assert refused.status_code == 422
    assert f'href="{ORIGIN}/x"' in refused.get_data(as_text=True)


def test_a_backslash_url_never_becomes_a_link_back(
    client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    """The review's L6 reproduction: browsers read a backslash as a slash, and would leave
    for evil.example from the error page's "Go back" link, or from the redirect."""
    sneaky = "https://evil.example\\@news.example/x"
    back = client.post(SUBMIT, data=valid_submission(body="", page_url=sneaky))
    assert back.status_code == 422
    assert "evil.example" not in back.get_data(as_text=True)
    assert not html(back).find_all("a")
    assert not html(back).find_all("form")  # nowhere safe to come back to

    redirect = client.post(SUBMIT, data=valid_submission(return_to=sneaky))
    assert redirect.status_code == 400
    assert "Location" not in redirect.headers
    assert comment_count() == 0


def test_api_errors_are_problem_json(client: FlaskClient) -> None:
    for method, url, status in [
        ("put", SUBMIT, 405),
        ("get", "/api/v1/nothing-here", 404),
        ("get", "/api/v1/sites/nope/comments?page=/a", 404),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == status, url
        assert response.mimetype == "application/problem+json"
        body = response.get_json()
        assert body["status"] == status
        assert {"type", "title", "detail"} <= set(body)
    assert "POST" in client.put(SUBMIT).headers["Allow"]


def test_unexpected_errors_are_problem_json_without_a_traceback(app: Flask) -> None:
    @app.get("/api/v1/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "secret internals" not in response.get_data(as_text=True)


def test_public_responses_never_set_cookies_or_vary_on_them(
    client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    make_comment()
    for response in (client.get(THREAD), client.post(SUBMIT, json=valid_submission())):
        assert "Set-Cookie" not in response.headers
        assert "Cookie" not in response.headers.get("Vary", "")

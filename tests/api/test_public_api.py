"""The public API: submit, thread (order, pagination, ETag), counts, CORS, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.extensions import db
from commentsvc.models import MAX_ID, Comment, CommentStatus, Page
from commentsvc.pagination import encode_cursor
from commentsvc.services import sites
from tests.conftest import ORIGIN, OTHER_ORIGIN, valid_submission

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
    assert response.get_json() == {"page": "/new", "total": 0, "comments": [], "next_cursor": None}


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
    assert own.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in own.headers["Vary"]
    assert "ETag" in own.headers["Access-Control-Expose-Headers"]
    foreign = client.get(THREAD, headers={"Origin": OTHER_ORIGIN})
    assert foreign.status_code == 200
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_preflight(client: FlaskClient, comment_count: Callable[[], int]) -> None:
    headers = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    response = client.options(SUBMIT, headers=headers)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]

    refused = client.options(SUBMIT, headers={**headers, "Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert comment_count() == 0


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


def test_form_errors_escape_what_the_reader_sent(client: FlaskClient) -> None:
    response = client.post(
        SUBMIT, data=valid_submission(author_url="javascript:alert('<x>')", body="")
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "<x>" not in html
    assert "author url" in html and "body" in html
    assert f'href="{ORIGIN}{PAGE}"' in html


def test_closed_site_refuses_submissions(
    app: Flask, client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    from commentsvc.models import Site

    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site is not None
        site.settings = {"comments_open": False}
        db.session.commit()
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
    assert "page url" in form.get_data(as_text=True)
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
    assert "Go back" not in back.get_data(as_text=True)

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

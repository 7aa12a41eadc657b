"""Abuse protection over HTTP (DESIGN §7): what a submitter is answered, what is stored,
and what the moderation API shows of the verdicts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from commentsvc import create_app
from commentsvc.extensions import db
from commentsvc.models import Comment, CommentStatus
from commentsvc.services import sites
from commentsvc.services.errors import Throttled
from tests.conftest import ORIGIN, OTHER_ORIGIN, valid_submission
from tests.support.redis import RedisServer

URL = "/api/v1/sites/news/comments"
JSON_HEADERS = {"Origin": ORIGIN}


def stored(app: Flask) -> list[Comment]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Comment).order_by(Comment.id)).all()
        db.session.expunge_all()
        return list(rows)


def post(client: FlaskClient, headers: dict[str, str] | None = None, **fields: Any) -> Any:
    return client.post(
        URL, json=valid_submission(**fields), headers={**JSON_HEADERS, **(headers or {})}
    )


# --- the honeypot, answered like anyone -------------------------------------------------


def test_a_filled_honeypot_is_answered_as_pending_and_stored_as_spam(
    app: Flask, client: FlaskClient
) -> None:
    human = post(client, body="A person wrote this.")
    bot = post(client, subject="Great post!", body="A bot wrote this.")
    assert human.status_code == bot.status_code == 201
    assert human.get_json()["status"] == bot.get_json()["status"] == "pending"
    assert set(human.get_json()) == set(bot.get_json())
    comments = stored(app)
    assert [(c.status, c.spam_reasons) for c in comments] == [
        (CommentStatus.PENDING, ""),
        (CommentStatus.SPAM, "honeypot"),
    ]


def test_the_no_javascript_form_has_the_honeypot_too(app: Flask, client: FlaskClient) -> None:
    form = {**valid_submission(), "subject": "http://spam.example", "return_to": ORIGIN + "/a"}
    response = client.post(URL, data=form)
    assert response.status_code == 303
    [comment] = stored(app)
    assert (comment.status, comment.spam_reasons) == (CommentStatus.SPAM, "honeypot")


def test_the_widget_timing_proof_holds_a_fast_post(app: Flask, client: FlaskClient) -> None:
    assert post(client, fill_ms=800).status_code == 201
    assert post(client, body="Slow and careful.", fill_ms=45_000).status_code == 201
    assert post(client, body="From a script.").status_code == 201
    assert [c.spam_reasons for c in stored(app)] == ["too_fast", "", ""]
    refused = post(client, body="Negative time.", fill_ms=-1)
    assert refused.status_code == 422
    assert "fill_ms" in refused.get_json()["errors"]


# --- duplicates and idempotency ---------------------------------------------------------


def test_the_same_comment_twice_is_a_conflict_and_stores_nothing(
    app: Flask, client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    assert post(client).status_code == 201
    again = post(client, body="  A thoughtful comment.  ")  # the same once trimmed
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    assert "body" in again.get_json()["errors"]
    assert comment_count() == 1
    # Another page, another author or another text is no duplicate.
    assert post(client, page="/other").status_code == 201
    assert post(client, author_email="grace@example.com").status_code == 201
    assert post(client, body="A second thought.").status_code == 201
    assert comment_count() == 4


def test_a_duplicate_form_post_gets_an_html_page(client: FlaskClient) -> None:
    form = {**valid_submission(), "return_to": ORIGIN + "/a"}
    assert client.post(URL, data=form).status_code == 303
    again = client.post(URL, data=form)
    assert again.status_code == 409
    assert again.mimetype == "text/html"
    assert "already posted" in again.get_data(as_text=True)


def test_a_retry_with_the_same_key_gets_the_first_answer(
    app: Flask, client: FlaskClient, comment_count: Callable[[], int]
) -> None:
    key = {"Idempotency-Key": "7d1b2c8e-0b5e-4f0e-9a53-0c6a3f1f2d11"}
    first = post(client, key)
    retry = post(client, key)
    quoted = post(client, {"Idempotency-Key": '"7d1b2c8e-0b5e-4f0e-9a53-0c6a3f1f2d11"'})
    assert first.status_code == retry.status_code == quoted.status_code == 201
    assert first.get_json() == retry.get_json() == quoted.get_json()
    assert retry.headers["Location"] == first.headers["Location"]
    assert comment_count() == 1
    other = post(client, key, body="Something else entirely.")
    assert other.status_code == 422
    assert "Idempotency-Key" in other.get_json()["errors"]
    assert comment_count() == 1


def test_keys_are_per_site(app: Flask, client: FlaskClient) -> None:
    key = {"Idempotency-Key": "shared-key"}
    assert post(client, key).status_code == 201
    blog = client.post(
        "/api/v1/sites/blog/comments",
        json=valid_submission(page_url=None),
        headers={"Origin": "https://blog.example", **key},
    )
    assert blog.status_code == 201
    assert len(stored(app)) == 2


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "ключ", "a b"])
def test_a_malformed_key_is_a_400(
    client: FlaskClient, key: str, comment_count: Callable[[], int]
) -> None:
    response = post(client, {"Idempotency-Key": key})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.get_json()["errors"]
    assert comment_count() == 0


def test_a_key_of_a_refused_submission_stays_free(app: Flask, client: FlaskClient) -> None:
    key = {"Idempotency-Key": "retry-me"}
    assert post(client, key, parent_id=12345).status_code == 422
    assert post(client, key).status_code == 201


# --- rate limits ---------------------------------------------------------------------------


@pytest.fixture
def limited(app: Flask) -> Iterator[Flask]:
    """The app's database, served with rate limits on: two submissions a minute."""
    limited_app = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": app.config["DATABASE_URL"],
            "RATELIMIT_ENABLED": True,
            "SUBMIT_RATE_LIMIT": "2/minute;10/hour",
        }
    )
    yield limited_app
    with limited_app.app_context():
        db.engine.dispose()


def from_address(client: FlaskClient, address: str, n: int, **headers: str) -> list[int]:
    return [
        client.post(
            URL,
            json=valid_submission(body=f"Comment {address} {i} {headers}"),
            headers={**JSON_HEADERS, **headers},
            environ_base={"REMOTE_ADDR": address},
        ).status_code
        for i in range(n)
    ]


def test_over_the_limit_is_a_429_with_retry_after_and_nothing_stored(
    limited: Flask, comment_count: Callable[[], int]
) -> None:
    client = limited.test_client()
    assert from_address(client, "203.0.113.5", 2) == [201, 201]
    refused = client.post(
        URL,
        json=valid_submission(body="A third one."),
        headers=JSON_HEADERS,
        environ_base={"REMOTE_ADDR": "203.0.113.5"},
    )
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    assert problem["status"] == 429 and "2 per 1 minute" in problem["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Retry-After" in refused.headers["Access-Control-Expose-Headers"]
    assert comment_count() == 2
    assert from_address(client, "203.0.113.6", 1) == [201]  # another client


def test_retry_after_is_at_most_a_period_when_another_worker_stored_later(
    limited: Flask,
) -> None:
    """A request that read the clock before another worker stored the client's comment
    finds one newer than its ``now``; the wait it answers is still within one period."""
    client = limited.test_client()
    assert from_address(client, "203.0.113.7", 2) == [201, 201]
    oldest, newest = stored(limited)[-2:]
    with limited.app_context(), db.engine.connect() as connection:
        limits = limited.extensions["commentsvc.throttling"]
        with pytest.raises(Throttled) as refused:
            limits.hit(
                newest.site_id,
                newest.client_hash,
                connection,
                now=oldest.created_at - timedelta(seconds=5),
            )
    assert refused.value.retry_after == 60


def test_only_submissions_that_would_be_stored_count(
    limited: Flask, comment_count: Callable[[], int]
) -> None:
    client = limited.test_client()
    address = {"REMOTE_ADDR": "203.0.113.5"}
    key = {**JSON_HEADERS, "Idempotency-Key": "once"}

    def send(headers: dict[str, str] = JSON_HEADERS, **fields: Any) -> int:
        response = client.post(
            URL, json=valid_submission(**fields), headers=headers, environ_base=address
        )
        return response.status_code

    assert send(author_email="not an address") == 422
    assert send(key) == 201
    assert send(key) == 201  # the retry is answered, not counted
    assert send() == 409  # the same comment without the key: a duplicate
    assert send(body="Second.") == 201
    assert send(body="Third.") == 429
    assert comment_count() == 2


def test_a_widget_open_for_weeks_is_no_error(client: FlaskClient) -> None:
    assert post(client, fill_ms=2**40).status_code == 201


def test_a_limited_form_post_gets_an_html_page_with_retry_after(limited: Flask) -> None:
    client = limited.test_client()
    from_address(client, "203.0.113.5", 2)
    form = {**valid_submission(body="Third."), "return_to": ORIGIN + "/a"}
    refused = client.post(URL, data=form, environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert refused.status_code == 429
    assert refused.mimetype == "text/html"
    assert int(refused.headers["Retry-After"]) >= 1


def test_limits_are_per_site(limited: Flask) -> None:
    client = limited.test_client()
    assert from_address(client, "203.0.113.5", 3) == [201, 201, 429]
    blog = client.post(
        "/api/v1/sites/blog/comments",
        json=valid_submission(page_url=None),
        headers={"Origin": "https://blog.example"},
        environ_base={"REMOTE_ADDR": "203.0.113.5"},
    )
    assert blog.status_code == 201


def test_ipv6_clients_count_per_64(limited: Flask) -> None:
    client = limited.test_client()
    assert from_address(client, "2001:db8:1:2::1", 1) == [201]
    assert from_address(client, "2001:db8:1:2:ffff::9", 2) == [201, 429]
    assert from_address(client, "2001:db8:1:3::1", 1) == [201]


def test_a_spoofed_forwarded_for_does_not_escape_without_a_trusted_proxy(limited: Flask) -> None:
    client = limited.test_client()
    answers = [
        from_address(client, "203.0.113.5", 1, **{"X-Forwarded-For": f"10.0.0.{i}"})[0]
        for i in range(4)
    ]
    assert answers == [201, 201, 429, 429]


def test_behind_a_trusted_proxy_the_real_client_is_limited(app: Flask) -> None:
    behind_proxy = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": app.config["DATABASE_URL"],
            "RATELIMIT_ENABLED": True,
            "SUBMIT_RATE_LIMIT": "2/minute",
            "TRUSTED_PROXIES": 1,
        }
    )
    client = behind_proxy.test_client()
    proxy = "10.0.0.1"
    # The proxy appends the address it saw; what the client wrote before it is not trusted.
    spoofing = [
        from_address(client, proxy, 1, **{"X-Forwarded-For": f"1.2.3.{i}, 203.0.113.5"})[0]
        for i in range(3)
    ]
    assert spoofing == [201, 201, 429]
    assert from_address(client, proxy, 1, **{"X-Forwarded-For": "203.0.113.6"}) == [201]
    with behind_proxy.app_context():
        db.engine.dispose()


def test_rate_limits_off_let_everything_through(client: FlaskClient) -> None:
    assert from_address(client, "203.0.113.5", 6) == [201] * 6


# --- previews, limited on their own ------------------------------------------------------

PREVIEW_URL = "/api/v1/sites/news/preview"


def limited_previews(app: Flask, **settings: Any) -> Flask:
    """An app on ``app``'s database with rate limits on: three previews a minute."""
    return create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": app.config["DATABASE_URL"],
            "RATELIMIT_ENABLED": True,
            "PREVIEW_RATE_LIMIT": "3/minute",
            **settings,
        }
    )


@pytest.fixture
def previews_limited(app: Flask) -> Iterator[Flask]:
    limited_app = limited_previews(app)
    yield limited_app
    with limited_app.app_context():
        db.engine.dispose()


def previews(
    client: FlaskClient, address: str, n: int, url: str = PREVIEW_URL, origin: str = ORIGIN
) -> list[int]:
    return [
        client.post(
            url,
            json={"body": f"Draft {i}"},
            headers={"Origin": origin},
            environ_base={"REMOTE_ADDR": address},
        ).status_code
        for i in range(n)
    ]


def test_a_preview_over_the_limit_is_a_429_with_retry_after(previews_limited: Flask) -> None:
    client = previews_limited.test_client()
    assert previews(client, "203.0.113.5", 3) == [200, 200, 200]
    refused = client.post(
        PREVIEW_URL,
        json={"body": "One more."},
        headers=JSON_HEADERS,
        environ_base={"REMOTE_ADDR": "203.0.113.5"},
    )
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    assert problem["status"] == 429 and "3 per 1 minute" in problem["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Retry-After" in refused.headers["Access-Control-Expose-Headers"]
    assert previews(client, "203.0.113.6", 1) == [200]  # another client
    assert previews(client, "2001:db8:1:2::1", 4) == [200, 200, 200, 429]
    assert previews(client, "2001:db8:1:2::9", 1) == [429]  # the same /64
    assert previews(client, "2001:db8:1:3::1", 1) == [200]


def test_previews_count_over_every_site_and_apart_from_submissions(
    previews_limited: Flask,
) -> None:
    client = previews_limited.test_client()
    blog = "/api/v1/sites/blog/preview"
    assert previews(client, "203.0.113.5", 2) == [200, 200]
    assert previews(client, "203.0.113.5", 2, blog, OTHER_ORIGIN) == [200, 429]
    assert from_address(client, "203.0.113.5", 1) == [201]  # submissions count their own


def test_previews_share_their_count_in_redis(app: Flask, redis_url: str) -> None:
    """Two workers (two apps) count one client's previews together in Redis; without it,
    each counts its own."""
    apps = [limited_previews(app, RATELIMIT_STORAGE_URI=redis_url) for _ in range(2)]
    first, second = (each.test_client() for each in apps)
    assert previews(first, "203.0.113.5", 2) + previews(second, "203.0.113.5", 2) == [
        200,
        200,
        200,
        429,
    ]
    apart = [limited_previews(app) for _ in range(2)]
    assert [previews(each.test_client(), "203.0.113.5", 3) for each in apart] == [[200] * 3] * 2
    for each in apps + apart:
        with each.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
def test_previews_when_redis_is_gone_follow_the_fail_open_setting(
    app: Flask, redis_server: RedisServer, fail_open: bool
) -> None:
    limited_app = limited_previews(
        app, RATELIMIT_STORAGE_URI=redis_server.url, RATELIMIT_FAIL_OPEN=fail_open
    )
    redis_server.stop()
    client = limited_app.test_client()
    assert previews(client, "203.0.113.5", 4) == ([200] * 4 if fail_open else [503] * 4)
    with limited_app.app_context():
        db.engine.dispose()


def test_rate_limits_off_let_every_preview_through(client: FlaskClient) -> None:
    assert previews(client, "203.0.113.5", 40) == [200] * 40


# --- what moderators see ----------------------------------------------------------------


@pytest.fixture
def verdicts(app: Flask, client: FlaskClient) -> dict[str, int]:
    """Comments with different verdicts, by what they are."""
    with app.app_context():
        sites.set_rules("news", max_links=1)
    ids = {}
    cases: dict[str, dict[str, Any]] = {
        "clean": {"body": "Clean.", "fill_ms": 60_000},
        "links": {"body": "http://a.example http://b.example", "fill_ms": 60_000},
        "fast": {"body": "Fast.", "fill_ms": 10},
        "fast_links": {"body": "Fast http://a.example http://b.example", "fill_ms": 10},
        "honeypot": {"body": "Bot.", "subject": "x"},
    }
    for name, fields in cases.items():
        response = post(client, **fields)
        assert response.status_code == 201
        ids[name] = response.get_json()["id"]
    return ids


def test_the_moderation_api_shows_scores_and_reasons(
    client: FlaskClient, auth: dict[str, str], verdicts: dict[str, int]
) -> None:
    one = client.get(f"/api/v1/moderation/comments/{verdicts['fast_links']}", headers=auth)
    assert one.get_json()["spam_score"] == 0.72
    assert one.get_json()["spam_reasons"] == ["too_fast", "links"]
    listed = client.get("/api/v1/moderation/comments", headers=auth).get_json()["comments"]
    by_id = {c["id"]: (c["status"], c["spam_score"], c["spam_reasons"]) for c in listed}
    assert by_id[verdicts["clean"]] == ("pending", 0.0, [])
    assert by_id[verdicts["honeypot"]] == ("spam", 1.0, ["honeypot"])


def test_public_answers_never_show_verdicts(
    client: FlaskClient, auth: dict[str, str], verdicts: dict[str, int]
) -> None:
    client.patch(
        f"/api/v1/moderation/comments/{verdicts['fast']}", json={"status": "approved"}, headers=auth
    )
    thread = client.get(URL, query_string={"page": valid_submission()["page"]}).get_data(True)
    assert "spam" not in thread and "too_fast" not in thread


def test_the_list_filters_by_score_and_reason_and_orders_by_score(
    client: FlaskClient, auth: dict[str, str], verdicts: dict[str, int]
) -> None:
    def ids(**query: Any) -> list[int]:
        response = client.get("/api/v1/moderation/comments", query_string=query, headers=auth)
        assert response.status_code == 200, response.get_json()
        return [c["id"] for c in response.get_json()["comments"]]

    v = verdicts
    assert ids(spam_score_min=0.6) == [v["honeypot"], v["fast_links"], v["fast"]]
    assert ids(reason="links") == [v["fast_links"], v["links"]]
    assert ids(reason="links", status="pending", spam_score_min=0.5) == [v["fast_links"]]
    by_score = [v["honeypot"], v["fast_links"], v["fast"], v["links"], v["clean"]]
    assert ids(order="spam_score") == by_score
    # Page by page, the cursor carries the score.
    seen: list[int] = []
    cursor = None
    while True:
        query = {"order": "spam_score", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/moderation/comments", query_string=query, headers=auth)
        seen += [c["id"] for c in page.get_json()["comments"]]
        cursor = page.get_json()["next_cursor"]
        if cursor is None:
            break
    assert seen == by_score


@pytest.mark.parametrize(
    "query",
    [
        {"spam_score_min": "2"},
        {"spam_score_min": "nan"},
        {"spam_score_min": "high"},
        {"reason": "rude"},
        {"order": "oldest"},
    ],
)
def test_bad_list_arguments_are_400(
    client: FlaskClient, auth: dict[str, str], query: dict[str, str]
) -> None:
    response = client.get("/api/v1/moderation/comments", query_string=query, headers=auth)
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == set(query)


def test_a_cursor_of_one_order_is_refused_in_the_other(
    client: FlaskClient, auth: dict[str, str], verdicts: dict[str, int]
) -> None:
    newest = client.get("/api/v1/moderation/comments?limit=1", headers=auth).get_json()
    scored = client.get(
        "/api/v1/moderation/comments?limit=1&order=spam_score", headers=auth
    ).get_json()
    swapped = [
        f"/api/v1/moderation/comments?order=spam_score&cursor={newest['next_cursor']}",
        f"/api/v1/moderation/comments?cursor={scored['next_cursor']}",
    ]
    for url in swapped:
        assert client.get(url, headers=auth).status_code == 400


# --- the blocklist through the API ------------------------------------------------------

BLOCKLIST = "/api/v1/moderation/blocklist"


def test_blocklist_entries_are_added_listed_and_removed(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    added = client.post(
        BLOCKLIST, json={"kind": "domain", "value": "https://WWW.Spam.example/x"}, headers=auth
    )
    assert added.status_code == 201
    entry = added.get_json()
    assert (entry["kind"], entry["value"], entry["site"]) == ("domain", "spam.example", None)
    assert entry["created_by"] == "mod@example.com"
    assert client.get(added.headers["Location"], headers=auth).get_json() == entry
    again = client.post(BLOCKLIST, json={"kind": "domain", "value": "spam.example"}, headers=auth)
    assert (again.status_code, again.get_json()["id"]) == (200, entry["id"])
    site_entry = client.post(
        BLOCKLIST, json={"kind": "word", "value": "Casino", "site": "news"}, headers=auth
    ).get_json()
    listed = client.get(BLOCKLIST, headers=auth).get_json()["entries"]
    assert [e["id"] for e in listed] == [site_entry["id"], entry["id"]]
    on_blog = client.get(BLOCKLIST, query_string={"site": "blog"}, headers=auth).get_json()
    assert [e["id"] for e in on_blog["entries"]] == [entry["id"]]

    # It applies from the next submission on.
    assert post(client, author_url="http://spam.example/").status_code == 201
    assert stored(app)[-1].spam_reasons == "blocklist:domain"

    assert client.delete(f"{BLOCKLIST}/{entry['id']}", headers=auth).status_code == 204
    assert client.get(f"{BLOCKLIST}/{entry['id']}", headers=auth).status_code == 404
    assert post(client, body="Later.", author_url="http://spam.example/").status_code == 201
    assert stored(app)[-1].spam_reasons == ""


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"kind": "url", "value": "x"}, {"kind"}),
        ({"value": "x"}, {"kind"}),
        ({"kind": "ip", "value": "not-an-ip"}, {"value"}),
        ({"kind": "email", "value": ""}, {"value"}),
        ({"kind": "word", "value": 5}, {"value"}),
        ({"kind": "word", "value": "x", "site": "nowhere"}, {"site"}),
    ],
)
def test_bad_blocklist_entries_are_422(
    client: FlaskClient, auth: dict[str, str], payload: dict[str, Any], fields: set[str]
) -> None:
    response = client.post(BLOCKLIST, json=payload, headers=auth)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == fields


def test_a_moderator_of_some_sites_manages_only_their_entries(
    client: FlaskClient, make_token: Callable[..., str], auth: dict[str, str]
) -> None:
    blog = {"Authorization": f"Bearer {make_token('blogmod@example.com', sites=('blog',))}"}
    everywhere = client.post(BLOCKLIST, json={"kind": "word", "value": "casino"}, headers=auth)
    news_only = client.post(
        BLOCKLIST, json={"kind": "word", "value": "poker", "site": "news"}, headers=auth
    )
    refused = client.post(BLOCKLIST, json={"kind": "word", "value": "dice"}, headers=blog)
    assert refused.status_code == 422 and "site" in refused.get_json()["errors"]
    other_site = client.post(
        BLOCKLIST, json={"kind": "word", "value": "dice", "site": "news"}, headers=blog
    )
    assert other_site.status_code == 422
    own = client.post(
        BLOCKLIST, json={"kind": "word", "value": "dice", "site": "blog"}, headers=blog
    )
    assert own.status_code == 201
    listed = {e["value"] for e in client.get(BLOCKLIST, headers=blog).get_json()["entries"]}
    assert listed == {"casino", "dice"}
    news_id = news_only.get_json()["id"]
    assert client.get(f"{BLOCKLIST}/{news_id}", headers=blog).status_code == 404
    assert client.delete(f"{BLOCKLIST}/{news_id}", headers=blog).status_code == 404
    everywhere_id = everywhere.get_json()["id"]
    assert client.delete(f"{BLOCKLIST}/{everywhere_id}", headers=blog).status_code == 403
    assert client.delete(f"{BLOCKLIST}/{own.get_json()['id']}", headers=blog).status_code == 204

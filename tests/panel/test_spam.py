"""The abuse rules' verdicts in the panel (DESIGN §7): reasons in words, sorting by spam
score, filtering by reason and score, and "Not spam" from the spam tab."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from commentsvc.models import CommentStatus
from commentsvc.pagination import encode_cursor
from commentsvc.services import sites
from tests.conftest import ORIGIN, valid_submission
from tests.support.html import Element, flashes, html, shown_ids, tab_counts
from tests.support.panel import JSON_HEADERS, PANEL, set_verdict, submit
from tests.support.state import APPROVED, PENDING, events_of, status_of

SPAM = CommentStatus.SPAM
LINKS = " ".join(f"https://l{n}.example/" for n in range(3))


def post_comment(app: Flask, **fields: object) -> int:
    """Submit a comment through the public API, as the widget does; returns its id."""
    response = app.test_client().post(
        "/api/v1/sites/news/comments",
        json=valid_submission(**fields),
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def item(client: FlaskClient, path: str, comment_id: int) -> Element:
    return html(client.get(path)).find("article", cls="comment", data_id=str(comment_id))


def reasons_of(article: Element) -> list[tuple[str, str]]:
    """(code, text) of each reason an item shows."""
    return [
        (li.attrs["data-reason"], li.text)
        for li in article.find("div", cls="spam-info").find_all("li", cls="reason")
    ]


def query_of(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query)


# --- reasons in words -------------------------------------------------------------------------


def test_queue_and_detail_show_the_score_and_reasons_in_words(
    app: Flask, admin_client: FlaskClient
) -> None:
    held = post_comment(app, body=f"Look: {LINKS}", fill_ms=500)
    bot = post_comment(app, body="Bot text.", subject="filled by a bot")
    clean = post_comment(app, body="Nothing wrong here.")

    for path in (f"{PANEL}/", f"{PANEL}/comments/{held}"):
        article = item(admin_client, path, held)
        assert reasons_of(article) == [
            ("too_fast", "Sent too fast too_fast"),
            ("links", "Too many links links"),
        ]
        score = article.find("span", cls="spam-score")
        assert score.text == "Spam score 0.72"
        assert "0 to 1" in score.attrs["title"]
    assert item(admin_client, f"{PANEL}/", clean).find_all(cls="spam-info") == []

    spam_tab = item(admin_client, f"{PANEL}/?status=spam", bot)
    assert reasons_of(spam_tab) == [("honeypot", "Honeypot field filled honeypot")]
    assert spam_tab.find("span", cls="spam-score").text == "Spam score 1.00"


@pytest.mark.parametrize(
    ("reasons", "words"),
    [
        ("blocklist:email", "Blocked email"),
        ("blocklist:domain", "Blocked domain"),
        ("blocklist:ip", "Blocked address"),
        ("blocklist:word", "Blocked word"),
        ("some_future_rule", "some_future_rule"),
    ],
)
def test_every_reason_reads_as_words(
    app: Flask,
    admin_client: FlaskClient,
    make_comment: Callable[..., int],
    reasons: str,
    words: str,
) -> None:
    comment = make_comment(status=SPAM)
    set_verdict(app, comment, 1.0, reasons)
    [(code, text)] = reasons_of(item(admin_client, f"{PANEL}/?status=spam", comment))
    assert code == reasons
    assert text.startswith(words)
    assert text.endswith(reasons)


def test_history_tells_what_the_system_decided_and_why(
    app: Flask, admin_client: FlaskClient
) -> None:
    bot = post_comment(app, body="Bot text.", subject="filled", fill_ms=100)
    history = html(admin_client.get(f"{PANEL}/comments/{bot}")).find("ol", cls="history")
    [event] = history.find_all("li")
    assert "event-system" in event.classes
    assert event.text.endswith(
        "— System (automatic) marked as spam (new → spam): "
        "rules: Honeypot field filled (honeypot), Sent too fast (too_fast)"
    )
    audit = html(admin_client.get(f"{PANEL}/audit?comment_id={bot}")).find("table", cls="audit")
    cells = [td.text for td in audit.find("tbody").find("tr").find_all("td")]
    assert cells[1:3] == ["system", "spam new → spam"]
    assert cells[5] == "rules: Honeypot field filled (honeypot), Sent too fast (too_fast)"

    # A trusted author on a site in "first" mode: approved at once, and the log says why.
    with app.app_context():
        sites.set_rules("news", moderation="first")
    first = post_comment(app, body="My first comment.")
    assert submit(admin_client, f"{PANEL}/comments/{first}/approve").status_code == 303
    trusted = post_comment(app, body="My second comment.")
    assert status_of(app, trusted) == APPROVED
    [event] = html(admin_client.get(f"{PANEL}/comments/{trusted}")).find_all("li", cls="event")
    assert "— System (automatic) approved (new → approved): moderation 'first'" in event.text
    assert (
        item(admin_client, f"{PANEL}/comments/{trusted}", trusted).find_all(cls="spam-info") == []
    )


# --- sorting and filtering -----------------------------------------------------------------------


def test_most_suspicious_first_orders_and_pages_by_score(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    app.config["PANEL_PAGE_SIZE"] = 2
    scores = [0.3, 0.9, 0.0, 0.9, 0.6, 0.3]
    made = [make_comment(status=PENDING) for _ in scores]
    for comment, score in zip(made, scores, strict=True):
        set_verdict(app, comment, score, "links" if score else "")
    make_comment(status=PENDING, site="blog")  # filtered out
    expected = sorted(made, key=lambda c: (-scores[made.index(c)], -c))

    pages: list[list[int]] = []
    path: str | None = f"{PANEL}/?site=news&order=spam_score"
    while path is not None:
        response = admin_client.get(path)
        assert response.status_code == 200
        pages.append(shown_ids(response))
        doc = html(response)
        assert doc.find("select", name="order").find("option", selected="").attrs["value"] == (
            "spam_score"
        )
        links = doc.find_all("a", rel="next")
        path = links[0].attrs["href"] if links else None
        if path is not None:
            assert links[0].text == "Less suspicious"
            assert query_of(path)["order"] == ["spam_score"]
            assert query_of(path)["site"] == ["news"]
    assert pages == [expected[0:2], expected[2:4], expected[4:6]]
    # Newest first stays the default, and its own pages.
    assert shown_ids(admin_client.get(f"{PANEL}/?site=news")) == made[::-1][:2]


def test_reason_and_minimum_score_filters(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    fast = make_comment(status=PENDING)
    links = make_comment(status=PENDING)
    both = make_comment(status=PENDING)
    spam_links = make_comment(status=SPAM)
    clean = make_comment(status=PENDING)
    set_verdict(app, fast, 0.6, "too_fast")
    set_verdict(app, links, 0.3, "links")
    set_verdict(app, both, 0.72, "too_fast links")
    set_verdict(app, spam_links, 1.0, "honeypot links")

    assert shown_ids(admin_client.get(f"{PANEL}/?reason=links")) == [both, links]
    assert shown_ids(admin_client.get(f"{PANEL}/?reason=too_fast")) == [both, fast]
    assert shown_ids(admin_client.get(f"{PANEL}/?spam_score_min=0.5")) == [both, fast]
    assert shown_ids(admin_client.get(f"{PANEL}/?spam_score_min=0")) == [
        clean,
        both,
        links,
        fast,
    ]
    filtered = admin_client.get(f"{PANEL}/?reason=links&spam_score_min=0.5&order=spam_score")
    assert shown_ids(filtered) == [both]
    assert tab_counts(filtered) == {"pending": 1, "approved": 0, "rejected": 0, "spam": 1}
    doc = html(filtered)
    form = doc.find("form", id="filters")
    assert form.find("select", name="reason").find("option", selected="").attrs["value"] == (
        "links"
    )
    assert form.find("input", name="spam_score_min").attrs["value"] == "0.5"
    # The tabs keep the filters and the order.
    spam_tab = doc.find("nav", cls="status-tabs").find("a", data_status="spam")
    assert query_of(spam_tab.attrs["href"]) == {
        "status": ["spam"],
        "reason": ["links"],
        "spam_score_min": ["0.5"],
        "order": ["spam_score"],
    }
    assert shown_ids(admin_client.get(spam_tab.attrs["href"])) == [spam_links]
    empty = admin_client.get(f"{PANEL}/?reason=blocklist:word")
    assert html(empty).find("p", cls="empty").text == "No pending comments match these filters."
    # An action's in-place tab counts follow the queue it came from.
    back = f"{PANEL}/?reason=links&spam_score_min=0.5"
    answer = submit(
        admin_client, f"{PANEL}/comments/{both}/approve", {"next": back}, headers=JSON_HEADERS
    )
    assert answer.get_json()["counts"] == {"pending": 0, "approved": 1, "rejected": 0, "spam": 1}


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("order=oldest", "order: Must be one of: newest, spam_score."),
        ("reason=spammy", "reason: Must be one of:"),
        ("spam_score_min=1.5", "spam_score_min: Must be a number from 0 to 1."),
        ("spam_score_min=nan", "spam_score_min: Must be a number from 0 to 1."),
        ("order=spam_score&cursor=" + encode_cursor(5), "The cursor is not valid."),
        ("cursor=" + encode_cursor(5, 0.5), "The cursor is not valid."),
    ],
)
def test_a_bad_sort_or_filter_gets_the_same_400_as_from_the_api(
    admin_client: FlaskClient, auth: dict[str, str], query: str, says: str
) -> None:
    page = admin_client.get(f"{PANEL}/?{query}")
    assert page.status_code == 400
    assert says in html(page).find("main").text
    api = admin_client.get(f"/api/v1/moderation/comments?{query}", headers=auth)
    assert api.status_code == 400
    assert api.get_json()["detail"].startswith(says)


# --- not spam ----------------------------------------------------------------------------------


def test_not_spam_from_the_spam_tab_and_undo(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    caught = make_comment(status=SPAM)
    set_verdict(app, caught, 0.6, "too_fast")
    spam_tab = f"{PANEL}/?status=spam&reason=too_fast"
    article = item(admin_client, spam_tab, caught)
    button = article.find("button", cls="act", data_action="not-spam")
    assert button.text == "Not spam"
    assert button.attrs["formaction"] == f"{PANEL}/comments/{caught}/not-spam"
    assert {b.attrs["data-action"] for b in article.find_all("button", cls="act")} == {
        "not-spam",
        "approve",
        "reject",
        "delete",
    }

    response = submit(admin_client, button.attrs["formaction"], {"next": spam_tab})
    assert response.status_code == 303
    assert response.headers["Location"] == spam_tab
    assert status_of(app, caught) == PENDING
    assert events_of(app, caught) == [("requeue", "spam", "pending", None)]
    page = admin_client.get(spam_tab)
    assert ("success", "Back to pending: 1 comment.") in flashes(page)
    assert shown_ids(page) == []
    undo = html(page).find("form", cls="undo")
    assert undo.attrs["action"] == f"{PANEL}/undo"
    submit(admin_client, f"{PANEL}/undo", {"next": spam_tab})
    assert status_of(app, caught) == SPAM
    # Only spam offers it.
    pending = make_comment(status=PENDING)
    assert item(admin_client, f"{PANEL}/", pending).find_all(data_action="not-spam") == []


def test_not_spam_in_place_and_in_bulk(
    app: Flask, admin_client: FlaskClient, make_comment: Callable[..., int]
) -> None:
    first, second, third = (make_comment(status=SPAM) for _ in range(3))
    answer = submit(
        admin_client,
        f"{PANEL}/comments/{first}/not-spam",
        {"next": f"{PANEL}/?status=spam"},
        headers=JSON_HEADERS,
    )
    data = answer.get_json()
    assert data["message"] == "Back to pending: 1 comment."
    assert data["undo"] is True
    assert data["counts"] == {"pending": 1, "approved": 0, "rejected": 0, "spam": 2}

    toolbar = html(admin_client.get(f"{PANEL}/?status=spam")).find("div", cls="toolbar")
    assert toolbar.find("button", value="not-spam").text == "Not spam: back to pending"
    assert toolbar.find_all("button", value="spam") == []
    pending_toolbar = html(admin_client.get(f"{PANEL}/")).find("div", cls="toolbar")
    assert pending_toolbar.find_all("button", value="not-spam") == []

    data = {"ids": [str(second), str(third)], "action": "not-spam"}
    response = submit(admin_client, f"{PANEL}/comments/bulk", data)
    assert response.status_code == 303
    assert ("success", "Back to pending: 2 comments.") in flashes(
        admin_client.get(response.headers["Location"])
    )
    assert [status_of(app, c) for c in (first, second, third)] == [PENDING] * 3

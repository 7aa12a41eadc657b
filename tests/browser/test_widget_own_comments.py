"""The reader's own comments in the widget (DESIGN §10), in a real Chromium on a host page of
another origin: a comment just posted is shown to its author alone, marked as awaiting
moderation, and kept in this browser's ``localStorage`` (with its edit token, without the
author's name) until its edit window closes; Edit and Delete work through the edit token, and
the service's refusals (403 past the window or with another token, 409 once a reply is
approved, 422 for a bad text) reach the reader in words. No payload runs through an edit.

The host pages, fixtures and helpers are those of ``test_widget.py`` (and the Markdown site of
``test_widget_reading.py``).
"""

# ruff: noqa: F811 (tests take the fixtures imported from test_widget.py as arguments)
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Response, Route, expect

from commentsvc.config import SETTINGS_BY_NAME
from tests.browser.conftest import Live, PageLog
from tests.browser.test_widget import (  # noqa: F401 (host, host_pages, key, page: fixtures)
    AWAITING,
    HTTP_STATUS_ERROR,
    PAGE_SIZE,
    POST,
    SAVE,
    SITE,
    XSS_BODIES,
    HostPages,
    approved,
    assert_accessible,
    comment,
    fill_form,
    focused,
    host,
    host_pages,
    key,
    open_thread,
    page,
    post,
    stored_author,
    submit,
    textbox,
    widget,
)
from tests.browser.test_widget_reading import (  # noqa: F401 (markdown_site: a fixture)
    PREVIEW_XSS,
    markdown_site,
    shown_ids,
)
from tests.support.host_pages import HostSite

pytestmark = pytest.mark.browser

OWN = "commentsvc:own"
AUTHOR = "commentsvc:author"
YOURS = f"{AWAITING} Only you can see this until it is approved."
WINDOW = "You can edit or delete your comment until {}."
CONFIRM = "Delete your comment? This cannot be undone."
DELETED = "Your comment was deleted."
MAX_BODY_LENGTH: int = SETTINGS_BY_NAME["MAX_BODY_LENGTH"].default
#: The tags a comment's body may hold (widget.js's safeBody) besides its links.
BODY_TAGS = {"p", "br", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a"}


# --- Helpers ---------------------------------------------------------------------------------


def group(live: Live, key: str, site: str = SITE) -> str:
    """The name the widget keeps a page's own comments under: API base and page key."""
    return f"{live.url(f'/api/v1/sites/{site}')} {key}"


def own_store(page: Page) -> dict[str, dict[str, dict[str, Any]]]:
    """What the host origin's ``localStorage`` keeps of the reader's own comments."""
    text = page.evaluate("key => localStorage.getItem(key)", OWN)
    return json.loads(text) if text else {}


def own_ids(page: Page, live: Live, key: str) -> list[int]:
    """The ids of the own comments of ``key`` this browser keeps."""
    return [int(i) for i in own_store(page).get(group(live, key), {})]


def change_entry(page: Page, name: str, comment_id: int, **changes: Any) -> None:
    """Change the kept entry of one own comment, as time or a tampering script would."""
    page.evaluate(
        """([key, name, id, changes]) => {
          const all = JSON.parse(localStorage.getItem(key));
          Object.assign(all[name][id], changes);
          localStorage.setItem(key, JSON.stringify(all));
        }""",
        [OWN, name, str(comment_id), changes],
    )


def post_own(page: Page, url: str, body: str, **fields: str) -> dict[str, Any]:
    """Open ``url``, post a comment through the widget; the service's 201 answer."""
    open_thread(page, url)
    fill_form(page, body, **fields)
    # Any site's submission (post() of test_widget.py waits for the site "widget" only).
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/comments")
    ) as posted:
        widget(page).get_by_role("button", name=POST, exact=True).click()
    response = posted.value
    assert response.status == 201, response.text()
    answer: dict[str, Any] = response.json()
    assert answer["edit_token"] and answer["editable_until"], answer
    # Shown once own.js is here and has kept it.
    expect(comment(page, answer["id"])).to_be_visible()
    return answer


def button(item: Locator, name: str) -> Locator:
    return item.get_by_role("button", name=name, exact=True)


def editor(item: Locator) -> Locator:
    return item.get_by_role("textbox", name="Comment", exact=True)


def is_change(method: str) -> Callable[[Response], bool]:
    return lambda response: response.request.method == method and "/comments/" in response.url


def save_edit(page: Page, item: Locator, body: str) -> Response:
    """Edit the comment shown as ``item`` to ``body``; the service's answer to the PATCH."""
    button(item, "Edit").click()
    box = editor(item)
    expect(box).to_be_focused()
    box.fill(body)
    with page.expect_response(is_change("PATCH")) as answer:
        button(item, "Save").click()
    return answer.value


def status_line(page: Page) -> Locator:
    return widget(page).get_by_role("status")


def window_text(page: Page, editable_until: str) -> str:
    """The edit window's line, its time as the reader's browser writes it in English."""
    time = page.evaluate(
        "until => new Intl.DateTimeFormat('en', {timeStyle: 'short'}).format(new Date(until))",
        editable_until,
    )
    return WINDOW.format(time)


def assert_marked_pending(item: Locator) -> None:
    expect(item).to_have_class("csv-comment csv-mine")
    expect(item.locator(".csv-yours")).to_have_text(YOURS)
    expect(item.get_by_role("button", name="Reply", exact=False)).to_have_count(0)


# --- 1. Shown to its author alone; edit; delete ----------------------------------------------


def test_own_comment_is_shown_to_its_author_alone_and_can_be_edited_then_deleted(
    live: Live,
    page: Page,
    host_pages: HostPages,
    host: HostSite,
    key: str,
    page_log: PageLog,
) -> None:
    url = host.url("thread.html", page=key)
    answer = post_own(page, url, "My first thought.")
    mine = answer["id"]
    item = comment(page, mine)
    assert_marked_pending(item)
    expect(item.locator(".csv-body")).to_have_text("My first thought.")
    expect(item.locator(".csv-own")).to_contain_text(window_text(page, answer["editable_until"]))
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("No comments yet.")
    entry = own_store(page)[group(live, key)][str(mine)]
    assert entry["token"] == answer["edit_token"]
    assert "edit_token" not in entry

    page.reload()
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("No comments yet.")
    assert_marked_pending(item)
    expect(item.locator(".csv-body")).to_have_text("My first thought.")
    expect(button(item, "Edit")).to_be_visible()
    # Another browser (another reader) sees nothing of it.
    other = host_pages.open()
    open_thread(other, url, "No comments yet.")
    expect(widget(other).locator("li.csv-comment")).to_have_count(0)
    assert own_store(other) == {}

    # Edit: the text in a field of its own, focused; Save sends it with the token.
    button(item, "Edit").click()
    box = editor(item)
    expect(box).to_be_focused()
    expect(box).to_have_value("My first thought.")
    expect(item.locator(".csv-body")).to_be_hidden()
    box.fill("My second thought.")
    with page.expect_response(is_change("PATCH")) as edited:
        button(item, "Save").click()
    response = edited.value
    assert response.status == 200, response.text()
    assert response.request.header_value("authorization") == f"Bearer {answer['edit_token']}"
    expect(box).to_have_count(0)
    expect(item.locator(".csv-body")).to_have_text("My second thought.")
    expect(status_line(page)).to_have_text(AWAITING)
    assert_marked_pending(item)
    expect(button(item, "Edit")).to_be_focused()
    stored = live.comment(mine) or {}
    assert (stored["body"], stored["status"]) == ("My second thought.", "pending")
    kept = own_store(page)[group(live, key)][str(mine)]
    assert (kept["body"], kept["token"]) == ("My second thought.", answer["edit_token"])

    # Cancel keeps the comment as it is.
    button(item, "Edit").click()
    editor(item).fill("Not sent.")
    button(item, "Cancel").click()
    expect(editor(item)).to_have_count(0)
    expect(item.locator(".csv-body")).to_have_text("My second thought.")

    # Delete asks first: "no" leaves everything as it was.
    button(item, "Delete").click()
    assert page_log.dialogs == [f"confirm: {CONFIRM}"]
    expect(item).to_be_visible()
    assert live.status(mine) == "pending"

    page_log.dialog_answers.append(True)
    with page.expect_response(is_change("DELETE")) as deleted:
        button(item, "Delete").click()
    assert deleted.value.status == 204
    assert page_log.dialogs == [f"confirm: {CONFIRM}"] * 2
    expect(item).to_have_count(0)
    expect(status_line(page)).to_have_text(DELETED)
    expect(widget(page).get_by_role("heading", level=2)).to_be_focused()
    live.wait_for_status(mine, None)
    assert own_ids(page, live, key) == []

    own_script: list[str] = []
    page.on("request", lambda r: own_script.append(r.url) if "/widget/own." in r.url else None)
    page.reload()
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("No comments yet.")
    expect(widget(page).locator("li.csv-comment")).to_have_count(0)
    # Nothing of the reader's own is left on this page: nothing kept, own.js not fetched.
    assert own_store(page) == {}
    assert own_script == []


# --- 2. The edit window ----------------------------------------------------------------------


def test_edit_and_delete_go_when_the_window_closes_and_the_comment_with_them(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    page.clock.install()
    url = host.url("thread.html", page=key)
    answer = post_own(page, url, "Soon out of my hands.")
    item = comment(page, answer["id"])
    expect(button(item, "Edit")).to_be_visible()
    window = page.evaluate("until => Date.parse(until) - Date.now()", answer["editable_until"])
    assert window > 60_000, window

    # The page stays open past the window: the timer takes Edit and Delete away.
    page.clock.fast_forward(window + 1_000)
    expect(item.locator(".csv-own")).to_have_count(0)
    expect(item.get_by_role("button")).to_have_count(0)
    expect(item.locator(".csv-body")).to_have_text("Soon out of my hands.")

    # The next visit neither shows it nor keeps it.
    page.reload()
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("No comments yet.")
    expect(widget(page).locator("li.csv-comment")).to_have_count(0)
    assert own_store(page) == {}
    assert live.status(answer["id"]) == "pending"


def test_an_entry_already_past_its_window_is_dropped_on_the_next_visit(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    url = host.url("thread.html", page=key)
    kept = post_own(page, url, "Still mine.")
    expired = post_own(page, url, "No longer mine.")
    change_entry(page, group(live, key), expired["id"], editable_until="2000-01-01T00:00:00.000Z")

    page.reload()
    expect(comment(page, kept["id"])).to_be_visible()
    expect(comment(page, expired["id"])).to_have_count(0)
    assert list(own_store(page)[group(live, key)]) == [str(kept["id"])]


@pytest.mark.parametrize("action", ["Save", "Delete"])
def test_a_refused_token_takes_edit_and_delete_away_and_says_why(
    live: Live, page: Page, host: HostSite, key: str, page_log: PageLog, action: str
) -> None:
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(403))
    url = host.url("thread.html", page=key)
    answer = post_own(page, url, "Mine, with a token gone wrong.")
    mine = answer["id"]
    change_entry(page, group(live, key), mine, token="not-the-edit-token")
    page.reload()
    item = comment(page, mine)
    expect(button(item, "Edit")).to_be_visible()

    if action == "Save":
        button(item, "Edit").click()
        editor(item).fill("Changed with another token.")
    else:
        page_log.dialog_answers.append(True)
    with page.expect_response(is_change("PATCH" if action == "Save" else "DELETE")) as refused:
        button(item, action).click()

    response = refused.value
    assert response.status == 403, response.text()
    expect(status_line(page)).to_have_text(response.json()["detail"])
    expect(editor(item)).to_have_count(0)
    expect(item.get_by_role("button")).to_have_count(0)
    expect(item.locator(".csv-body")).to_have_text("Mine, with a token gone wrong.")
    expect(item).to_be_focused()
    assert own_ids(page, live, key) == []
    stored = live.comment(mine) or {}
    assert (stored["body"], stored["status"]) == ("Mine, with a token gone wrong.", "pending")


# --- 3. An approved comment of one's own -----------------------------------------------------


def test_editing_an_approved_comment_sends_it_back_to_moderation(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    url = host.url("thread.html", page=key)
    answer = post_own(page, url, "Approved soon.")
    mine = answer["id"]
    live.approve(mine)
    page.reload()
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("1 comment")
    item = comment(page, mine)
    # In the thread for everyone: not marked, but still the reader's to change.
    expect(item).to_have_class("csv-comment")
    expect(item.locator(".csv-yours")).to_have_count(0)
    expect(item.locator(".csv-own")).to_contain_text(window_text(page, answer["editable_until"]))

    response = save_edit(page, item, "Approved, then changed.")
    assert response.status == 200, response.text()
    assert response.json()["status"] == "pending"
    expect(item.locator(".csv-body")).to_have_text("Approved, then changed.")
    expect(status_line(page)).to_have_text(AWAITING)
    assert live.status(mine) == "pending"

    page.reload()
    expect(widget(page).get_by_role("heading", level=2)).to_have_text("No comments yet.")
    assert_marked_pending(item)
    expect(item.locator(".csv-body")).to_have_text("Approved, then changed.")


def test_an_approved_reply_locks_the_comment(
    live: Live, page: Page, host: HostSite, key: str, page_log: PageLog
) -> None:
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(409))
    url = host.url("thread.html", page=key)
    mine = post_own(page, url, "Answered soon.")["id"]
    live.approve(mine)
    page.reload()
    item = comment(page, mine)
    expect(button(item, "Edit")).to_be_visible()
    # Someone else's reply is approved while the page is open.
    reply = submit(live, key, body="An answer.", parent_id=mine, author_name="Grace Hopper")
    live.approve(reply)

    response = save_edit(page, item, "Changed after the answer.")
    assert response.status == 409, response.text()
    expect(status_line(page)).to_have_text(response.json()["detail"])
    expect(editor(item)).to_have_count(0)
    expect(item.locator(".csv-own")).to_have_count(0)
    expect(item.locator(".csv-body")).to_have_text("Answered soon.")
    assert own_ids(page, live, key) == []
    stored = live.comment(mine) or {}
    assert (stored["body"], stored["status"]) == ("Answered soon.", "approved")


# --- 4. A bad text ---------------------------------------------------------------------------


def test_the_services_error_for_an_edited_text_shows_under_the_field(
    live: Live, page: Page, host: HostSite, key: str, page_log: PageLog
) -> None:
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(422))
    url = host.url("thread.html", page=key)
    mine = post_own(page, url, "A text to spoil.")["id"]
    item = comment(page, mine)
    messages = []
    for bad in ("", "x" * (MAX_BODY_LENGTH + 1)):
        button(item, "Edit").click()
        box = editor(item)
        # Past the field's maxlength: a browser that lets it through, or a script.
        box.evaluate("(box, text) => { box.value = text; }", bad)
        with page.expect_response(is_change("PATCH")) as answer:
            button(item, "Save").click()
        response = answer.value
        assert response.status == 422, response.text()
        message = response.json()["errors"]["body"][0]
        messages.append(message)
        expect(box).to_have_attribute("aria-invalid", "true")
        expect(box).to_have_accessible_description(message)
        error = item.locator(f"[id='{box.get_attribute('aria-describedby')}']")
        expect(error).to_be_visible()
        expect(error).to_have_text(message)
        expect(box).to_be_focused()
        assert focused(page) == "textarea body"
        expect(button(item, "Save")).not_to_have_attribute("aria-disabled", "true")
        button(item, "Cancel").click()
        expect(item.locator(".csv-body")).to_have_text("A text to spoil.")
    assert messages[0] != messages[1], messages
    assert (live.comment(mine) or {})["body"] == "A text to spoil."


# --- 5. No payload runs through an edit ------------------------------------------------------


@pytest.mark.parametrize("markup", ["text", "markdown"])
def test_no_payload_runs_through_an_edit(
    live: Live, page: Page, host: HostSite, key: str, markdown_site: str, markup: str
) -> None:
    url = host.url("thread.html", page=key, **({} if markup == "text" else {"site": markdown_site}))
    mine = post_own(page, url, "A harmless start.")["id"]
    item = comment(page, mine)
    body = item.locator(".csv-body")
    for payload in [*PREVIEW_XSS, *XSS_BODIES]:
        response = save_edit(page, item, payload)
        assert response.status == 200, response.text()
        expect(body).to_have_text(payload)  # shown as the text it is
        links = body.locator("a")
        for index in range(links.count()):
            links.nth(index).hover()
        found = body.evaluate(
            """b => ({
              tags: [...b.querySelectorAll("*")].map(e => e.tagName.toLowerCase()),
              handlers: [...b.querySelectorAll("*")].flatMap(e => [...e.attributes])
                .map(a => a.name).filter(n => n.startsWith("on")),
              hrefs: [...b.querySelectorAll("a")].map(a => a.getAttribute("href")),
            })"""
        )
        assert set(found["tags"]) <= BODY_TAGS, (payload, found)
        assert found["handlers"] == [], payload
        assert all(href.startswith(("http://", "https://")) for href in found["hrefs"]), found
    assert page.evaluate("[typeof window.__x, typeof window.__xss]") == ["undefined"] * 2
    assert page.evaluate("window.__cspViolations") == []
    assert (live.comment(mine) or {})["body"] == XSS_BODIES[-1]


TAMPERED = (
    '<p onclick="window.__x=1">Kept <em>emphasis</em><img src=x onerror="window.__x=1">'
    '<a href="javascript:window.__x=1">bad link</a> <a href="https://ok.example/">good link</a>'
    '</p><script>window.__x=1</script><iframe srcdoc="<script>parent.__x=1</script>">'
    "</iframe><style>*{display:none}</style>"
)


def test_a_tampered_edit_answer_is_rebuilt_from_the_allow_list(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    """The widget does not trust the service's body_html blindly (a proxy may have changed
    it): what it shows of an edit's answer is rebuilt from its allow-list."""
    mine = post_own(page, host.url("thread.html", page=key), "Before.")["id"]

    def tamper(route: Route) -> None:
        answer = route.fetch()
        data = answer.json()
        data["body_html"] = TAMPERED
        route.fulfill(response=answer, json=data)

    page.route(lambda url: url.endswith(f"/comments/{mine}"), tamper)
    item = comment(page, mine)
    assert save_edit(page, item, "After.").status == 200
    body = item.locator(".csv-body")
    # Elements off the list give up their text only (a script's is inert text here).
    expect(body).to_contain_text("Kept emphasisbad link good link")
    expect(body.locator("em")).to_have_text("emphasis")
    expect(body.locator("a")).to_have_count(1)
    expect(body.locator("a")).to_have_attribute("href", "https://ok.example/")
    assert {"nofollow", "ugc", "noopener"} <= set(
        (body.locator("a").get_attribute("rel") or "").split()
    )
    tags = body.evaluate("b => [...b.querySelectorAll('*')].map(e => e.tagName.toLowerCase())")
    assert set(tags) <= BODY_TAGS, tags
    assert body.evaluate("b => b.querySelector('[onclick], [onerror]')") is None
    expect(page.locator("main")).to_be_visible()  # no style of the payload reached the page
    assert page.evaluate("typeof window.__x") == "undefined"
    assert page.evaluate("window.__cspViolations") == []


# --- 6. Where one's own pending comments go --------------------------------------------------


def test_a_pending_reply_sits_under_its_parent_and_newest_first_puts_mine_on_top(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    [first, second] = approved(live, key, 2, author_name="Grace Hopper")
    url = host.url("thread.html", page=key)
    container = open_thread(page, url, "2 comments")
    button(comment(page, first), "Reply to Grace Hopper").click()
    fill_form(page, "My pending reply.")
    response = post(page)
    assert response.status == 201, response.text()
    reply = response.json()["id"]
    nested = comment(page, first).locator(f"ol.csv-replies > li#comment-{reply}")
    expect(nested).to_be_visible()
    assert_marked_pending(nested)
    fill_form(page, "My pending comment.")
    response = post(page)
    assert response.status == 201, response.text()
    top = response.json()["id"]
    expect(comment(page, top)).to_be_visible()
    assert shown_ids(page) == [first, reply, second, top]

    page.reload()
    expect(nested).to_be_visible()
    assert_marked_pending(nested)
    assert shown_ids(page) == [first, reply, second, top]
    # Still two comments for everyone: one's own pending ones are not counted.
    expect(container.get_by_role("heading", level=2)).to_have_text("2 comments")

    with page.expect_response(lambda r: "sort=newest" in r.url):
        container.get_by_role("button", name="Newest first").click()
    expect(container.locator("li.csv-comment")).to_have_count(4)
    assert shown_ids(page) == [top, second, first, reply]
    page.reload()
    expect(container.locator("li.csv-comment")).to_have_count(4)
    assert shown_ids(page) == [top, second, first, reply]
    assert_marked_pending(comment(page, top))


def test_a_pending_comment_comes_after_every_slice_of_a_long_thread(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    ids = approved(live, key, PAGE_SIZE + 1)
    url = host.url("thread.html", page=key)
    container = open_thread(page, url, f"{PAGE_SIZE + 1} comments")
    more = container.get_by_role("button", name="Load more comments")
    fill_form(page, "Mine, the newest.")
    earlier = post(page).json()["id"]
    expect(comment(page, earlier)).to_be_visible()

    # Next visit: not shown until the thread's last slice is, then last.
    page.reload()
    expect(container.locator("li.csv-comment")).to_have_count(PAGE_SIZE)
    expect(comment(page, earlier)).to_have_count(0)
    more.click()
    expect(container.locator("li.csv-comment")).to_have_count(PAGE_SIZE + 2)
    assert shown_ids(page) == [*ids, earlier]

    # Posted while later slices are still to load: it must not end up amid them.
    page.reload()
    expect(container.locator("li.csv-comment")).to_have_count(PAGE_SIZE)
    fill_form(page, "Mine again, newer still.")
    later = post(page).json()["id"]
    expect(comment(page, later)).to_be_visible()
    more.click()
    expect(container.locator("li.csv-comment")).to_have_count(PAGE_SIZE + 3)
    assert shown_ids(page) == [*ids, earlier, later]


# --- 7. "Save my name…" ----------------------------------------------------------------------


@pytest.mark.parametrize("save", [False, True], ids=["unsaved", "saved"])
def test_the_name_is_kept_only_when_the_reader_asks(
    live: Live, page: Page, host: HostSite, key: str, save: bool
) -> None:
    url = host.url("thread.html", page=key)
    open_thread(page, url)
    fill_form(page, "Whose is this?", name="Grace Hopper", email="grace@example.com")
    widget(page).get_by_role("checkbox", name=SAVE).set_checked(save)
    response = post(page)
    assert response.status == 201, response.text()
    mine = response.json()["id"]
    item = comment(page, mine)
    expect(item.locator(".csv-author")).to_have_text("Grace Hopper")

    [entry] = own_store(page)[group(live, key)].values()
    assert entry["author_name"] is None and entry["author_url"] is None, entry
    assert "author_email" not in entry
    kept = stored_author(page)
    assert ("Grace Hopper" in kept, "grace@example.com" in kept) == (save, save), kept

    page.reload()
    assert_marked_pending(item)
    author = item.locator(".csv-author")
    if save:
        expect(author).to_have_text("Grace Hopper")
    else:
        expect(author).not_to_contain_text("Grace Hopper")
    expect(item.locator(".csv-body")).to_have_text("Whose is this?")


# --- 8. Accessibility ------------------------------------------------------------------------


def test_axe_finds_no_serious_violations_in_own_comments(
    live: Live, page: Page, host: HostSite, key: str, page_log: PageLog
) -> None:
    [other] = approved(live, key, 1)
    url = host.url("thread.html", page=key)
    open_thread(page, url, "1 comment")
    fill_form(page, "Mine, to check.")
    mine = post(page).json()["id"]
    expect(comment(page, mine)).to_be_visible()
    page.reload()
    item = comment(page, mine)
    assert_marked_pending(item)
    assert_accessible(page, "own pending comment shown")

    button(item, "Edit").click()
    expect(editor(item)).to_be_focused()
    assert_accessible(page, "own comment being edited")
    button(item, "Cancel").click()

    page_log.dialog_answers.append(True)
    button(item, "Delete").click()
    expect(status_line(page)).to_have_text(DELETED)
    expect(item).to_have_count(0)
    expect(comment(page, other)).to_be_visible()
    assert_accessible(page, "after deleting one's own comment")

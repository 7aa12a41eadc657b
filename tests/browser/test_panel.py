"""The moderation panel in a real Chromium: login, queue actions, keyboard, no-JS, XSS, headers.

All tests share one server; each works on comments (and page keys) of its own and reads the
expected numbers from the moderation API at the time it needs them.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Locator, Page, Response, expect

from tests.browser.conftest import (
    ADMIN_EMAIL,
    BLOG_MODERATOR_EMAIL,
    PASSWORD,
    Live,
    PageLog,
    Pages,
    log_in,
    path_of,
)

STATUSES = ("pending", "approved", "rejected", "spam")
# Chromium reports every HTTP error status, the main document's included, as a console error.
HTTP_STATUS_ERROR = r"Failed to load resource: the server responded with a status of {}"


def tab(page: Page, status: str) -> Locator:
    return page.locator(f"nav.status-tabs a[data-status={status}]")


def counts(page: Page) -> dict[str, int]:
    """The numbers shown in the status tabs."""
    return {
        status: int(tab(page, status).locator("span.count").inner_text().strip())
        for status in STATUSES
    }


def expect_counts(page: Page, expected: dict[str, int]) -> None:
    for status, number in expected.items():
        expect(tab(page, status).locator("span.count")).to_have_text(str(number))


def item(page: Page, comment_id: int) -> Locator:
    return page.locator(f"article.comment#comment-{comment_id}")


def flash(page: Page, text: str) -> Locator:
    return page.locator(".flash[role=status]", has_text=text)


def shown_ids(page: Page) -> list[int]:
    return [
        int(value)
        for value in page.locator("article.comment").evaluate_all(
            "items => items.map(item => item.dataset.id)"
        )
    ]


def wait_for_dialogs(page: Page, page_log: PageLog, number: int) -> None:
    """Let the page run until it has opened ``number`` dialogs (at most a few seconds)."""
    for _ in range(100):
        if len(page_log.dialogs) >= number:
            break
        page.wait_for_timeout(30)
    assert len(page_log.dialogs) == number, page_log.dialogs


def test_login_with_a_generic_error_then_the_pending_queue(
    live: Live, page: Page, page_log: PageLog
) -> None:
    # A refused login answers 401; Chromium logs that status as a console error.
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(401))
    mine = live.submit("/login-queue", body="Waiting for a moderator.")

    page.goto("/moderation/")
    assert path_of(page.url) == "/moderation/login"
    form = page.locator("form#login-form")
    expect(form).to_have_attribute("method", "post")
    expect(form.locator("input[type=hidden][name=csrf_token]")).to_have_count(1)

    alerts = []
    for email, password in ((ADMIN_EMAIL, "not the password"), ("nobody@example.com", PASSWORD)):
        form.get_by_label("Email").fill(email)
        form.get_by_label("Password").fill(password)
        with page.expect_navigation():
            form.get_by_role("button", name="Log in").click()
        assert path_of(page.url) == "/moderation/login"
        alert = page.get_by_role("alert")
        expect(alert).to_have_text("Invalid email or password.")
        alerts.append(alert.inner_text())
        expect(form.locator("input[name=password]")).to_have_value("")
        expect(page.locator("nav.status-tabs")).to_have_count(0)
    assert alerts[0] == alerts[1], "the message must not say which part was wrong"

    form.get_by_label("Email").fill(ADMIN_EMAIL)
    form.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        form.get_by_role("button", name="Log in").click()
    assert path_of(page.url) == "/moderation/"
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(tab(page, "pending")).to_have_attribute("aria-current", "page")
    for status in STATUSES:
        expect(tab(page, status).locator("span.count")).to_have_text(str(live.count(status)))
    expect(item(page, mine)).to_be_visible()
    expect(item(page, mine)).to_have_attribute("data-status", "pending")


def test_approve_one_comment_then_undo(live: Live, logged_in: Page) -> None:
    page = logged_in
    key = "/approve-one"
    mine = live.submit(key, body="Please approve me.", author_url="https://ada.example/")

    page.goto("/moderation/")
    before = counts(page)
    article = item(page, mine)
    expect(article).to_have_attribute("data-id", str(mine))
    expect(article.locator("input.select[type=checkbox][name=ids]")).to_have_value(str(mine))
    expect(article.locator(".author-name")).to_have_text("Ada Lovelace")
    expect(article.locator(".author-email")).to_have_text("ada@example.com")
    expect(article.locator("a.author-url")).to_have_attribute("href", "https://ada.example/")
    expect(article.locator("a.page-link")).to_have_text(f"Article {key}")
    expect(article.locator("a.page-link")).to_have_attribute("href", live.url(key))
    expect(article.locator("time[datetime]")).to_have_attribute("title", re.compile(r"\d"))
    expect(article.locator(".ip")).to_have_count(1)
    expect(article.locator(".parent-excerpt")).to_have_count(0)
    expect(article.locator(".body")).to_have_text("Please approve me.")
    for action in ("approve", "reject", "spam", "delete"):
        expect(article.locator(f"button.act[data-action={action}]")).to_have_count(1)

    article.locator("button.act[data-action=approve]").click()
    message = flash(page, "Approved 1 comment.")
    expect(message).to_be_visible()
    expect(item(page, mine)).to_have_count(0)
    expect_counts(page, {"pending": before["pending"] - 1, "approved": before["approved"] + 1})
    live.wait_for_status(mine, "approved")
    assert mine in live.thread(key)

    message.locator("form.undo").get_by_role("button", name="Undo").click()
    live.wait_for_status(mine, "pending")
    assert mine not in live.thread(key)
    page.goto("/moderation/")
    expect(item(page, mine)).to_be_visible()
    expect_counts(page, before)


def test_bulk_reject_a_whole_page(live: Live, logged_in: Page) -> None:
    page = logged_in
    key = "/bulk-reject"
    ids = [live.submit(key, body=f"Bulk comment {n}") for n in range(25)]
    newest_first = ids[::-1]

    page.goto("/moderation/")
    filters = page.locator("form#filters")
    filters.locator("input[name=page]").fill(key)
    with page.expect_navigation():
        filters.locator("input[name=page]").press("Enter")
    expect(tab(page, "pending")).to_have_attribute("aria-current", "page")
    expect(page.locator("article.comment")).to_have_count(20)
    assert shown_ids(page) == newest_first[:20]
    expect(page.locator("a[rel=next]")).to_have_text("Older")

    bulk = page.locator("form#bulk-form")
    expect(bulk.locator("input[type=hidden][name=csrf_token]")).to_have_count(1)
    bulk.locator("input#select-all").check()
    expect(bulk.locator("input.select:checked")).to_have_count(20)
    bulk.locator("button[name=action][value=reject]").click()

    expect(flash(page, "Rejected 20 comments.")).to_be_visible()
    assert sorted(live.ids("rejected", page=key)) == sorted(newest_first[:20])
    assert sorted(live.ids("pending", page=key)) == sorted(newest_first[20:])
    # Back on the same filtered list: the five that are left, and no further page.
    expect(page.locator("form#filters input[name=page]")).to_have_value(key)
    expect(page.locator("article.comment")).to_have_count(5)
    assert shown_ids(page) == newest_first[20:]
    expect(page.locator("a[rel=next]")).to_have_count(0)


def test_keyboard_moderation_in_place(live: Live, logged_in: Page, page_log: PageLog) -> None:
    page = logged_in
    key = "/keyboard"
    first, second, third, fourth = (live.submit(key, body=f"Keyboard {n}") for n in range(4))

    page.goto("/moderation/")
    assert shown_ids(page)[:4] == [fourth, third, second, first]
    before = counts(page)
    page.evaluate("window.__samePage = 'yes'")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    current = page.locator("article.comment.is-current")

    page.keyboard.press("j")
    expect(current).to_have_attribute("data-id", str(fourth))
    page.keyboard.press("j")
    expect(current).to_have_attribute("data-id", str(third))
    page.keyboard.press("k")
    expect(current).to_have_attribute("data-id", str(fourth))
    expect(current).to_have_count(1)
    expect(item(page, fourth)).to_be_focused()
    page.keyboard.press("x")
    expect(item(page, fourth).locator("input.select")).to_be_checked()

    page.keyboard.press("a")
    expect(item(page, fourth)).to_have_count(0)
    message = flash(page, "Approved 1 comment.")
    expect(message).to_be_visible()
    expect(message.locator("form.undo").get_by_role("button", name="Undo")).to_be_visible()
    expect_counts(page, {"pending": before["pending"] - 1, "approved": before["approved"] + 1})
    live.wait_for_status(fourth, "approved")

    if current.count() == 0:
        page.keyboard.press("j")
    spam_id = int(current.get_attribute("data-id") or 0)
    assert spam_id in (first, second, third)
    page.keyboard.press("s")
    expect(item(page, spam_id)).to_have_count(0)
    expect(page.locator(".flash[role=status] form.undo")).to_be_visible()
    expect_counts(
        page,
        {
            "pending": before["pending"] - 2,
            "approved": before["approved"] + 1,
            "spam": before["spam"] + 1,
        },
    )
    live.wait_for_status(spam_id, "spam")

    # Shortcuts do nothing while typing in a field.
    if current.count() == 0:
        page.keyboard.press("j")
    focused_id = int(current.get_attribute("data-id") or 0)
    search = page.locator("form#filters input[name=q]")
    search.click()
    search.press_sequentially("jjkxasd")
    expect(search).to_have_value("jjkxasd")
    expect(current).to_have_attribute("data-id", str(focused_id))
    expect(item(page, focused_id).locator("input.select")).not_to_be_checked()
    left = [c for c in (first, second, third) if c != spam_id]
    assert [live.status(c) for c in left] == ["pending", "pending"]
    assert page_log.dialogs == []

    # d asks first: dismissed keeps the comment, accepted deletes it.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("d")
    wait_for_dialogs(page, page_log, 1)
    assert page_log.dialogs[0].startswith("confirm")
    expect(item(page, focused_id)).to_be_visible()
    assert live.status(focused_id) == "pending"
    page_log.dialog_answers.append(True)
    page.keyboard.press("d")
    expect(item(page, focused_id)).to_have_count(0)
    live.wait_for_status(focused_id, None)
    wait_for_dialogs(page, page_log, 2)

    assert page.evaluate("window.__samePage") == "yes", "the page was reloaded"
    assert navigations == [], f"the page navigated: {navigations}"
    in_place = counts(page)
    page.reload()
    assert counts(page) == in_place, "the tabs updated in place must match a reload"


def test_in_place_counts_follow_the_filters(live: Live, logged_in: Page) -> None:
    page = logged_in
    live.submit("/elsewhere", site="blog", body="Pending on another site.")
    key = "/filtered-counts"
    # Two bodies: the same comment twice would be refused as a duplicate (DESIGN §7).
    older, newer = live.submit(key, body="The older one."), live.submit(key, body="The newer one.")

    page.goto(f"/moderation/?status=pending&page={key}")
    assert shown_ids(page) == [newer, older]
    page.keyboard.press("j")
    page.keyboard.press("a")
    expect(item(page, newer)).to_have_count(0)
    expect(flash(page, "Approved 1 comment.")).to_be_visible()
    live.wait_for_status(newer, "approved")
    in_place = counts(page)
    page.reload()
    assert counts(page) == in_place, (
        "after an in-place action the tabs must show the same (filtered) numbers a reload shows"
    )


def test_log_out(logged_in: Page, pages: Pages) -> None:
    page = logged_in
    session_cookies = page.context.cookies()
    form = page.locator("form#logout-form")
    expect(form).to_have_attribute("method", "post")
    expect(form).to_have_attribute("action", "/moderation/logout")
    with page.expect_navigation():
        form.get_by_role("button", name="Log out").click()
    assert path_of(page.url) == "/moderation/login"
    expect(page.locator("form#login-form")).to_be_visible()

    page.goto("/moderation/")
    assert path_of(page.url) == "/moderation/login"
    expect(page.locator("nav.status-tabs")).to_have_count(0)

    # A copy of the cookie taken before logging out is worthless too.
    replay = pages.open()
    replay.context.add_cookies(session_cookies)  # type: ignore[arg-type]
    replay.goto("/moderation/")
    assert path_of(replay.url) == "/moderation/login"


def test_plain_forms_without_javascript(live: Live, pages: Pages) -> None:
    page = pages.open(java_script_enabled=False)
    log_in(page)
    mine = live.submit("/no-js", body="Moderated with plain forms.")
    page.goto("/moderation/")

    with page.expect_navigation():
        item(page, mine).locator("button.act[data-action=approve]").click()
    message = flash(page, "Approved 1 comment.")
    expect(message).to_be_visible()
    expect(item(page, mine)).to_have_count(0)
    live.wait_for_status(mine, "approved")

    with page.expect_navigation():
        message.locator("form.undo").get_by_role("button", name="Undo").click()
    live.wait_for_status(mine, "pending")
    expect(item(page, mine)).to_be_visible()

    item(page, mine).locator("input.select").check()
    with page.expect_navigation():
        page.locator("button[name=action][value=spam]").click()
    expect(page.locator(".flash[role=status] form.undo")).to_be_visible()
    live.wait_for_status(mine, "spam")


# --- XSS --------------------------------------------------------------------------------

EVIL_URL = 'https://x.example/"onmouseover="window.__xss=1'
PAYLOADS = (
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    '<svg onload="window.__xss=1">',
    '"><script>window.__xss=1</script>',
    "</textarea><script>window.__xss=1</script>",
    "{{7*7}}",
    EVIL_URL,
)
XSS_EMAIL = "xss@example.com"
INJECTED = "script:not([src]), [onerror], [onload], [onmouseover], .body img, .body svg, iframe"


def script_sources(response: Response | None) -> list[str]:
    """The ``script-src`` (or, without one, ``default-src``) of the response's CSP."""
    assert response is not None
    policy = response.headers.get("content-security-policy")
    assert policy, f"no Content-Security-Policy on {response.url}"
    directives = {
        parts[0].lower(): parts[1:]
        for parts in (directive.split() for directive in policy.split(";"))
        if parts
    }
    sources = directives.get("script-src", directives.get("default-src"))
    assert sources is not None, f"the CSP of {response.url} does not restrict scripts: {policy}"
    return sources


def assert_inert(page: Page, response: Response | None, page_log: PageLog) -> None:
    """No payload ran, turned into markup, or opened a dialog; the CSP forbids inline script."""
    sources = script_sources(response)
    assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, sources
    url = page.url
    # The payloads aim at links (onmouseover) and at text; links are hovered, never followed.
    links = page.locator("a.author-url, a.page-link, .body a")
    for index in range(links.count()):
        links.nth(index).hover()
    names = page.locator(".author-name")
    for index in range(names.count()):
        names.nth(index).click()
    assert page.url == url
    assert page.evaluate("typeof window.__xss") == "undefined", f"a payload ran on {page.url}"
    assert page.evaluate("window.__cspViolations") == [], page.url
    expect(page.locator(INJECTED)).to_have_count(0)
    assert page_log.dialogs == []


def expect_literal(article: Locator, payload: str, title: str) -> None:
    expect(article.locator(".body")).to_contain_text(payload)
    expect(article.locator(".author-name")).to_have_text(payload)
    expect(article.locator(".page-link")).to_have_text(title)
    expect(article.locator("a.author-url")).to_have_attribute("href", EVIL_URL)


def test_xss_payloads_stay_text(live: Live, logged_in: Page, page_log: PageLog) -> None:
    page = logged_in
    for field in ("author_url", "page_url"):
        refused = live.submit_raw("/xss/refused", **{field: "javascript:window.__xss=1"})
        assert refused.status_code == 422, refused.text
        assert field in refused.json()["errors"]
    assert live.ids("pending", page="/xss/refused") == []

    ids = []
    for number, payload in enumerate(PAYLOADS):
        ids.append(
            live.submit(
                f"/xss/{number}",
                page_title=payload,
                body=payload,
                author_name=payload,
                author_email=XSS_EMAIL,
                author_url=EVIL_URL,
            )
        )
    approved = ids[::2]
    for comment_id in approved:
        live.approve(comment_id)
    reply = live.submit(
        "/xss/0",
        parent_id=ids[0],
        body="{{7*7}} in a reply",
        author_name="Replier",
        author_email=XSS_EMAIL,
    )
    payload_of = dict(zip(ids, PAYLOADS, strict=True))

    for status in ("pending", "approved"):
        response = page.goto(f"/moderation/?status={status}&q={XSS_EMAIL}")
        expect(tab(page, status)).to_have_attribute("aria-current", "page")
        wanted = [c for c in ids if (c in approved) == (status == "approved")]
        for comment_id in wanted:
            expect_literal(item(page, comment_id), payload_of[comment_id], payload_of[comment_id])
        if status == "pending":
            excerpt = item(page, reply).locator(".parent-excerpt")
            expect(excerpt).to_contain_text(PAYLOADS[0])
            expect(item(page, reply).locator(".body")).to_have_text("{{7*7}} in a reply")
        expect(page.locator(".body", has_text="49")).to_have_count(0)
        assert_inert(page, response, page_log)

    for comment_id in [*ids, reply]:
        response = page.goto(f"/moderation/comments/{comment_id}")
        assert response is not None and response.status == 200
        if comment_id == reply:
            expect(page.locator(".body").first).to_contain_text("{{7*7}} in a reply")
        else:
            payload = payload_of[comment_id]
            expect_literal(page.locator(f"article.comment#comment-{comment_id}"), payload, payload)
        stored = live.comment(comment_id)
        assert stored is not None
        events = stored["events"]
        expect(page.locator("ol.history li")).to_have_count(len(events))
        same_author = page.locator("section.same-author")
        for other in [*ids, reply]:
            if other != comment_id:
                expect(
                    same_author.locator(f'a[href="/moderation/comments/{other}"]')
                ).to_have_count(1)
        assert_inert(page, response, page_log)


# --- headers and cookies ------------------------------------------------------------------

SAFE_REFERRER_POLICIES = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}


def assert_security_headers(response: Response | None) -> None:
    assert response is not None
    headers = response.headers
    policy = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, (response.url, policy)
    assert headers.get("x-content-type-options") == "nosniff", response.url
    referrer = headers.get("referrer-policy", "")
    assert referrer in SAFE_REFERRER_POLICIES, (response.url, referrer)


def test_security_headers_and_session_cookie(live: Live, page: Page) -> None:
    assert_security_headers(page.goto("/moderation/login"))
    log_in(page)
    assert_security_headers(page.goto("/moderation/"))
    mine = live.submit("/headers")
    assert_security_headers(page.goto(f"/moderation/comments/{mine}"))

    cookies = {cookie["name"]: cookie for cookie in page.context.cookies(live.base_url)}
    assert set(cookies) == {"commentsvc_session", "commentsvc_device"}, cookies
    for cookie in cookies.values():
        assert cookie["httpOnly"], cookie["name"]
    assert cookies["commentsvc_session"]["sameSite"] == "Lax"
    assert cookies["commentsvc_device"]["sameSite"] == "Strict"


def test_site_limited_moderator_sees_only_their_site(
    live: Live, page: Page, page_log: PageLog
) -> None:
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(404))
    news = live.submit("/scope-news", body="A news comment.")
    blog = live.submit("/scope-blog", site="blog", body="A blog comment.")

    log_in(page, BLOG_MODERATOR_EMAIL)
    expect(item(page, blog)).to_be_visible()
    expect(item(page, news)).to_have_count(0)
    expect(tab(page, "pending").locator("span.count")).to_have_text(
        str(live.count("pending", site="blog"))
    )
    response = page.goto(f"/moderation/comments/{news}")
    assert response is not None and response.status == 404


# --- spam and block this author -----------------------------------------------------------


def test_spam_and_block_this_author_from_the_queue(live: Live, logged_in: Page) -> None:
    """The block form is plain HTML inside the queue's own form (its fields belong to a form
    of their own by the ``form`` attribute): it must work under the panel's CSP."""
    page = logged_in
    key = "/block-author"
    # A domain of its own: blocking it must not catch any other test's comments.
    email = "spammer@block-browser.example"
    mine = live.submit(key, body="Buy cheap things.", author_email=email)
    other = live.submit(key, body="A fine comment.")

    response = page.goto(f"/moderation/?page={key}")
    assert response is not None and response.status == 200
    article = item(page, mine)
    details = article.locator("details.block-author")
    what = details.get_by_role("group", name="Block")
    expect(what).to_be_hidden()
    details.get_by_text("Spam and block this author…").click()
    expect(what).to_be_visible()
    expect(what.get_by_label("Email address")).to_be_checked()
    expect(what.get_by_label("Domain")).not_to_be_checked()
    # The client's address range is offered, never chosen for the moderator.
    expect(what.get_by_label("Address range")).not_to_be_checked()
    what.get_by_label("Domain").check()
    expect(details.get_by_label("This site (news)")).to_be_checked()
    assert page.evaluate("window.__cspViolations") == []
    with page.expect_navigation():
        details.get_by_role("button", name="Mark as spam and block").click()
    assert page.evaluate("window.__cspViolations") == []

    blocked = f"email {email}, domain block-browser.example"
    message = flash(page, f"Marked as spam and blocked on site news: {blocked}.")
    expect(message).to_be_visible()
    expect(message.locator("form.undo").get_by_role("button", name="Undo")).to_be_visible()
    assert path_of(page.url) == "/moderation/"
    expect(page.locator("form#filters input[name=page]")).to_have_value(key)
    expect(item(page, mine)).to_have_count(0)
    expect(item(page, other)).to_be_visible()
    live.wait_for_status(mine, "spam")
    assert live.status(other) == "pending"
    stored = live.comment(mine)
    assert stored is not None
    assert stored["events"][-1]["note"] == f"blocked on site news: {blocked}"

    # The author's next comment is spam; the spam tab shows why.
    again = live.submit(key, body="Buy again.", author_email=email)
    live.wait_for_status(again, "spam")
    page.goto(f"/moderation/?status=spam&page={key}")
    reasons = item(page, again).locator("ul.reasons li.reason")
    expect(reasons).to_have_text(
        ["Blocked email blocklist:email", "Blocked domain blocklist:domain"]
    )
    # "Not spam" in place, from the keyboard: back to pending.
    assert shown_ids(page) == [again, mine]
    page.keyboard.press("j")
    page.keyboard.press("n")
    expect(item(page, again)).to_have_count(0)
    expect(flash(page, "Back to pending: 1 comment.")).to_be_visible()
    live.wait_for_status(again, "pending")

    # The blocklist page lists the entries and removes them (so no other test is caught).
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Blocklist").click()
    assert path_of(page.url) == "/moderation/blocklist"
    for kind, value in (("email", email), ("domain", "block-browser.example")):
        row = page.locator("table.blocklist tbody tr", has_text=value)
        expect(row.locator("td").nth(2)).to_have_text("news")
        expect(row.locator("td").nth(3)).to_have_text(ADMIN_EMAIL)
        with page.expect_navigation():
            row.get_by_role("button", name=f"Remove {kind} {value}").click()
        expect(flash(page, f"Removed {kind} {value} on news from the blocklist.")).to_be_visible()
    expect(
        page.locator("table.blocklist tbody tr", has_text="block-browser.example")
    ).to_have_count(0)
    assert page.evaluate("window.__cspViolations") == []


def test_the_login_note_is_no_success_and_phones_get_no_shortcut_hint(
    live: Live, browser: Browser
) -> None:
    """First-hour review: "Please log in" showed in the green style of a success, and the
    keyboard hint took room on a phone."""
    contexts = {
        "desktop": browser.new_context(base_url=live.base_url),
        "phone": browser.new_context(
            base_url=live.base_url,
            viewport={"width": 360, "height": 740},
            is_mobile=True,
            has_touch=True,
        ),
    }
    hints = {}
    try:
        for name, context in contexts.items():
            page = context.new_page()
            page.goto("/moderation/")
            note = page.locator(".flash", has_text="Please log in to moderate.")
            expect(note).to_have_class(re.compile(r"\bflash-info\b"))
            border = note.evaluate("e => getComputedStyle(e).borderLeftColor")
            accent = page.evaluate(
                "getComputedStyle(document.documentElement).getPropertyValue('--accent')"
            )
            assert border == page.evaluate(
                "c => { const e = document.createElement('i'); e.style.color = c;"
                " document.body.append(e); const v = getComputedStyle(e).color;"
                " e.remove(); return v; }",
                accent.strip(),
            )
            log_in(page)
            hints[name] = page.locator(".shortcuts-help").is_visible()
    finally:
        for context in contexts.values():
            context.close()
    assert hints == {"desktop": True, "phone": False}

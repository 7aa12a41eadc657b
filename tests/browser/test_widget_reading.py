"""Reading a thread in the widget (DESIGN §10), in a real Chromium on a host page of another
origin: the order switch (remembered per site), permalinks to ``#comment-{id}`` (further slices
loaded until found), and Write / Preview on a Markdown site (the server's sanitized HTML, rebuilt
by the widget's allow-list: no payload runs)."""

# ruff: noqa: F811 (tests take the fixtures imported from test_widget.py as arguments)
from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Live
from tests.browser.test_widget import (  # noqa: F401 (host, host_pages, key, page: fixtures)
    PAGE_SIZE,
    SITE,
    approved,
    assert_accessible,
    bulk,
    comment,
    host,
    host_pages,
    key,
    open_thread,
    page,
    submit,
    textbox,
    widget,
)
from tests.support.databases import run_databases
from tests.support.host_pages import HostSite
from tests.support.service import run_cli, service_env

pytestmark = pytest.mark.browser

MARKDOWN_SITE = "widget-md"  # host pages show it with ?site=widget-md
NOT_VISIBLE = "This comment is not visible (yet)."
PREVIEW_XSS = [
    "<img src=x onerror=window.__x=1>",
    "[a](javascript:window.__x=1)",
    "<script>window.__x=1</script>",
    '"><svg onload=window.__x=1>',
]


def shown_ids(page: Page) -> list[int]:
    return [
        int(i)
        for i in widget(page)
        .locator("li.csv-comment")
        .evaluate_all("items => items.map(item => item.dataset.id)")
    ]


@pytest.fixture(scope="module")
def markdown_site(live: Live, host: HostSite) -> Iterator[str]:
    """A second site for the host pages' origin, its comments written in Markdown, set with
    the CLI on the live server's database (as the ``live`` fixture made it)."""
    env = service_env(
        run_databases().url(live.log.parent / "panel.db"),
        COMMENTSVC_ENV="production",
        COMMENTSVC_SESSION_COOKIE_SECURE="false",
    )
    run_cli(env, "sites", "add", MARKDOWN_SITE, "--origin", host.origin)
    run_cli(env, "sites", "set", MARKDOWN_SITE, "--markup", "markdown")
    yield MARKDOWN_SITE


# --- Order ------------------------------------------------------------------------------


def test_the_sort_switch_shows_newest_first_and_is_remembered(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    [first, second, third] = approved(live, key, 3)
    reply = submit(live, key, body="A reply to the first.", parent_id=first)
    bulk(live, [reply])
    url = host.url("thread.html", page=key)
    container = open_thread(page, url, "4 comments")
    group = container.get_by_role("group", name="Sort comments")
    oldest = group.get_by_role("button", name="Oldest first")
    newest = group.get_by_role("button", name="Newest first")
    expect(oldest).to_have_attribute("aria-pressed", "true")
    expect(newest).to_have_attribute("aria-pressed", "false")
    assert shown_ids(page) == [first, reply, second, third]
    assert_accessible(page, "the sort switch, oldest first")

    with page.expect_response(lambda r: "sort=newest" in r.url):
        newest.click()
    expect(newest).to_have_attribute("aria-pressed", "true")
    expect(oldest).to_have_attribute("aria-pressed", "false")
    expect(container.locator("li.csv-comment")).to_have_count(4)
    assert shown_ids(page) == [third, second, first, reply]
    expect(newest).to_be_focused()
    assert_accessible(page, "the sort switch, newest first")

    page.reload()
    expect(container.get_by_role("heading", level=2)).to_have_text("4 comments")
    expect(newest).to_have_attribute("aria-pressed", "true")
    expect(container.locator("li.csv-comment")).to_have_count(4)
    assert shown_ids(page) == [third, second, first, reply]

    with page.expect_response(lambda r: "sort=oldest" in r.url):
        oldest.click()
    expect(oldest).to_have_attribute("aria-pressed", "true")
    expect(container.locator("li.csv-comment")).to_have_count(4)
    assert shown_ids(page) == [first, reply, second, third]


def test_a_late_answer_in_the_old_order_is_dropped(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    ids = approved(live, key, 3)
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    container = open_thread(page, host.url("thread.html", page=key), "3 comments")
    # The old order's answer arrives after the new one's.
    page.route("**/comments?sort=oldest*", hold)
    container.get_by_role("button", name="Newest first").click()
    expect(container.locator("li.csv-comment")).to_have_count(3)
    container.get_by_role("button", name="Oldest first").click()
    page.wait_for_timeout(100)
    assert held, "the oldest-first request was not held"
    container.get_by_role("button", name="Newest first").click()
    expect(container.locator("li.csv-comment")).to_have_count(3)
    held[0].continue_()
    page.wait_for_timeout(300)
    assert shown_ids(page) == ids[::-1]
    expect(container.locator("li.csv-comment")).to_have_count(3)


def test_the_sort_switch_is_hidden_below_two_comments(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    approved(live, key, 1)
    container = open_thread(page, host.url("thread.html", page=key), "1 comment")
    expect(container.get_by_role("group", name="Sort comments")).to_be_hidden()


# --- Permalinks -----------------------------------------------------------------------------


def test_a_permalink_beyond_the_first_slice_is_loaded_focused_and_highlighted(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    total = 2 * PAGE_SIZE + 3
    ids = approved(live, key, total)
    target = ids[-2]  # in the third slice
    url = host.url("thread.html", page=key)
    page.goto(f"{url}#comment-{target}")
    shown = comment(page, target)
    expect(shown).to_be_focused()
    expect(shown).to_have_class("csv-comment csv-target")
    expect(shown).to_have_attribute("tabindex", "-1")
    expect(shown).to_be_in_viewport()
    expect(widget(page).locator("li.csv-comment")).to_have_count(total)
    # It flashes, unless the reader asks for less motion; the outline stays either way.
    article = shown.locator("article")
    assert article.evaluate("a => getComputedStyle(a).animationName") == "csv-flash"
    page.emulate_media(reduced_motion="reduce")
    assert article.evaluate("a => getComputedStyle(a).animationName") == "none"
    assert article.evaluate("a => getComputedStyle(a).outlineStyle") == "solid"

    # Its time links to it on the host page; following another's link highlights that one.
    other = comment(page, ids[0])
    link = other.locator("a.csv-link")
    expect(link).to_have_attribute("href", f"{url}#comment-{ids[0]}")
    assert {"nofollow", "ugc", "noopener"} <= set((link.get_attribute("rel") or "").split())
    link.click()
    expect(other).to_be_focused()
    expect(other).to_have_class("csv-comment csv-target")
    expect(shown).to_have_class("csv-comment")


@pytest.mark.parametrize("which", ["pending", "unknown"])
def test_a_permalink_to_a_comment_not_shown_says_so(
    live: Live, page: Page, host: HostSite, key: str, which: str
) -> None:
    ids = approved(live, key, PAGE_SIZE + 1)
    target = submit(live, key, body="Not yet approved.") if which == "pending" else ids[-1] + 10_000
    page.goto(host.url("thread.html", page=key) + f"#comment-{target}")
    container = widget(page)
    expect(container.get_by_role("alert")).to_have_text(NOT_VISIBLE)
    expect(container.locator("li.csv-comment")).to_have_count(PAGE_SIZE + 1)
    expect(comment(page, target)).to_have_count(0)


def test_a_hashchange_to_a_permalink_is_followed(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    ids = approved(live, key, 3)
    open_thread(page, host.url("thread.html", page=key), "3 comments")
    page.evaluate(f"location.hash = '#comment-{ids[1]}'")
    expect(comment(page, ids[1])).to_be_focused()
    expect(comment(page, ids[1])).to_have_class("csv-comment csv-target")


# --- Write / Preview ------------------------------------------------------------------------


def test_a_text_site_has_no_preview(page: Page, host: HostSite, key: str) -> None:
    container = open_thread(page, host.url("thread.html", page=key), "No comments yet.")
    expect(container.get_by_role("tablist")).to_have_count(0)
    expect(textbox(page, "Comment")).to_be_visible()


def test_preview_on_a_markdown_site(
    live: Live, page: Page, host: HostSite, key: str, markdown_site: str
) -> None:
    container = open_thread(
        page, host.url("thread.html", page=key, site=markdown_site), "No comments yet."
    )
    write = container.get_by_role("tab", name="Write")
    preview = container.get_by_role("tab", name="Preview")
    expect(write).to_have_attribute("aria-selected", "true")
    expect(preview).to_have_attribute("aria-selected", "false")
    expect(container).to_contain_text("Markdown: *italic*")
    assert_accessible(page, "Markdown site, Write tab")

    preview.click()
    panel = container.get_by_role("tabpanel", name="Preview")
    expect(panel).to_have_text("Nothing to preview.")
    expect(textbox(page, "Comment")).to_be_hidden()

    write.click()
    expect(textbox(page, "Comment")).to_be_visible()
    textbox(page, "Comment").fill("Some *x* and **y**.")
    with page.expect_response(lambda r: r.url.endswith(f"/sites/{markdown_site}/preview")):
        preview.click()
    expect(panel.locator("em")).to_have_text("x")
    expect(panel.locator("strong")).to_have_text("y")
    expect(preview).to_have_attribute("aria-selected", "true")
    expect(write).to_have_attribute("aria-selected", "false")
    assert_accessible(page, "Markdown site, Preview tab")

    # Posting from the Preview tab brings the text back into view (errors show there).
    container.get_by_role("button", name="Post Comment", exact=True).click()
    expect(write).to_have_attribute("aria-selected", "true")
    expect(textbox(page, "Comment")).to_be_visible()
    expect(textbox(page, "Name")).to_have_attribute("aria-invalid", "true")

    # The arrow keys move between the tabs, and select them.
    write.focus()
    page.keyboard.press("ArrowRight")
    expect(preview).to_be_focused()
    expect(preview).to_have_attribute("aria-selected", "true")
    expect(panel.locator("em")).to_have_text("x")
    page.keyboard.press("ArrowLeft")
    expect(write).to_be_focused()
    expect(textbox(page, "Comment")).to_be_visible()


def test_a_markdown_sites_thread_shows_its_emphasis(
    live: Live, page: Page, host: HostSite, key: str, markdown_site: str
) -> None:
    body = "Some *x*, **y** and `code`.\n\n1. one\n\n- two"
    written = live.submit(key, site=markdown_site, page_url=None, body=body)
    bulk(live, [written])
    open_thread(page, host.url("thread.html", page=key, site=markdown_site), "1 comment")
    shown = comment(page, written).locator(".csv-body")
    expect(shown.locator("em")).to_have_text("x")
    expect(shown.locator("code")).to_have_text("code")
    expect(shown.locator("ol > li")).to_have_text("one")
    # Shown as such: the widget's reset of fonts must not flatten them.
    expect(shown.locator("em")).to_have_css("font-style", "italic")
    expect(shown.locator("strong")).to_have_css("font-weight", "700")
    assert "monospace" in shown.locator("code").evaluate("e => getComputedStyle(e).fontFamily")
    expect(shown.locator("ol")).to_have_css("list-style-type", "decimal")
    expect(shown.locator("ul")).to_have_css("list-style-type", "disc")


def test_preview_runs_no_payload(
    live: Live, page: Page, host: HostSite, key: str, markdown_site: str
) -> None:
    container = open_thread(
        page, host.url("thread.html", page=key, site=markdown_site), "No comments yet."
    )
    write = container.get_by_role("tab", name="Write")
    preview = container.get_by_role("tab", name="Preview")
    panel = container.get_by_role("tabpanel", name="Preview")
    for payload in PREVIEW_XSS:
        write.click()
        textbox(page, "Comment").fill(payload)
        with page.expect_response(lambda r: r.url.endswith("/preview")) as answer:
            preview.click()
        assert answer.value.status == 200, answer.value.text()
        expect(panel).to_have_text(payload)  # shown as the text it is
        links = panel.locator("a")
        for index in range(links.count()):
            href = links.nth(index).get_attribute("href") or ""
            assert href.startswith(("http://", "https://")), href
        found = panel.evaluate(
            """p => ({
              tags: [...p.querySelectorAll("*")].map(e => e.tagName.toLowerCase()),
              handlers: [...p.querySelectorAll("*")].flatMap(e => [...e.attributes])
                .map(a => a.name).filter(n => n.startsWith("on")),
            })"""
        )
        assert set(found["tags"]) <= {"p", "br", "em", "strong", "code", "a"}, found
        assert found["handlers"] == []
    page.wait_for_timeout(200)
    assert page.evaluate("typeof window.__x") == "undefined", "a payload ran"
    assert page.evaluate("window.__cspViolations") == []

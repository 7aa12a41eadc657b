"""The widget as a site owner sets it up, in a real Chromium against a real gunicorn.

A page on an origin the site does not have, or naming a site that does not exist, tells the
site owner why in the console; the reader sees one line under the heading. The widget speaks
the form's own words after a refused post, writes in the page's font, lines up with the
article column, and the README's theming snippet reads well in both colour schemes.

The host pages, fixtures and helpers are those of ``test_widget.py``; the pages on origins
that the site ``widget`` does not have are served by host-page servers of their own.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from typing import Literal

import pytest
from playwright.sync_api import ConsoleMessage, Locator, Page, Response, expect

from commentsvc import PROJECT_ROOT
from tests.browser import test_widget as widget_tests
from tests.browser.conftest import Live, PageLog, Pages
from tests.browser.test_widget import (
    HTTP_STATUS_ERROR,
    SITE,
    HostPages,
    approved,
    fill_form,
    open_thread,
    post,
    stored,
    textbox,
    widget,
)
from tests.support.host_pages import HostSite, serve_host_pages

pytestmark = pytest.mark.browser

host = widget_tests.host
host_pages = widget_tests.host_pages
page = widget_tests.page
key = widget_tests.key

LOAD_FAILED = "Comments could not be loaded."
POST_FAILED = "Your comment could not be posted. Please try again."
#: A slug no site has.
UNKNOWN_SITE = "no-such-site"
README = PROJECT_ROOT / "README.md"
#: WCAG 2's minimum contrast for text (AA, 1.4.3).
MIN_CONTRAST = 4.5


@pytest.fixture(scope="module")
def stranger(live: Live, host: HostSite) -> Iterator[HostSite]:
    """Host pages embedding the site ``widget`` from an origin that site does not have."""
    with serve_host_pages(live.base_url, SITE) as site:
        assert site.origin != host.origin
        yield site


@pytest.fixture(scope="module")
def misnamed(live: Live) -> Iterator[HostSite]:
    """Host pages whose ``data-site`` names no site."""
    with serve_host_pages(live.base_url, UNKNOWN_SITE) as site:
        yield site


def console_of(page: Page) -> list[ConsoleMessage]:
    """Every console message of ``page`` from now on."""
    messages: list[ConsoleMessage] = []
    page.on("console", lambda message: messages.append(message))
    return messages


def naming(messages: list[ConsoleMessage], *words: str) -> list[ConsoleMessage]:
    return [message for message in messages if all(word in message.text for word in words)]


def the_warning(messages: list[ConsoleMessage], site: str, origin: str) -> str:
    """The one console message naming the site and the page's origin: the widget's warning."""
    texts = [message.text for message in messages]
    found = naming(messages, site, origin)
    assert len(found) == 1, texts
    assert found[0].type == "warning", texts
    assert found[0].text.startswith("commentsvc: "), texts
    assert len(naming(messages, "commentsvc")) == 1, texts
    return found[0].text


def assert_under_the_heading(page: Page) -> Locator:
    """The widget's load-error line: shown right under its heading, above the form."""
    alert = widget(page).get_by_role("alert")
    expect(alert).to_have_text(LOAD_FAILED)
    assert alert.evaluate("e => e.previousElementSibling.tagName") == "H2"
    alert_box = alert.bounding_box()
    form_box = widget(page).locator("form").bounding_box()
    assert alert_box and form_box and alert_box["y"] < form_box["y"]
    # The line at the bottom is the posting form's; it stays empty.
    expect(widget(page).get_by_role("status")).to_have_text("")
    return alert


# --- A page the site's setup refuses ------------------------------------------------------------


def test_a_page_on_an_origin_the_site_lacks_says_so_once_in_the_console(
    live: Live, pages: Pages, page_log: PageLog, stranger: HostSite, key: str
) -> None:
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(403))
    page = HostPages(pages, stranger).open()
    messages = console_of(page)
    answers: list[Response] = []
    page.on("response", lambda r: answers.append(r) if r.url.startswith(live.base_url) else None)
    # The thread and the counts: two refused requests, one warning.
    page.goto(stranger.url("thread-and-counts.html", page=key))
    assert_under_the_heading(page)
    page.wait_for_load_state("networkidle")
    refused = sorted(
        (r.url.split("?")[0].rsplit("/", 1)[1], r.status) for r in answers if "/sites/" in r.url
    )
    assert refused == [("comments", 403), ("counts", 403)]

    warning = the_warning(messages, SITE, stranger.origin)
    assert f"--add-origin {stranger.origin}" in warning, "it says what to run"

    # A post is refused too; the reader is not shown the site owner's instructions.
    fill_form(page, "Sent from an origin the site does not have.")
    response = post(page)
    assert response.status == 403
    status = widget(page).get_by_role("status")
    expect(status).to_have_text(POST_FAILED)
    assert the_warning(messages, SITE, stranger.origin) == warning, "once per page load"
    assert stored(live, key) == []


def test_a_page_naming_no_site_says_so_once_in_the_console(
    pages: Pages, page_log: PageLog, misnamed: HostSite, key: str
) -> None:
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(404))
    page = HostPages(pages, misnamed).open()
    messages = console_of(page)
    page.goto(misnamed.url("thread-and-counts.html", page=key))
    assert_under_the_heading(page)
    page.wait_for_load_state("networkidle")

    the_warning(messages, UNKNOWN_SITE, misnamed.origin)


# --- The summary of a refused post speaks the form's words ---------------------------------

#: Per language: the heading of an empty thread, and the summary.
SUMMARIES = {
    "en": ("No comments yet.", "Please check: Comment, Website."),
    "de": ("Noch keine Kommentare.", "Bitte prüfe: Kommentar, Website."),
    "fr": (
        "Aucun commentaire pour l\u2019instant.",
        "Veuillez vérifier\u00a0: Commentaire, Site web.",
    ),
}


@pytest.mark.parametrize("lang", sorted(SUMMARIES))
def test_a_refused_posts_summary_names_the_forms_labels(
    live: Live, page: Page, host: HostSite, key: str, page_log: PageLog, lang: str
) -> None:
    page_log.expect_console_error(HTTP_STATUS_ERROR.format(422))
    empty, summary = SUMMARIES[lang]
    open_thread(page, host.url("thread.html", page=key, lang=lang), empty)
    names = widget(page).locator("form textarea, form input[type=url]")
    comment_box, website_box = names.nth(0), names.nth(1)
    # Both pass the widget's own checks and fail the service's: only invisible characters,
    # and a port out of range.
    comment_box.fill("\u200b\u200b")
    website_box.fill("https://example.com:99999/")
    widget(page).locator("input[name=author_name]").fill("Ada Lovelace")
    widget(page).locator("input[name=author_email]").fill("ada@example.com")
    with page.expect_response(widget_tests.is_submission) as answer:
        widget(page).locator("button[type=submit]").click()
    response = answer.value

    assert response.status == 422, response.text()
    problem = response.json()
    assert set(problem["errors"]) == {"body", "author_url"}
    status = widget(page).get_by_role("status")
    expect(status).to_have_text(summary)
    # The errors beside the fields stay the service's.
    for box, field in ((comment_box, "body"), (website_box, "author_url")):
        expect(box).to_have_attribute("aria-invalid", "true")
        expect(box).to_have_accessible_description(problem["errors"][field][0])
    expect(comment_box).to_be_focused()
    assert stored(live, key) == []


# --- The page's font -----------------------------------------------------------------------

FONT = "e => { const s = getComputedStyle(e); return [s.fontFamily, s.fontSize]; }"


def test_the_widget_writes_in_the_pages_font_unless_told_otherwise(
    page: Page, host: HostSite, key: str
) -> None:
    open_thread(page, host.url("light-only.html", page=key), "No comments yet.")
    page_family, page_size = page.locator("main > p").evaluate(FONT)
    assert page_family == "Georgia, serif" and page_size == "18px"
    for part in ("h3", "label", "textarea", "button[type=submit]"):
        family, _ = widget(page).locator(part).first.evaluate(FONT)
        assert family == page_family, part
    # The reader's default size, not the page's.
    assert widget(page).locator("label").first.evaluate(FONT) == [page_family, "16px"]

    page.add_style_tag(content="#comments { --csv-font: monospace; --csv-font-size: 20px; }")
    expect(widget(page).locator("label").first).to_have_css("font-family", "monospace")
    assert widget(page).locator("textarea").evaluate(FONT) == ["monospace", "20px"]


# --- Alignment with the article column -------------------------------------------------------

TEXT_LEFT = """e => {
  const range = document.createRange();
  range.selectNodeContents(e);
  return range.getClientRects()[0].left;
}"""


def pixel(page: Page, x: float, y: float) -> tuple[int, int, int]:
    """The colour Chromium paints at (x, y): a 1x1 screenshot, its PNG decoded."""
    png = page.screenshot(clip={"x": int(x), "y": int(y), "width": 1, "height": 1})
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, data, header = 8, b"", b""
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, body = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        header = body if kind == b"IHDR" else header
        data += body if kind == b"IDAT" else b""
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert (width, height, depth, colour in (2, 6)) == (1, 1, 8, True), header
    # One row of one pixel: every PNG filter leaves its bytes as they are.
    red, green, blue = zlib.decompress(data)[1:4]
    return red, green, blue


@pytest.mark.parametrize(
    ("name", "paragraph", "scheme", "beside"),
    [
        # The demo: light, and dark where its own dark design sets --csv-bg: transparent.
        ("article.html", "article p", "light", (253, 252, 248)),
        ("article.html", "article p", "dark", (22, 21, 19)),
        # A page that is light only: in dark mode the widget draws its own background.
        ("w/light-only.html?page=/t/aligned", "main > p", "light", (255, 255, 255)),
        ("w/light-only.html?page=/t/aligned", "main > p", "dark", (20, 22, 27)),
    ],
)
def test_the_widgets_text_lines_up_with_the_article_column(
    host_pages: HostPages,
    host: HostSite,
    name: str,
    paragraph: str,
    scheme: Literal["light", "dark"],
    beside: tuple[int, int, int],
) -> None:
    page = host_pages.open(color_scheme=scheme)
    page.set_viewport_size({"width": 1000, "height": 2000})
    open_thread(page, f"{host.origin}/{name}")
    column = page.locator(paragraph).first.evaluate(TEXT_LEFT)
    heading = widget(page).get_by_role("heading", level=2)
    starts = {
        "heading": heading.evaluate(TEXT_LEFT),
        "label": widget(page).locator("label").first.evaluate(TEXT_LEFT),
        "textarea": (textbox(page, "Comment").bounding_box() or {"x": -1.0})["x"],
        "checkbox": (widget(page).get_by_role("checkbox").first.bounding_box() or {"x": -1.0})["x"],
    }
    assert starts == pytest.approx(dict.fromkeys(starts, column), abs=0.5)
    # Just left of the column, beside the heading: the widget's own background where it
    # has one (it reaches past the column), the page where it has none.
    box = heading.bounding_box()
    assert box
    assert pixel(page, column - 6, box["y"] + box["height"] / 2) == beside


# --- The README's theming snippet --------------------------------------------------------------


def readme_theming_css() -> str:
    """The css block of the README's **Theming** paragraph, as a site owner copies it."""
    text = README.read_text("utf-8")
    start = text.index("**Theming**")
    found = re.compile(r"```css\n(.*?)\n```", re.S).search(text, start)
    assert found, "no css block after **Theming** in README.md"
    return found[1]


COLOURS = """e => {
  const rgba = value => value.match(/[\\d.]+/g).map(Number);
  let background = null;
  for (let n = e; n && !background; n = n.parentElement || n.getRootNode().host) {
    const value = rgba(getComputedStyle(n).backgroundColor);
    if (value.length === 3 || value[3] > 0) background = value;
  }
  return [rgba(getComputedStyle(e).color), background];
}"""


def luminance(rgb: list[float]) -> float:
    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(c) for c in rgb[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one: list[float], other: list[float]) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_readmes_theming_snippet_reads_well_in_both_schemes(
    live: Live,
    host_pages: HostPages,
    host: HostSite,
    key: str,
    scheme: Literal["light", "dark"],
) -> None:
    snippet = readme_theming_css()
    assert "prefers-color-scheme: dark" in snippet
    approved(live, key, 1, author_url="https://ada.example/")
    page = host_pages.open(color_scheme=scheme)
    open_thread(page, host.url("dark-page.html", page=key), "1 comment")
    page.add_style_tag(content=snippet)
    textbox(page, "Comment").fill("Typed text must be readable too.")
    container = widget(page)
    # The snippet took: its colours reach the container.
    assert container.evaluate("e => getComputedStyle(e).getPropertyValue('--csv-text')")

    parts = {
        "heading": container.get_by_role("heading", level=2),
        "comment": container.locator(".csv-body p").first,
        "author link": container.locator("a.csv-author"),
        "time": container.locator("time"),
        "note": container.locator(".csv-note"),
        "label": container.locator("label").first,
        "typed text": textbox(page, "Comment"),
        "button": container.locator("button[type=submit]"),
        "reply": container.locator(".csv-reply"),
    }
    ratios = {}
    for part, locator in parts.items():
        colour, background = locator.evaluate(COLOURS)
        assert background and background[3:] in ([], [1]), (part, background)
        ratios[part] = round(contrast(colour, background), 2)
    low = {part: ratio for part, ratio in ratios.items() if ratio < MIN_CONTRAST}
    assert low == {}, f"{scheme}: contrast below {MIN_CONTRAST}: {low}"

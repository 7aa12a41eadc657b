"""The widget's languages (DESIGN §10) in a real Chromium, on host pages of another origin.

A page in German gets the German form, its words fetched once from the service and no English
shown before them; a page in English, or in a language the widget does not speak, fetches no
file at all. Language tags pick the longest language they start with; counts take each
language's plural forms. The host pages, fixtures and helpers are those of ``test_widget.py``.
"""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Page, Request, Route, expect

from commentsvc.widget import DEFAULT_LANGUAGE, readable_languages, translations
from tests.browser import test_widget as widget_tests
from tests.browser.conftest import TIMEOUT_MS, Live, PageLog
from tests.browser.test_widget import (
    LANG_OF,
    HostPages,
    approved,
    assert_accessible,
    open_thread,
    widget,
)
from tests.support.host_pages import HostSite

pytestmark = pytest.mark.browser

host = widget_tests.host
host_pages = widget_tests.host_pages
page = widget_tests.page
key = widget_tests.key

LANGUAGES = readable_languages()
OTHERS = sorted(set(LANGUAGES) - {DEFAULT_LANGUAGE})
ENGLISH = LANGUAGES[DEFAULT_LANGUAGE]
I18N = "/widget/i18n/"


def language_files(page: Page) -> list[str]:
    """The URLs of every language file ``page`` asks for from now on."""
    asked: list[str] = []

    def note(request: Request) -> None:
        if I18N in request.url:
            asked.append(request.url)

    page.on("request", note)
    return asked


def file_url(live: Live, lang: str) -> str:
    return live.url(f"{I18N}{lang}.{translations().version}.json")


def language_page(host: HostSite, key: str, **params: str) -> str:
    """``language.html`` for ``key``: ``html`` is the page's lang, ``lang`` the container's
    data-lang, ``script`` the script's."""
    return host.url("language.html", page=key, **params)


def settled(page: Page) -> None:
    """Every request the page will make has been made."""
    page.wait_for_load_state("networkidle")


def assert_form_in(page: Page, lang: str) -> None:
    """The widget shows the form in ``lang`` and marks its text as that language."""
    words = LANGUAGES[lang]
    container = widget(page)
    expect(container.get_by_role("heading", level=3)).to_have_text(words["heading"])
    expect(container.get_by_text(words["note"], exact=True)).to_be_visible()
    expect(container.get_by_role("button", name=words["post"], exact=True)).to_be_visible()
    assert container.locator("section").evaluate(LANG_OF) == lang


# --- The page's language ---------------------------------------------------------------------


def test_a_german_page_shows_the_german_form_and_fetches_it_once(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    approved(live, key, 2)
    asked = language_files(page)
    open_thread(page, language_page(host, key, html="de"), "2 Kommentare")
    assert_form_in(page, "de")
    labels = ["Kommentar *", "Name *", "E-Mail *", "Website"]
    expect(widget(page).locator("form label")).to_have_text(
        [*labels, LANGUAGES["de"]["save"], LANGUAGES["de"]["notify"]]
    )
    reply = widget(page).get_by_role("button", name="Auf Ada Lovelace antworten", exact=True)
    expect(reply).to_have_count(2)
    expect(reply.first).to_have_text("Antworten")
    # The counts on the page speak German too, from the same file.
    expect(page.locator("[data-comment-count]")).to_have_text("2 Kommentare")
    settled(page)
    assert asked == [file_url(live, "de")]


def test_no_english_shows_before_the_translation_arrives(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    held: list[Route] = []
    page.route(f"**{I18N}**", lambda route: held.append(route))
    page.goto(language_page(host, key, html="fr"))
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not held:
        assert time.monotonic() < deadline, "the widget asked for no French"
        page.wait_for_timeout(20)

    # Not drawn until its words are here: the container keeps what the page put there (a
    # server-rendered thread stays in sight), no English shows.
    assert widget(page).evaluate("e => e.shadowRoot === null")
    expect(page.locator("[data-comment-count]")).to_have_text("…")
    held[0].continue_()
    expect(widget(page).get_by_role("heading", level=2)).to_have_text(LANGUAGES["fr"]["none"])
    assert_form_in(page, "fr")
    expect(page.locator("[data-comment-count]")).to_have_text("0 commentaire")


def test_an_english_page_fetches_no_language_file(page: Page, host: HostSite, key: str) -> None:
    asked = language_files(page)
    open_thread(page, language_page(host, key, html="en"), ENGLISH["none"])
    assert_form_in(page, "en")
    expect(page.locator("[data-comment-count]")).to_have_text("0 comments")
    settled(page)
    assert asked == []


@pytest.mark.parametrize("tag", ["tlh", "ko-KR", "zh-TW", "zh-Hant-HK", "en-GB"])
def test_a_language_the_widget_does_not_speak_shows_english_without_a_request(
    page: Page, host: HostSite, key: str, tag: str
) -> None:
    # Traditional Chinese is not Simplified Chinese: English until it has a file of its own.
    asked = language_files(page)
    open_thread(page, language_page(host, key, lang=tag), ENGLISH["none"])
    assert_form_in(page, "en")
    settled(page)
    assert asked == []


@pytest.mark.parametrize(
    ("tag", "lang"),
    [
        ("pt-BR", "pt"),
        ("pt-PT", "pt"),
        ("zh-CN", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("zh-Hans-HK", "zh-Hans"),
        ("de-CH", "de"),
        ("sv_SE", "sv"),
        ("NL", "nl"),
    ],
)
def test_a_tag_picks_the_language_it_starts_with(
    live: Live, page: Page, host: HostSite, key: str, tag: str, lang: str
) -> None:
    asked = language_files(page)
    # data-lang wins over the page's own language.
    open_thread(page, language_page(host, key, html="fr", lang=tag), LANGUAGES[lang]["none"])
    assert_form_in(page, lang)
    settled(page)
    # The counts follow the page (French), the thread its data-lang.
    assert sorted(asked) == sorted({file_url(live, lang), file_url(live, "fr")})


def open_in_locale(host_pages: HostPages, locale: str) -> Page:
    """A page in a fresh context whose browser prefers ``locale`` (navigator.language)."""
    pages = host_pages.pages
    context = pages.browser.new_context(base_url=host_pages.site.origin, locale=locale)
    context.set_default_timeout(TIMEOUT_MS)
    pages.contexts.append(context)
    opened = context.new_page()
    opened.on("console", pages.log.on_console)
    opened.on("pageerror", pages.log.on_page_error)
    return opened


@pytest.mark.parametrize(("html", "lang"), [("", "sv"), ("it", "it")])
def test_the_browsers_language_counts_when_the_page_names_none(
    host_pages: HostPages, host: HostSite, key: str, html: str, lang: str
) -> None:
    page = open_in_locale(host_pages, "sv-SE")
    open_thread(page, language_page(host, key, html=html), LANGUAGES[lang]["none"])
    assert_form_in(page, lang)


# --- Plural forms, Japanese, switching ----------------------------------------------------------

#: Polish has a form for 1, one for 2-4 (but 12-14), and one for the rest.
POLISH = {1: "1 komentarz", 2: "2 komentarze", 5: "5 komentarzy", 12: "12 komentarzy"}
POLISH[22] = "22 komentarze"


def test_polish_counts_in_polish_plural_forms(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    for n in POLISH:
        approved(live, f"{key}/{n}", n)
    page.goto(host.url("plural-counts.html", page=key, html="pl"))
    expect(page.locator("[data-comment-count]")).to_have_text(list(POLISH.values()))

    # data-lang on the container, and on the script (for the thread and the counts alike).
    open_thread(page, language_page(host, f"{key}/2", lang="pl"), POLISH[2])
    assert_form_in(page, "pl")
    open_thread(page, language_page(host, f"{key}/5", script="pl"), POLISH[5])
    assert_form_in(page, "pl")
    expect(page.locator("[data-comment-count]")).to_have_text(POLISH[5])


def test_japanese_readers_get_the_japanese_form(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    approved(live, key, 3)
    words = LANGUAGES["ja"]
    open_thread(page, language_page(host, key, lang="ja"), "3 件のコメント")
    assert_form_in(page, "ja")
    container = widget(page)
    labels = ["コメント *", "名前 *", "メール *", "サイト", words["save"], words["notify"]]
    expect(container.locator("form label")).to_have_text(labels)
    reply = container.get_by_role("button", name="Ada Lovelace に返信する", exact=True)
    expect(reply).to_have_count(3)
    expect(reply.first).to_have_text(words["reply"])
    expect(container.locator("time").first).to_have_text(words["justNow"])

    container.get_by_role("button", name=words["post"], exact=True).click()
    comment_box = container.get_by_role("textbox", name="コメント", exact=True)
    expect(comment_box).to_have_attribute("aria-invalid", "true")
    expect(comment_box).to_have_accessible_description(words["required"])


def served(live: Live, url: str) -> int:
    """How often the service has answered a GET of ``url`` (its request log says)."""
    path = url.removeprefix(live.base_url)
    records = (
        json.loads(line)
        for line in live.log.read_text("utf-8", "replace").splitlines()
        if line.startswith("{")
    )
    return sum(
        1 for record in records if (record.get("method"), record.get("path")) == ("GET", path)
    )


def test_switching_pages_switches_the_language(
    live: Live, page: Page, host: HostSite, key: str
) -> None:
    asked = language_files(page)
    german, swedish = file_url(live, "de"), file_url(live, "sv")
    before = served(live, german), served(live, swedish)
    for lang in ("de", "sv", "de", "en"):
        open_thread(page, language_page(host, key, lang=lang), LANGUAGES[lang]["none"])
        assert_form_in(page, lang)
        settled(page)
    assert asked == [german, swedish, german]
    # The second German page takes the file from the browser's cache.
    assert (served(live, german), served(live, swedish)) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize("lang", OTHERS)
def test_every_language_draws_its_form_with_the_browsers_plural_rules(
    page: Page, host: HostSite, key: str, lang: str
) -> None:
    words = LANGUAGES[lang]
    open_thread(page, language_page(host, key, lang=lang), words["none"])
    assert_form_in(page, lang)
    expect(widget(page).locator("form label")).to_have_count(6)
    categories = page.evaluate(
        "tag => new Intl.PluralRules(tag).resolvedOptions().pluralCategories", lang
    )
    assert set(categories) == set(words["count"]), f"{lang}: Chromium's plural categories"


# --- Accessibility and failures --------------------------------------------------------------


@pytest.mark.parametrize(("lang", "one"), [("de", "1 Kommentar"), ("ja", "1 件のコメント")])
def test_axe_finds_no_serious_violations_in_a_translated_form(
    live: Live, page: Page, host: HostSite, key: str, lang: str, one: str
) -> None:
    approved(live, key, 1, author_url="https://ada.example/")
    words = LANGUAGES[lang]
    open_thread(page, language_page(host, key, lang=lang), one)
    assert_accessible(page, f"{lang}, a thread of one")
    widget(page).get_by_role("button", name=words["post"], exact=True).click()
    expect(widget(page).locator("textarea")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, f"{lang}, validation errors shown")


@pytest.mark.parametrize("failure", ["network", "404"])
def test_the_widget_speaks_english_when_its_language_cannot_be_had(
    page: Page, host: HostSite, key: str, page_log: PageLog, failure: str
) -> None:
    if failure == "network":
        page_log.expect_console_error(r"net::ERR_FAILED")
        page.route(f"**{I18N}**", lambda route: route.abort())
    else:
        page_log.expect_console_error(r"status of 404")
        page.route(
            f"**{I18N}**",
            lambda route: route.fulfill(
                status=404, headers={"Access-Control-Allow-Origin": "*"}, body="{}"
            ),
        )
    open_thread(page, language_page(host, key, lang="nl"), ENGLISH["none"])
    assert_form_in(page, "en")

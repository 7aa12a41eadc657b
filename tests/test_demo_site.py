"""The demo site of ``make run`` (scripts/demo_site.py): its article includes the service's
thread fragment as nginx's SSI would (README, "Without JavaScript and for search engines"),
and ``?lang=`` chooses the widget's language."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from commentsvc import PROJECT_ROOT
from commentsvc.models import CommentStatus
from tests.support.host_pages import DemoHandler
from tests.support.server import LOOPBACK, free_port, serving

ARTICLE = PROJECT_ROOT / "demo" / "article.html"
WIDGET_LANGUAGES = PROJECT_ROOT / "commentsvc" / "widget" / "static" / "i18n"
CONTAINER = re.compile(r'<div id="comments"[^>]*>(.*?)</div>\n<noscript>', re.S)


@contextmanager
def demo_site(api: str, site: str = "news") -> Iterator[str]:
    """The demo site as ``make run`` serves it, for the service at ``api``; its origin."""
    server: ThreadingHTTPServer = DemoHandler.make_server(LOOPBACK, 0, api, site)
    with serving(server) as origin:
        yield origin


@pytest.fixture
def service(app: Flask) -> Iterator[str]:
    """The app on a port of the loopback address; its URL."""
    with serving(make_server(LOOPBACK, 0, app, threaded=True)) as url:
        yield url


def article(origin: str, **params: str) -> str:
    response = requests.get(f"{origin}/article.html", params=params, timeout=10)
    assert response.status_code == 200
    return response.text


def test_the_article_includes_the_approved_thread_inside_the_widgets_container(
    service: str, make_comment: Callable[..., int]
) -> None:
    shown = make_comment(body="Seen without JavaScript.")
    make_comment(body="Not yet approved.", status=CommentStatus.PENDING)
    with demo_site(service) as origin:
        page = article(origin)
    container = CONTAINER.search(page)
    assert container, page
    included = container[1]
    assert "<!--#" not in included
    assert re.search(r'<section class="commentsvc-thread"[^>]* data-rendered ', included)
    assert 'data-page="/2025/10/us-china-talks"' in included
    assert f'<article id="comment-{shown}" itemscope' in included
    assert "Seen without JavaScript." in included
    assert "Not yet approved." not in included


def test_an_include_the_service_does_not_answer_leaves_the_container_empty() -> None:
    with demo_site(f"http://{LOOPBACK}:{free_port()}") as origin:
        page = article(origin)
    container = CONTAINER.search(page)
    assert container, page
    assert container[1].strip() == ""


def test_the_browser_tests_host_pages_leave_the_include_a_comment() -> None:
    """tests/support/host_pages.py serves demo/ without includes: the widget there starts
    from an empty container."""
    assert DemoHandler.includes is False
    assert '<!--# include virtual="/commentsvc/sites/{{SITE}}/thread.html?page=' in (
        ARTICLE.read_text("utf-8")
    )


@pytest.mark.parametrize(
    ("asked", "lang"),
    [("de", "de"), ("zh-Hans", "zh-Hans"), ("", ""), ('"><script>', ""), ("x" * 40, "")],
)
def test_lang_in_the_address_is_the_widgets_language(asked: str, lang: str) -> None:
    with demo_site(f"http://{LOOPBACK}:{free_port()}") as origin:
        page = article(origin, lang=asked)
    assert f'data-page="/2025/10/us-china-talks" data-lang="{lang}">' in page
    current = re.findall(r'href="\?lang=([^"]+)" aria-current="page"', page)
    assert current == ([lang] if lang else [])


def test_the_article_links_every_language_of_the_widget() -> None:
    linked = re.findall(r'<a href="\?lang=([^"]+)" hreflang="\1" lang="\1">', ARTICLE.read_text())
    assert sorted(linked) == sorted(path.stem for path in WIDGET_LANGUAGES.glob("*.json"))

"""The one URL parser every URL we accept goes through: read as browsers read it, or refused."""

from __future__ import annotations

import pytest

from commentsvc.security import (
    UrlError,
    normalize_origin,
    origin_of_url,
    parse_web_url,
    web_url,
)


@pytest.mark.parametrize(
    "url",
    [
        # urlsplit finds news.example after the last @; a browser reads \ as / and goes to
        # evil.example (security review L6).
        "http://evil.example\\@news.example/x",
        "http://news.example\\evil.example/",
        # Browsers drop tab and line breaks anywhere in a URL; urlsplit drops them too.
        "http://evil.example\t@news.example/",
        "http://news.\nexample/",
        "http://news.example/\rx",
        "http://news.example/a b",
        "http://news.example/\x00",
        "http://news.example/\x7f",
        "http://news.example/\x85x",
        "http://news.example/\u2028x",
        "http://news.example/\ud800",
    ],
)
def test_what_browsers_and_urlsplit_could_read_differently_is_refused(url: str) -> None:
    with pytest.raises(UrlError, match="spaces, backslashes or control characters"):
        parse_web_url(url)
    assert origin_of_url(url) is None
    assert web_url(url) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("javascript:alert(1)", "Must start with http:// or https://."),
        ("//news.example/x", "Must start with http:// or https://."),
        ("ftp://news.example/", "Must start with http:// or https://."),
        ("http:///x", "Must be a valid http or https URL."),
        ("http://news.example:99999/", "Must be a valid http or https URL."),
        ("http://news.example:8o/", "Must be a valid http or https URL."),
        ("http://news.example:\u0668/", "Must be a valid http or https URL."),
        ("http://[::1/", "Must be a valid http or https URL."),
        ("http://[::1]x/", "Must be a valid http or https URL."),
        ("http://news<b>.example/", "Must be a valid http or https URL."),
        ("http://news%2eexample/", "Must be a valid http or https URL."),
    ],
)
def test_what_is_no_http_url_is_refused(url: str, message: str) -> None:
    with pytest.raises(UrlError) as refused:
        parse_web_url(url)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("url", "written", "origin"),
    [
        ("https://news.example/a?b=1#c", "https://news.example/a?b=1#c", "https://news.example"),
        ("HTTPS://NEWS.Example:443/A", "https://news.example/A", "https://news.example"),
        ("http://news.example:0080", "http://news.example", "http://news.example"),
        ("http://news.example:8080/?#", "http://news.example:8080/?#", "http://news.example:8080"),
        ("http://news.example:/x", "http://news.example/x", "http://news.example"),
        ("http://u:p@News.example/", "http://u:p@news.example/", "http://news.example"),
        ("http://[::1]:8000/x", "http://[::1]:8000/x", "http://[::1]:8000"),
        ('http://x.example/"><b>', 'http://x.example/"><b>', "http://x.example"),
    ],
)
def test_a_url_is_written_out_again_from_its_parts(url: str, written: str, origin: str) -> None:
    parsed = parse_web_url(url)
    assert str(parsed) == written
    assert parsed.origin == origin_of_url(url) == origin
    assert str(parse_web_url(written)) == written


def test_an_internationalized_host_is_shown_in_its_ascii_form() -> None:
    """Security review I4: a Cyrillic a makes a look-alike of apple.com."""
    parsed = parse_web_url("http://\u0430pple.com/x?q")
    assert str(parsed) == "http://\u0430pple.com/x?q"  # stored as sent
    assert parsed.ascii() == "http://xn--pple-43d.com/x?q"
    # A label IDNA 2008 refuses (an emoji) is still shown in ASCII.
    assert parse_web_url("http://\u2603.example/").ascii() == "http://xn--n3h.example/"
    assert parse_web_url("http://news.example/").ascii() == "http://news.example/"


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://News.example/", "https://news.example"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("https://news.example:443", "https://news.example"),
        ("https://news.example\\@evil.example", None),
        ("https://evil.example\\@news.example", None),
        ("https://news.example/path", None),
        ("https://news.example/?", None),
        ("https://user@news.example", None),
        ("news.example", None),
    ],
)
def test_a_sites_origin_is_a_url_we_accept_and_nothing_more(value: str, origin: str | None) -> None:
    assert normalize_origin(value) == origin

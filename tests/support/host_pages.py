"""The host pages' origin: a second local HTTP server that embeds the widget from the service.

It serves ``demo/`` as ``scripts/demo_site.py`` does, plus ``/w/NAME.html`` from
``tests/browser/widget_pages/`` with placeholders filled in, on a free port of 127.0.0.1: an
origin other than the service's, as a reader's browser sees a real site.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from commentsvc import PROJECT_ROOT
from tests.support.server import send_page, serving

WIDGET_PAGES = PROJECT_ROOT / "tests" / "browser" / "widget_pages"
DEMO = PROJECT_ROOT / "demo"


def _load_demo_handler() -> type[SimpleHTTPRequestHandler]:
    """``DemoHandler`` of scripts/demo_site.py (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "demo_site", PROJECT_ROOT / "scripts/demo_site.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would (its dataclasses look it up)
    spec.loader.exec_module(module)
    handler: type[SimpleHTTPRequestHandler] = module.DemoHandler
    return handler


DemoHandler: Any = _load_demo_handler()
PLACEHOLDER = re.compile(r"\{\{([A-Z]+)\}\}")


class HostPageHandler(DemoHandler):
    """demo/ as scripts/demo_site.py serves it, plus ``/w/NAME.html`` from widget_pages/.

    A widget page's ``{{NAME}}`` placeholders are filled from ``values`` (API, SITE, SELF)
    and from the query string (``?page=/key&lang=de`` fills PAGE and LANG; ``?site=`` another
    site of the same service, never API or SELF), HTML-escaped; a placeholder without a value
    becomes empty.
    """

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if not parts.path.startswith("/w/"):
            super().do_GET()
            return
        name = parts.path.removeprefix("/w/")
        source = WIDGET_PAGES / name
        if "/" in name or not name.endswith(".html") or not source.is_file():
            self.send_error(404)
            return
        asked = {k.upper(): v for k, v in parse_qsl(parts.query)}
        values = {**self.values, **asked, "API": self.values["API"], "SELF": self.values["SELF"]}
        text = PLACEHOLDER.sub(
            lambda m: html.escape(values.get(m[1], "")), source.read_text("utf-8")
        )
        send_page(self, text)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test's output is its assertions."""


@dataclass(frozen=True)
class HostSite:
    """The origin that serves the host pages."""

    origin: str

    def url(self, name: str, **params: str) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.origin}/w/{name}{query}"


@contextmanager
def serve_host_pages(api: str, site: str) -> Iterator[HostSite]:
    """Serve widget_pages/ and demo/ on a free port of 127.0.0.1 (a different origin)."""
    values: dict[str, str] = {"API": api.rstrip("/"), "SITE": site}
    handler_class = type("Handler", (HostPageHandler,), {"values": values})
    handler = functools.partial(handler_class, directory=str(DEMO))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    values["SELF"] = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server, "host-pages") as origin:
        yield HostSite(origin)

"""Serve the demo article pages of demo/ on their own origin, pointing at the service; with
``--smtp-port``, also catch the service's mail (an SMTP server) and show it at ``/mail/``;
with ``--webhook-secret-file``, receive the demo site's webhooks at ``/webhook`` (signatures
checked) and show them at ``/webhooks/``.

A page's server-side includes of the service's thread fragment are made as nginx makes them
(README, "Without JavaScript and for search engines"): ``<!--# include
virtual="/commentsvc/sites/SITE/thread.html?page=KEY" -->`` is replaced by what the service
answers, fetched at each request. ``?lang=de`` fills ``{{LANG}}`` (the widget's
``data-lang``) and marks the page's ``?lang=de`` link as the current one.

python scripts/demo_site.py --port 8001 --api http://127.0.0.1:8000 --site demo \
    --smtp-port 8002 --webhook-secret-file instance/demo-webhook-secret
"""

from __future__ import annotations

import argparse
import email
import email.policy
import functools
import html
import json
import re
import threading
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

DEMO = Path(__file__).resolve().parent.parent / "demo"
#: nginx's SSI include of the location that README's example proxies to the service.
INCLUDE = re.compile(r'<!--# include virtual="/commentsvc/([^"]*)" -->')
#: How long a page waits for an include; a service that is slow or down leaves it empty.
INCLUDE_SECONDS = 2.0
#: A language tag (BCP 47's shape, loosely), as ``?lang=`` may give it.
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


@dataclass
class Caught:
    """A mail the demo's SMTP server got, or a webhook call its receiver got."""

    at: datetime
    summary: str
    body: str


class Inbox:
    """What the demo caught, newest first (kept in memory while it runs)."""

    def __init__(self) -> None:
        self.mails: list[tuple[Caught, EmailMessage]] = []
        self.hooks: list[Caught] = []
        self.lock = threading.Lock()


INBOX = Inbox()
_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
    "<meta name=viewport content='width=device-width, initial-scale=1'>"
    "<link rel=stylesheet href='/site.css'><main><h1>{title}</h1>{body}</main></html>"
)


class MailHandler:
    """aiosmtpd's handler: keep each message and say it arrived on the terminal."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        summary = f"to {', '.join(envelope.rcpt_tos)}: {message['Subject']}"
        with INBOX.lock:
            INBOX.mails.insert(0, (Caught(datetime.now(UTC), summary, ""), message))
            number = len(INBOX.mails)
        print(f"  demo mail #{number} {summary}  (read it at /mail/{number})", flush=True)
        return "250 OK"


class DemoHandler(SimpleHTTPRequestHandler):
    """Static files of demo/, with {{API}}, {{SITE}}, {{SELF}} and {{LANG}} filled into the
    pages, and their includes made when ``includes`` is set; the caught mails and webhooks."""

    values: ClassVar[dict[str, str]] = {}
    webhook_secret: ClassVar[Path | None] = None
    #: Make the pages' SSI includes (``/commentsvc/`` is the service at {{API}}), as a site's
    #: nginx with ``ssi on`` would; off, they stay HTML comments, as without SSI.
    includes: ClassVar[bool] = False

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _page(self, title: str, body: str, status: int = 200) -> None:
        data = _PAGE.format(title=html.escape(title), body=body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _mail_list(self) -> None:
        with INBOX.lock:
            mails = list(INBOX.mails)
        items = "".join(
            f"<li><a href='/mail/{len(mails) - index}'>{html.escape(caught.summary)}</a> "
            f"<small>{caught.at:%H:%M:%S}</small></li>"
            for index, (caught, _) in enumerate(mails)
        )
        note = "<p>Mail the service sends while <code>make run</code> runs comes here.</p>"
        self._page("Demo mailbox", note + (f"<ol reversed>{items}</ol>" if items else ""))

    def _mail(self, number: int) -> None:
        with INBOX.lock:
            mails = list(INBOX.mails)
        if not 1 <= number <= len(mails):
            self._page("No such mail", "<p><a href='/mail/'>Back to the mailbox</a></p>", 404)
            return
        _, message = mails[len(mails) - number]
        headers = "".join(
            f"<dt>{html.escape(name)}</dt><dd>{html.escape(str(value))}</dd>"
            for name, value in message.items()
        )
        text = message.get_body(preferencelist=("plain",))
        rich = message.get_body(preferencelist=("html",))
        parts = f"<dl>{headers}</dl>"
        if text is not None:
            parts += f"<h2>Text</h2><pre>{html.escape(str(text.get_content()))}</pre>"
        if rich is not None:
            source = html.escape(str(rich.get_content()), quote=True)
            parts += (
                "<h2>HTML</h2><iframe sandbox='allow-popups allow-popups-to-escape-sandbox' "
                f"style='width:100%;height:32rem;border:1px solid #ccc' srcdoc=\"{source}\">"
                "</iframe>"
            )
        self._page(f"Mail #{number}", "<p><a href='/mail/'>Back to the mailbox</a></p>" + parts)

    def _hooks(self) -> None:
        with INBOX.lock:
            hooks = list(INBOX.hooks)
        items = "".join(
            f"<li><p>{html.escape(hook.summary)} <small>{hook.at:%H:%M:%S}</small></p>"
            f"<pre>{html.escape(hook.body)}</pre></li>"
            for hook in hooks
        )
        note = "<p>The demo site's webhook calls, with their signatures checked.</p>"
        self._page("Demo webhooks", note + (f"<ol reversed>{items}</ol>" if items else ""))

    def do_POST(self) -> None:
        if self.path != "/webhook" or self.webhook_secret is None:
            self.send_error(404)
            return
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            secret = self.webhook_secret.read_text().strip()
            Webhook(secret).verify(body, dict(self.headers.items()))
            verdict = "signature verified"
        except (OSError, WebhookVerificationError) as error:
            verdict = f"signature NOT verified ({error})"
        try:
            payload = json.loads(body)
            kind = payload.get("type", "?")
            shown = json.dumps(payload, indent=2, ensure_ascii=False)
        except ValueError:
            kind, shown = "not JSON", body.decode("utf-8", "replace")
        summary = f"{kind}, {verdict}, webhook-id {self.headers.get('webhook-id')}"
        with INBOX.lock:
            INBOX.hooks.insert(0, Caught(datetime.now(UTC), summary, shown))
        print(f"  demo webhook: {summary}  (see /webhooks/)", flush=True)
        self.send_response(204)
        self.end_headers()

    def _include(self, match: re.Match[str]) -> str:
        """What the service answers for an include; nothing when it fails (nginx would show
        an error message where the comments go)."""
        url = f"{self.values['API']}/{match[1]}"
        try:
            with urllib.request.urlopen(url, timeout=INCLUDE_SECONDS) as response:
                return str(response.read().decode("utf-8"))
        except (OSError, ValueError) as error:  # URLError, HTTPError, timeouts; not UTF-8
            print(f"  demo site: no include of {url} ({error})", flush=True)
            return ""

    def _demo_page(self, path: str, query: str) -> bytes:
        """A page of demo/, its placeholders filled and its includes made."""
        page = (DEMO / path).read_text("utf-8")
        lang = (parse_qs(query).get("lang") or [""])[0]
        lang = lang if LANGUAGE_TAG.fullmatch(lang) else ""
        if lang:
            link = f'href="?lang={lang}"'
            page = page.replace(link, f'{link} aria-current="page"')
        for name, value in {**self.values, "LANG": lang}.items():
            page = page.replace("{{" + name + "}}", value)
        if self.includes:
            page = INCLUDE.sub(self._include, page)
        return page.encode("utf-8")

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        path = path.lstrip("/") or "index.html"
        if path == "mail/":
            self._mail_list()
            return
        if path.startswith("mail/") and path[5:].isdigit():
            self._mail(int(path[5:]))
            return
        if path == "webhooks/":
            self._hooks()
            return
        if path.endswith(".html") and (DEMO / path).is_file() and "/" not in path:
            body = self._demo_page(path, query)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    @classmethod
    def make_server(cls, host: str, port: int, api: str, site: str) -> ThreadingHTTPServer:
        """A server of demo/ on ``host:port`` (0: a free port), its pages for the service at
        ``api`` and its ``site``, includes made; ``serve_forever()`` serves it."""
        values = {"API": api.rstrip("/"), "SITE": site}
        handler_class = type("Handler", (cls,), {"values": values, "includes": True})
        handler = functools.partial(handler_class, directory=str(DEMO))
        server = ThreadingHTTPServer((host, port), handler)
        values["SELF"] = f"http://{host}:{server.server_address[1]}"
        return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--site", default="demo")
    parser.add_argument("--smtp-port", type=int, help="Catch mail on this port (aiosmtpd).")
    parser.add_argument("--webhook-secret-file", type=Path, help="Receive webhooks signed so.")
    args = parser.parse_args()
    DemoHandler.webhook_secret = args.webhook_secret_file
    if args.smtp_port:
        from aiosmtpd.controller import Controller

        Controller(MailHandler(), hostname=args.host, port=args.smtp_port).start()
    with DemoHandler.make_server(args.host, args.port, args.api, args.site) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()

"""Mail: composing a message from templates and sending it over SMTP (DESIGN §8).

Every message has a plain-text and an HTML part rendered from ``templates/mail/``, a
``Date``, a ``Message-ID`` and ``Auto-Submitted: auto-generated``. No header can be added
through what a commenter wrote: every header value passes :func:`header_text` (line breaks
and other control characters become spaces) before the ``email`` package folds it.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import current_app, render_template

from commentsvc.models import utcnow

#: The schemes of ``COMMENTSVC_SMTP_URL`` and their default ports.
SMTP_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
#: How long one SMTP exchange may take before the delivery is retried.
SMTP_TIMEOUT_SECONDS = 30
#: Longest header value built from input (a subject with a page title, a display name).
MAX_HEADER_TEXT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


@dataclass(frozen=True)
class SmtpServer:
    """Where and how mail is sent, from ``COMMENTSVC_SMTP_URL``."""

    host: str
    port: int
    #: ``plain``, ``starttls`` (required, not opportunistic) or ``tls`` (implicit).
    security: str
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpServer:
    """The server an SMTP URL names; ValueError saying what is wrong with it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SMTP_PORTS or not parts.hostname:
        raise ValueError(
            f"{_redacted(url)!r} is not an SMTP URL such as smtp://mail.example.com:25, "
            "smtp+starttls://user:password@mail.example.com:587 or smtps://mail.example.com"
        )
    try:
        port = parts.port or SMTP_PORTS[scheme]
    except ValueError:
        raise ValueError(f"{_redacted(url)!r} has a port that is not a number") from None
    security = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}[scheme]
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return SmtpServer(parts.hostname, port, security, username, password)


def _redacted(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def parse_mail_from(value: str) -> Address:
    """The address of ``COMMENTSVC_MAIL_FROM`` (``a@b`` or ``Name <a@b>``); ValueError if it
    is not exactly one address."""
    if _CONTROL.search(value):
        raise ValueError("must be one line")
    found = getaddresses([value])
    if len(found) != 1 or "@" not in found[0][1]:
        raise ValueError(f"{value!r} is not an address such as Comments <comments@example.com>")
    name, address = found[0]
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise ValueError(f"{value!r} is not an address such as Comments <comments@example.com>")
    return Address(display_name=name, username=local, domain=domain)


def header_text(value: object, limit: int = MAX_HEADER_TEXT) -> str:
    """``value`` made safe for a header: control characters (CR, LF, …) and runs of
    whitespace become one space, and it is cut to ``limit`` characters."""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mail_enabled() -> bool:
    """Whether this service sends mail (``COMMENTSVC_SMTP_URL`` is set)."""
    return bool(current_app.config["SMTP_URL"])


def public_url(path: str) -> str:
    """The external URL of one of the service's paths, for a link in a mail."""
    return str(current_app.config["PUBLIC_URL"]) + path


def compose(
    template: str,
    to: str,
    context: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A message to ``to`` from ``mail/{template}.subject.txt``, ``.txt`` and ``.html``.

    ``headers`` are further headers (``List-Unsubscribe``, …), made safe like the subject.
    """
    sender = parse_mail_from(str(current_app.config["MAIL_FROM"]))
    subject = render_template(f"mail/{template}.subject.txt", **context)
    message = EmailMessage()
    message["Subject"] = header_text(subject)
    message["From"] = sender
    message["To"] = header_text(to, 320)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=sender.domain)
    # RFC 3834: no vacation or out-of-office answers to a machine's mail.
    message["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        message[name] = header_text(value, 2000)
    message.set_content(render_template(f"mail/{template}.txt", **context))
    message.add_alternative(render_template(f"mail/{template}.html", **context), subtype="html")
    return message


def _text(answer: bytes | str | None) -> str:
    """An SMTP server's answer as text."""
    if isinstance(answer, bytes):
        return answer.decode("utf-8", "replace")
    return answer or ""


class PermanentMailError(Exception):
    """The server refused the message for good (a 5xx answer): retrying will not help."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class TemporaryMailError(Exception):
    """The server could not be reached or answered 4xx: try again later."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Mailer:
    """Sends messages over one SMTP connection per thread, opened on first use and opened
    again when the server closed it."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self._local = threading.local()
        self._open: set[smtplib.SMTP] = set()
        self._open_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Mailer | None:
        url = config.get("SMTP_URL")
        return cls(parse_smtp_url(url)) if url else None

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if server.security == "tls":
            smtp = smtplib.SMTP_SSL(
                server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS, context=context
            )
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS)
            if server.security == "starttls":
                smtp.starttls(context=context)
        if server.username:
            smtp.login(server.username, server.password or "")
        with self._open_lock:
            self._open.add(smtp)
        return smtp

    def send(self, message: EmailMessage) -> None:
        """Send ``message``; PermanentMailError or TemporaryMailError when it was not."""
        for attempt in (1, 2):
            smtp: smtplib.SMTP | None = getattr(self._local, "smtp", None)
            fresh = smtp is None
            try:
                if smtp is None:
                    smtp = self._local.smtp = self._connect()
                smtp.send_message(message)
                return
            except smtplib.SMTPServerDisconnected as error:
                self.close()
                if fresh or attempt == 2:  # a kept connection may have timed out: once more
                    raise TemporaryMailError(
                        f"the SMTP server closed the connection: {error}"
                    ) from error
            except smtplib.SMTPResponseException as error:
                self._reset()
                code = error.smtp_code
                text = _text(error.smtp_error)
                if 500 <= code < 600:
                    raise PermanentMailError(f"{code} {text}".strip(), code) from error
                raise TemporaryMailError(f"{code} {text}".strip(), code) from error
            except smtplib.SMTPRecipientsRefused as error:
                self._reset()
                code, answer = next(iter(error.recipients.values()))
                detail = f"{code} {_text(answer)}"
                if 500 <= code < 600:
                    raise PermanentMailError(detail, code) from error
                raise TemporaryMailError(detail, code) from error
            except (OSError, smtplib.SMTPException) as error:
                self.close()
                raise TemporaryMailError(f"cannot send through the SMTP server: {error}") from error

    def _reset(self) -> None:
        """After a refusal the connection stays usable once the transaction is reset."""
        smtp = getattr(self._local, "smtp", None)
        if smtp is not None:
            try:
                smtp.rset()
            except (OSError, smtplib.SMTPException):
                self.close()

    def close(self) -> None:
        """Close this thread's connection, if it has one."""
        smtp = getattr(self._local, "smtp", None)
        self._local.smtp = None
        if smtp is not None:
            self._quit(smtp)

    def close_all(self) -> None:
        """Close every thread's connection (the worker stops; its threads are done)."""
        with self._open_lock:
            connections = list(self._open)
        for smtp in connections:
            self._quit(smtp)

    def _quit(self, smtp: smtplib.SMTP) -> None:
        with self._open_lock:
            self._open.discard(smtp)
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def mailer() -> Mailer:
    """The app's mailer (one per process; a connection per thread); RuntimeError without
    ``COMMENTSVC_SMTP_URL``."""
    found: Mailer | None = current_app.extensions.get("commentsvc.mailer")
    if found is None:
        made = Mailer.from_config(current_app.config)
        if made is None:
            raise RuntimeError("no SMTP server is configured (COMMENTSVC_SMTP_URL)")
        found = current_app.extensions.setdefault("commentsvc.mailer", made)
    return found

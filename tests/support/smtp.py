"""A real SMTP server for the tests: aiosmtpd on a free loopback port, keeping every
message it receives (parsed, and as the bytes that came over the wire)."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.server import free_port


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    recipients: list[str]
    raw: bytes
    message: EmailMessage

    def part(self, subtype: str) -> str:
        """The decoded ``text/<subtype>`` part."""
        found = self.message.get_body(preferencelist=(subtype,))
        assert found is not None and found.get_content_subtype() == subtype, subtype
        return str(found.get_content())


@dataclass
class _Handler:
    messages: list[Received] = field(default_factory=list)
    #: SMTP answers to give to the next DATA commands instead of accepting, in order.
    refusals: list[str] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.condition:
            if self.refusals:
                return self.refusals.pop(0)
            content = envelope.original_content or envelope.content or b""
            raw = content.encode() if isinstance(content, str) else bytes(content)
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.messages.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), raw, parsed)
            )
            self.condition.notify_all()
        return "250 OK"


class SmtpServer:
    """``with SmtpServer() as smtp:`` a server on ``smtp.url``; ``smtp.messages``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = _Handler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.handler.condition:
            return list(self.handler.messages)

    def refuse_next(self, *answers: str) -> None:
        """Answer the next DATA commands with these replies (``"451 try later"``)."""
        with self.handler.condition:
            self.handler.refusals.extend(answers)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """At least ``count`` messages, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        with self.handler.condition:
            while len(self.handler.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} messages, got {len(self.handler.messages)}"
                    )
                self.handler.condition.wait(left)
            return list(self.handler.messages)

    def clear(self) -> None:
        with self.handler.condition:
            self.handler.messages.clear()

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()

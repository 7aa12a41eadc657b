"""A real HTTP receiver for webhooks on a free loopback port.

It verifies each request's signature with the Standard Webhooks algorithm written out here
(not with the library the service signs with), records what it got, and answers as told:
``200`` by default, or the next behaviours queued with :meth:`WebhookReceiver.then`
(``500``, ``"slow:12"`` to answer after 12 seconds, ``"redirect"``, ``"close"`` to drop the
connection without an answer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.server import LOOPBACK, free_port


def standard_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,`` and base64 of HMAC-SHA256 over ``id.timestamp.body`` with the secret's key
    (the base64 after ``whsec_``), as the Standard Webhooks specification says."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass
class Call:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    #: The signature checked out against the receiver's secret (None: no secret set).
    verified: bool | None
    answered: int | str

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class WebhookReceiver:
    """``with WebhookReceiver() as hook:`` listens on ``hook.url``; ``hook.calls``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.secret: str | None = None
        self.calls: list[Call] = []
        self._behaviours: list[int | str] = []
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing arrived
                    self.close_connection = True
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                behaviour = receiver._next()
                call = Call(self.path, headers, body, receiver._verify(headers, body), behaviour)
                with receiver._condition:
                    receiver.calls.append(call)
                    receiver._condition.notify_all()
                if behaviour == "close":
                    self.close_connection = True
                    self.connection.close()
                    return
                if isinstance(behaviour, str) and behaviour.startswith("slow:"):
                    time.sleep(float(behaviour.split(":", 1)[1]))
                    behaviour = 200
                if behaviour == "redirect":
                    self.send_response(307)
                    self.send_header("Location", f"http://{LOOPBACK}:{receiver.port}/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = int(behaviour)
                answer = b"x" * 10_000 if status >= 400 else b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/hook"

    def then(self, *behaviours: int | str) -> None:
        """Answer the next requests so, in order (afterwards 200 again)."""
        with self._condition:
            self._behaviours.extend(behaviours)

    def _next(self) -> int | str:
        with self._condition:
            return self._behaviours.pop(0) if self._behaviours else 200

    def _verify(self, headers: dict[str, str], body: bytes) -> bool | None:
        if self.secret is None:
            return None
        try:
            expected = standard_signature(
                self.secret, headers["webhook-id"], headers["webhook-timestamp"], body
            )
        except (KeyError, ValueError):
            return False
        offered = headers.get("webhook-signature", "").split()
        return any(hmac.compare_digest(expected, candidate) for candidate in offered)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Call]:
        """At least ``count`` calls, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.calls) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} webhook calls, got {len(self.calls)}")
                self._condition.wait(left)
            return list(self.calls)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

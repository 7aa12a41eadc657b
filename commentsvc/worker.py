"""The gunicorn worker the service runs with: slow clients cost a socket, never a worker.

A sync worker reads a request from its socket, runs the application, and writes the
response to the socket, one connection at a time: a client that trickles its headers (or
its body, or reads its response slowly) holds the whole process, and as many such clients
as there are workers take the service down (slowloris). The usual cure is a buffering
reverse proxy in front; this worker builds that buffer in, so the image is safe as shipped.

- One loop per worker reads every client's request, head and body, without blocking (one
  selector for all connections), and runs the application only on a complete request. A
  request must be complete within ``GUNICORN_READ_TIMEOUT`` seconds of its first byte (of
  the connection's opening for the first one); otherwise the client gets 408 and the
  connection is closed.
- The application writes its response into memory; what the client does not take at once
  is sent by the loop as the client reads, within the same timeout.
- The application runs in the loop itself, as in a sync worker: while it runs, the worker
  takes no new connection (an idle worker does), and a request that runs longer than
  gunicorn's ``timeout`` stops the heartbeat, so the master replaces the worker. Between
  requests the worker holds up to ``--worker-connections`` clients (1,000 by default),
  however slow they are.
- gunicorn's own errors (a malformed request line, too many headers) are answered as
  ``application/problem+json`` like every other error of the service.

It extends gunicorn's threaded worker (``gthread``) for its connections, keep-alive and
parsing, but uses no thread pool (``--threads`` is ignored). A body larger than
``BODY_BUFFER`` is refused with 413 (the service's own limit is 64 KiB by default). TLS
and HTTP pipelining are left to a proxy: the worker refuses gunicorn's TLS settings.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import selectors
import socket
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn import glogging, http
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

#: The longest request head read ahead (request line and headers); a longer one gets 431.
HEAD_LIMIT = 64 * 1024
#: The largest body read ahead; a larger one gets 413 (COMMENTSVC_MAX_CONTENT_LENGTH is
#: at most this).
BODY_BUFFER = 1024 * 1024
DEFAULT_READ_TIMEOUT = 15.0
_RECV_SIZE = 64 * 1024

_CRLF = b"\r\n"
_HEAD_END = b"\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: A header that announces a body (or asks to be told to send one).
_BODY_HEADER = re.compile(rb"\r\n(?:content-length|transfer-encoding|expect)[ \t]*:", re.I)


def read_timeout(environ: dict[str, str] | os._Environ[str] = os.environ) -> float:
    """``GUNICORN_READ_TIMEOUT``: seconds a client has to send a whole request."""
    configured = environ.get("GUNICORN_READ_TIMEOUT", "").strip()
    return float(configured) if configured else DEFAULT_READ_TIMEOUT


def _problem(status: int, title: str, detail: str) -> bytes:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    return (
        f"HTTP/1.1 {status} {title}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode("latin-1")


_TIMED_OUT = _problem(408, "Request Timeout", "The request was not sent in time.")
_HEAD_TOO_LARGE = _problem(
    431, "Request Header Fields Too Large", "The request line and headers are too long."
)
_BODY_TOO_LARGE = _problem(413, "Content Too Large", "The request body is too large.")


class _Conn(TConn):
    """A connection, with what has been read of its next request."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.received = bytearray()
        #: Where the search for the end of the head resumes.
        self.scanned = 0
        #: Monotonic time by which the request must be complete; None while idle.
        self.deadline: float | None = None
        #: Reading a request against ``deadline`` (else, with a deadline, writing a response).
        self.reading = False
        self.outgoing = bytearray()
        self.keepalive = False


class _Outbox:
    """The socket as the application sees it: writes go to memory, the rest to the socket
    itself."""

    def __init__(self, sock: socket.socket, buffer: bytearray) -> None:
        self._sock = sock
        self._buffer = buffer

    def sendall(self, data: bytes) -> None:
        self._buffer += data

    def send(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Body:
    """What the head says about the body: its length, chunked, or none."""

    __slots__ = ("chunked", "expects_continue", "invalid", "length")

    def __init__(self, head: bytes) -> None:
        self.length = 0
        self.chunked = False
        self.expects_continue = False
        self.invalid = False
        lengths = set()
        for line in head.split(_CRLF)[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                lengths.add(value.strip())
            elif name == b"transfer-encoding":
                self.chunked = self.chunked or value.strip().lower().endswith(b"chunked")
            elif name == b"expect":
                self.expects_continue = value.strip().lower() == b"100-continue"
        if len(lengths) > 1 or (lengths and not next(iter(lengths)).isdigit()):
            self.invalid = True  # gunicorn's parser answers it
        elif lengths:
            self.length = int(next(iter(lengths)))


def _chunked_end(data: bytearray, start: int) -> int | None:
    """Where a chunked body starting at ``start`` ends, -1 if its framing is broken (the
    parser will say so), None while incomplete."""
    position = start
    while True:
        line_end = data.find(_CRLF, position)
        if line_end < 0:
            return None
        size_text = bytes(data[position:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return -1
        if size == 0:
            if data[line_end + 2 : line_end + 4] == _CRLF:
                return line_end + 4
            trailers_end = data.find(_HEAD_END, line_end)
            return None if trailers_end < 0 else trailers_end + 4
        position = line_end + 2 + size + 2
        if position > len(data):
            return None


class BufferingWorker(ThreadWorker):
    """gunicorn's threaded worker without threads: its loop reads whole requests and
    writes whole responses for every client, and runs the application between."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout()
        #: Connections reading a request or writing a response, by deadline; an entry
        #: whose deadline is no longer its connection's is stale and skipped.
        self._timed: deque[tuple[float, _Conn]] = deque()

    def init_process(self) -> None:
        if self.cfg.is_ssl:
            raise RuntimeError("terminate TLS in a reverse proxy, not in this worker")
        # Responses go through memory; sendfile would bypass it (and serves nothing here).
        self.cfg.set("sendfile", False)
        super().init_process()

    def get_thread_pool(self) -> Any:
        """None: the application runs in the worker's loop."""
        return None

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.alive = False
        self.cfg.worker_int(self)
        time.sleep(0.1)
        raise SystemExit(0)

    # --- the main loop ----------------------------------------------------------------

    def run(self) -> None:
        """Wait for connections and data, serve complete requests, expire late clients."""
        acceptors = []
        for listener in self.sockets:
            listener.setblocking(False)
            acceptors.append((listener, partial(self.accept, listener.getsockname())))
        listening = False
        while self.alive:
            self.notify()
            wanted = self.nr_conns < self.worker_connections
            if wanted != listening:
                for listener, acceptor in acceptors:
                    if wanted:
                        self.poller.register(listener, selectors.EVENT_READ, acceptor)
                    else:
                        self.poller.unregister(listener)
                listening = wanted
            self._dispatch(self._wait())
            if not self.is_parent_alive():
                break
            self.murder_keepalived()
        self._stop(acceptors if listening else [])

    def _stop(self, acceptors: list[tuple[socket.socket, Any]]) -> None:
        """Stop gracefully: take no new connection, close the idle ones, and let the
        requests being read or answered finish within ``graceful_timeout``."""
        for listener, _ in acceptors:
            self.poller.unregister(listener)
        idle = list(self._keep)
        self._keep.clear()
        for conn in idle:
            self.poller.unregister(conn.sock)
        for listener in self.sockets:
            listener.close()
        for conn in idle:
            self._close(conn)
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while self._busy() and time.monotonic() < deadline:
            self.notify()
            self._dispatch(min(0.1, self._wait()))
            self.murder_keepalived()
        self.poller.close()

    def _dispatch(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for sockets to be ready, and handle them."""
        for key, _ in self.poller.select(timeout):
            key.data(key.fileobj)

    def _wait(self) -> float:
        """Seconds the selector may wait: at most 1, and no later than the next deadline
        (which may be stale: then the wait is only shorter than it could be)."""
        if not self._timed:
            return 1.0
        return min(1.0, max(0.0, self._timed[0][0] - time.monotonic()))

    def _busy(self) -> bool:
        """Whether a request is being read or answered."""
        return any(conn.deadline == at for at, conn in self._timed)

    # --- reading ----------------------------------------------------------------------

    def accept(self, server: Any, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        conn = _Conn(self.cfg, sock, client, server)
        self.nr_conns += 1
        self._start_reading(conn)
        # The request often came with the connection: no need to wait for the selector.
        self._receive(conn, registered=False)

    def _start_reading(self, conn: _Conn) -> None:
        conn.reading = True
        self._time(conn)

    def _time(self, conn: _Conn) -> None:
        conn.deadline = deadline = time.monotonic() + self.read_timeout
        self._timed.append((deadline, conn))

    def on_client_socket_readable(self, conn: _Conn, client: socket.socket) -> None:
        if not conn.reading:
            self._keep.remove(conn)  # it was kept alive, idle: now it reads
            self._start_reading(conn)
        self._receive(conn, registered=True)

    def _receive(self, conn: _Conn, *, registered: bool) -> None:
        """Read what ``conn`` has sent; serve its request once it is complete."""
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            if not registered:
                self._watch(conn, selectors.EVENT_READ, self.on_client_socket_readable)
            return
        except OSError:
            data = b""
        if not data:
            conn.reading = False
            conn.deadline = None
            if registered:
                self._forget(conn)
            self._close(conn)
            return
        conn.received += data
        ready = self._request_ready(conn)
        if ready is None:
            if not registered:
                self._watch(conn, selectors.EVENT_READ, self.on_client_socket_readable)
            return
        conn.reading = False
        conn.deadline = None
        if registered:
            self._forget(conn)
        if isinstance(ready, bytes):
            self._refuse(conn, ready)
        else:
            self._serve(conn)

    def _request_ready(self, conn: _Conn) -> bytes | bool | None:
        """True when ``conn`` holds a whole request (or one gunicorn will refuse), a canned
        answer to refuse it with, None while more is to come."""
        data = conn.received
        head_end = data.find(_HEAD_END, max(conn.scanned - 3, 0))
        if head_end < 0:
            conn.scanned = len(data)
            return _HEAD_TOO_LARGE if len(data) > HEAD_LIMIT else None
        if head_end + 4 > HEAD_LIMIT:
            return _HEAD_TOO_LARGE
        conn.scanned = head_end  # found: a later call finds it again at once
        head = bytes(data[:head_end])
        if not _BODY_HEADER.search(head):
            return True  # no body (most requests): the head is the request
        body = _Body(head)
        body_start = head_end + 4
        if body.invalid:
            return True
        if body.length > BODY_BUFFER or len(data) - body_start > BODY_BUFFER + 4096:
            return _BODY_TOO_LARGE
        if body.chunked:
            complete = _chunked_end(data, body_start) is not None
        else:
            complete = len(data) >= body_start + body.length
        if complete:
            return True
        if body.expects_continue:
            # Answer the Expect now and drop it, so the application does not answer it too.
            self._send_now(conn, _CONTINUE)
            lines = bytes(data[:head_end]).split(_CRLF)
            kept = [line for line in lines if not line.lower().startswith(b"expect:")]
            head = _CRLF.join(kept)
            conn.received = bytearray(head) + data[head_end:]
            conn.scanned = len(head)
        return None

    def _watch(self, conn: _Conn, events: int, callback: Any) -> None:
        self.poller.register(conn.sock, events, partial(callback, conn))

    def _forget(self, conn: _Conn) -> None:
        """Take ``conn`` out of the selector, if it is there."""
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _send_now(self, conn: _Conn, data: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def _refuse(self, conn: _Conn, answer: bytes) -> None:
        self._send_now(conn, answer)
        self._close(conn)

    def _close(self, conn: _Conn) -> None:
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self) -> None:
        """Close idle kept-alive connections (gunicorn's), and those whose request or
        response is late: 408 to a request, nothing more to a response."""
        super().murder_keepalived()
        now = time.monotonic()
        while self._timed:
            deadline, conn = self._timed[0]
            if conn.deadline != deadline:
                self._timed.popleft()  # done since, or timed again
                continue
            if deadline > now:
                break
            self._timed.popleft()
            late_request = conn.reading
            conn.reading = False
            conn.deadline = None
            self._forget(conn)
            if late_request:
                self._refuse(conn, _TIMED_OUT)
            else:
                self._close(conn)

    # --- the application --------------------------------------------------------------

    def _serve(self, conn: _Conn) -> None:
        """Run the application on ``conn``'s request, then send its answer."""
        if conn.parser is None:
            # The socket stays non-blocking: whatever gunicorn's parser reads is in memory
            # already; should it want more, the socket says so at once (an error) rather
            # than blocking the loop.
            conn.parser = http.RequestParser(self.cfg, conn.sock, conn.client)
            conn.initialized = True
        if conn.received:
            conn.parser.unreader.unread(bytes(conn.received))
            conn.received.clear()
        conn.scanned = 0
        sock = conn.sock
        conn.sock = _Outbox(sock, conn.outgoing)
        try:
            keepalive, _ = self.handle(conn)
        finally:
            conn.sock = sock
        conn.keepalive = keepalive
        self._answer(conn)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's own refusals as problem+json, not its HTML page."""
        status, title = _refusal(exc)
        if status is None:
            super().handle_error(req, client, addr, exc)
            return
        peer = addr[0] if addr else ""
        self.log.warning("Invalid request from ip=%s: %s", peer, exc)
        with contextlib.suppress(OSError):
            client.sendall(_problem(status, title, str(exc) or title))

    # --- writing ----------------------------------------------------------------------

    def _answer(self, conn: _Conn) -> None:
        """Send what the application wrote; what the client does not take at once is sent
        by the loop as it reads."""
        if conn.sock.fileno() < 0:  # gunicorn closed it (a broken request)
            self.nr_conns -= 1
            return
        try:
            self._flush(conn)
        except OSError:
            self._close(conn)
            return
        if conn.outgoing:
            self._time(conn)
            self._watch(conn, selectors.EVENT_WRITE, self._on_writable)
        else:
            self._after_response(conn)

    def _flush(self, conn: _Conn) -> None:
        while conn.outgoing:
            try:
                sent = conn.sock.send(conn.outgoing)
            except (BlockingIOError, InterruptedError):
                return
            del conn.outgoing[:sent]

    def _on_writable(self, conn: _Conn, client: socket.socket) -> None:
        try:
            self._flush(conn)
        except OSError:
            conn.outgoing.clear()
            conn.keepalive = False
        if conn.outgoing:
            return
        conn.deadline = None
        self._forget(conn)
        self._after_response(conn)

    def _after_response(self, conn: _Conn) -> None:
        if not (conn.keepalive and self.alive):
            self._close(conn)
            return
        conn.set_timeout()
        self._keep.append(conn)
        self._watch(conn, selectors.EVENT_READ, self.on_client_socket_readable)


_REFUSALS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int, str], ...] = (
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden"),
    (
        (
            http_errors.InvalidRequestLine,
            http_errors.InvalidRequestMethod,
            http_errors.InvalidHTTPVersion,
            http_errors.InvalidHeader,
            http_errors.InvalidHeaderName,
            http_errors.LimitRequestLine,
            http_errors.InvalidProxyLine,
            http_errors.InvalidSchemeHeaders,
            http_errors.ObsoleteFolding,
            http_errors.InvalidChunkSize,
            http_errors.ChunkMissingTerminator,
        ),
        400,
        "Bad Request",
    ),
)


def _refusal(exc: BaseException) -> tuple[int | None, str]:
    for kinds, status, title in _REFUSALS:
        if isinstance(exc, kinds):
            return status, title
    return None, ""


class Logger(glogging.Logger):
    """gunicorn's logger, writing the access log only when one is asked for
    (``GUNICORN_ACCESS_LOG``): gunicorn's own writes it whenever a logging configuration is
    given, as it is for the JSON log format (``serving.gunicorn_log_config``)."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if self.cfg.accesslog is not None:
            super().access(resp, req, environ, request_time)

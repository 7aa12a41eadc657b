"""The soak's traffic generator: mixed requests at a fixed rate, each answer recorded.

It runs as a process of its own (``python -m benchmarks.soak.traffic CONFIG.json``) so that
the harness's webhook receiver, SMTP server and samplers do not share its interpreter: a
request's latency is then the server's and the network's, not the GIL's.

Two modes:

- **paced** (``rate`` set): open loop. Request *n* is due at ``start + n / rate`` whatever
  became of the earlier ones, as real readers arrive; a slow answer does not hold back the
  next request (wrk, even with its Lua ``delay()``, waits for each connection's answer
  before the next request, so a server that slows down is sent less: the "coordinated
  omission" that hides stalls). Latency is measured from the time a request was due, so
  time lost in this client counts against the result, never for it. At most
  ``max_in_flight`` requests are open at once (a browser or proxy gives up too); a request
  due beyond that is recorded as shed, never silently skipped.
- **closed** (``rate`` None): ``connections`` loops, each sending its next request as soon
  as the previous one is answered: the capacity of the whole machine (service, database,
  worker and this client on the same CPUs) for this mix.

Every connection carries one request (``Connection: close``; gunicorn.conf.py closes them
anyway with its default keepalive of 0). Each answer becomes one line of the records file
(:class:`Record`); submissions carry a number of their own in their body, so the harness
can tell a stored comment from its acknowledgement.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

#: The kinds of request, and the statuses that answer each one correctly.
EXPECTED: dict[str, frozenset[int]] = {
    "thread": frozenset({200}),
    "thread-304": frozenset({200, 304}),
    "counts": frozenset({200}),
    "submit": frozenset({201, 202}),
    "approve": frozenset({200}),
    "queue": frozenset({200}),
}
#: Submissions acknowledged: stored, with their id in the answer.
ACKNOWLEDGED = frozenset({201, 202})
#: The mix by default, in parts of 100: readers, mostly; a few write, a moderator approves
#: about half of what they write.
DEFAULT_MIX = {
    "thread": 50,
    "thread-304": 20,
    "counts": 21,
    "submit": 6,
    "approve": 3,
}
#: A submission is approved no sooner than this after its acknowledgement, so that the
#: moderator's mail is usually sent before (a mail about a comment approved meanwhile is
#: skipped on purpose, DESIGN §8).
APPROVE_AFTER = 3.0
#: Characters of an error kept in a record.
ERROR_CHARS = 120


def submit_marker(run: str, number: int) -> str:
    """The words that make submission ``number`` of ``run`` unique, in its body."""
    return f"soak {run} #{number}"


@dataclass(frozen=True)
class TrafficConfig:
    """What the generator sends, where, how fast and for how long."""

    host: str
    port: int
    site: str
    token: str
    #: The run's tag: in every submitted page key and body (``/soak/RUN/N``).
    run: str
    records: str
    duration: float
    #: time.monotonic() at which the first request is due (the harness's clock: it is
    #: the same in every process of the machine).
    start_at: float
    rate: float | None = None
    connections: int = 8
    max_in_flight: int = 512
    timeout: float = 30.0
    mix: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    #: Pages read: the seeded 100-comment thread and the pages the run comments on.
    thread_pages: tuple[str, ...] = ("/thread/100",)
    count_pages: tuple[str, ...] = ()
    submit_pages: int = 20
    #: The first submission's number (a second phase goes on counting).
    first_number: int = 0
    seed: int = 1

    def to_json(self) -> str:
        """The config as the generator's command line takes it."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrafficConfig:
        """The config a harness wrote with :meth:`to_json`."""
        values = json.loads(text)
        values["thread_pages"] = tuple(values["thread_pages"])
        values["count_pages"] = tuple(values["count_pages"])
        return cls(**values)


@dataclass(frozen=True)
class Record:
    """One request and its answer (``status`` 0: none, see ``error``)."""

    kind: str
    #: When it was due (paced), or sent (closed loop), on the monotonic clock.
    due: float
    sent: float
    answered: float
    status: int
    retry_after: bool
    #: submit: its number; approve: the comment it approved.
    number: int
    #: submit: the acknowledged comment's id.
    comment_id: int
    error: str = ""

    @property
    def latency(self) -> float:
        """Seconds from due to answered: what a reader waited, this client's delays included."""
        return self.answered - self.due

    def line(self) -> str:
        """The record as one tab-separated line."""
        error = self.error.replace("\t", " ").replace("\n", " ")[:ERROR_CHARS]
        return (
            f"{self.kind}\t{self.due:.6f}\t{self.sent:.6f}\t{self.answered:.6f}\t{self.status}"
            f"\t{int(self.retry_after)}\t{self.number}\t{self.comment_id}\t{error}\n"
        )

    @classmethod
    def parse(cls, line: str) -> Record:
        """The record of one line :meth:`line` wrote."""
        kind, due, sent, answered, status, retry, number, comment_id, error = line.rstrip(
            "\n"
        ).split("\t")
        return cls(
            kind,
            float(due),
            float(sent),
            float(answered),
            int(status),
            retry == "1",
            int(number),
            int(comment_id),
            error,
        )


def read_records(path: Path) -> list[Record]:
    """Every record of a file the generator wrote."""
    with path.open() as lines:
        return [Record.parse(line) for line in lines if line.strip()]


def kinds_cycle(mix: dict[str, int], seed: int) -> Iterator[str]:
    """The kinds of request in mix proportions, in a shuffled order repeated forever: every
    window of a few seconds gets the same mix."""
    sequence = [kind for kind, parts in sorted(mix.items()) for _ in range(parts)]
    if not sequence:
        raise ValueError("the mix is empty")
    unknown = set(sequence) - set(EXPECTED)
    if unknown:
        raise ValueError(f"unknown kinds in the mix: {sorted(unknown)}")
    random.Random(seed).shuffle(sequence)
    while True:
        yield from sequence


class _Exchange(asyncio.Protocol):
    """One request on a connection of its own; the whole answer once the server closes it."""

    def __init__(self, payload: bytes, answer: asyncio.Future[bytes]) -> None:
        self.payload = payload
        self.answer = answer
        self.chunks: list[bytes] = []
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer.done():
            return
        if self.chunks:
            self.answer.set_result(b"".join(self.chunks))
        else:
            self.answer.set_exception(exc or ConnectionError("closed without an answer"))


@dataclass(frozen=True)
class Answer:
    """What the client needs of an HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes


def parse_answer(raw: bytes) -> Answer:
    """Status, headers (lower-case names) and body of a whole HTTP/1.x answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP answer: {lines[0][:60]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(parts[1]), headers, body)


def _comment_id(body: bytes) -> int:
    try:
        return int(json.loads(body)["id"])
    except (ValueError, KeyError, TypeError):
        return 0


class Generator:
    """The requests of one run and their records."""

    def __init__(self, config: TrafficConfig, out: TextIO) -> None:
        self.config = config
        self.out = out
        self.kinds = kinds_cycle(config.mix, config.seed)
        self.number = config.first_number
        self.etags: dict[str, str] = {}
        self.page_turn = 0
        #: Acknowledged submissions not yet approved: (acknowledged at, id).
        self.to_approve: collections.deque[tuple[float, int]] = collections.deque()
        self.in_flight = 0
        self.lines: list[str] = []
        host = f"{config.host}:{config.port}"
        self.base_headers = f"Host: {host}\r\nConnection: close\r\nUser-Agent: commentsvc-soak\r\n"
        counts = "&".join(f"page={quote(page, safe='/')}" for page in config.count_pages)
        self.counts_request = self._request("GET", f"/api/v1/sites/{config.site}/counts?{counts}")

    # --- requests --------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, headers: str = "", body: bytes | None = None
    ) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\n{self.base_headers}{headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return (head + "\r\n").encode() + (body or b"")

    def _thread_page(self) -> str:
        pages = self.config.thread_pages
        self.page_turn += 1
        return pages[self.page_turn % len(pages)]

    def next_request(self, now: float) -> tuple[str, bytes, int, str]:
        """The next request of the mix: (kind, bytes, number or comment id, thread page)."""
        config = self.config
        kind = next(self.kinds)
        if kind == "approve":
            if self.to_approve and self.to_approve[0][0] <= now - APPROVE_AFTER:
                _, comment_id = self.to_approve.popleft()
                body = b'{"status": "approved"}'
                auth = f"Authorization: Bearer {config.token}\r\n"
                path = f"/api/v1/moderation/comments/{comment_id}"
                return kind, self._request("PATCH", path, auth, body), comment_id, ""
            kind = "queue"  # nothing old enough to approve: the moderator looks at the queue
            auth = f"Authorization: Bearer {config.token}\r\n"
            path = f"/api/v1/moderation/comments?status=pending&site={config.site}&limit=20"
            return kind, self._request("GET", path, auth), 0, ""
        if kind == "submit":
            number = self.number
            self.number += 1
            page = f"/soak/{config.run}/{number % config.submit_pages}"
            body = json.dumps(
                {
                    "page": page,
                    "page_title": "Soak test page",
                    "body": f"Comment {submit_marker(config.run, number)}: the soak's own words.",
                    "author_name": f"Soak reader {number}",
                    "author_email": f"soak.{config.run}.{number}@example.com",
                }
            ).encode()
            path = f"/api/v1/sites/{config.site}/comments"
            return kind, self._request("POST", path, body=body), number, ""
        if kind == "counts":
            return kind, self.counts_request, 0, ""
        page = self._thread_page()
        path = f"/api/v1/sites/{config.site}/comments?page={quote(page, safe='/')}"
        etag = self.etags.get(page)
        if kind == "thread-304" and etag:
            return kind, self._request("GET", path, f"If-None-Match: {etag}\r\n"), 0, page
        return "thread", self._request("GET", path), 0, page

    async def exchange(self, payload: bytes) -> Answer:
        """Send one request on a new connection; its answer (or the error, raised)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda: _Exchange(payload, answer), self.config.host, self.config.port
        )
        try:
            return parse_answer(await answer)
        finally:
            transport.close()

    async def one(self, due: float) -> None:
        """One request of the mix, due at ``due``, recorded with its answer."""
        loop = asyncio.get_running_loop()
        sent = loop.time()
        kind, payload, number, page = self.next_request(sent)
        self.in_flight += 1
        status, retry_after, comment_id, error = 0, False, 0, ""
        try:
            async with asyncio.timeout(self.config.timeout):
                answer = await self.exchange(payload)
        except TimeoutError:
            error = f"no answer within {self.config.timeout:g} s"
        except (OSError, ValueError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        else:
            status = answer.status
            retry_after = "retry-after" in answer.headers
            if kind == "submit" and status in ACKNOWLEDGED:
                comment_id = _comment_id(answer.body)
                self.to_approve.append((loop.time(), comment_id))
            elif page and status == 200 and "etag" in answer.headers:
                self.etags[page] = answer.headers["etag"]
            if status not in EXPECTED[kind]:
                error = answer.body[:ERROR_CHARS].decode("utf-8", "replace")
        finally:
            self.in_flight -= 1
        record = Record(
            kind, due, sent, loop.time(), status, retry_after, number, comment_id, error
        )
        self.lines.append(record.line())

    def shed(self, due: float) -> None:
        """A due request not sent: ``max_in_flight`` requests were open."""
        record = Record("shed", due, due, due, 0, False, 0, 0, "too many requests open")
        self.lines.append(record.line())

    def flush(self) -> None:
        """Write the records so far."""
        if self.lines:
            self.out.write("".join(self.lines))
            self.out.flush()
            self.lines.clear()

    # --- the two modes ---------------------------------------------------------------------

    async def paced(self) -> None:
        """Requests due at a fixed rate, open loop, from ``start_at`` for ``duration``."""
        config = self.config
        assert config.rate
        loop = asyncio.get_running_loop()
        interval = 1.0 / config.rate
        end = config.start_at + config.duration
        tasks: set[asyncio.Task[None]] = set()
        sent = 0
        next_flush = config.start_at + 1.0
        while True:
            due = config.start_at + sent * interval
            if due >= end:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            now = loop.time()
            # Everything due by now goes out at once: a late wake-up costs latency, not load.
            while due <= now and due < end:
                if self.in_flight >= config.max_in_flight:
                    self.shed(due)
                else:
                    task = asyncio.create_task(self.one(due))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                sent += 1
                due = config.start_at + sent * interval
            if now >= next_flush:
                self.flush()
                next_flush = now + 1.0
        if tasks:
            await asyncio.wait(tasks, timeout=config.timeout + 5)
        self.flush()

    async def closed(self) -> None:
        """``connections`` loops, each sending its next request when answered."""
        config = self.config
        loop = asyncio.get_running_loop()
        end = config.start_at + config.duration

        async def client() -> None:
            while loop.time() < end:
                await self.one(loop.time())
                if len(self.lines) > 1000:
                    self.flush()

        wait = config.start_at - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        await asyncio.gather(*(client() for _ in range(config.connections)))
        self.flush()


def raise_open_files_limit() -> None:
    """As many open files as allowed: each request in flight is a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(config: TrafficConfig) -> None:
    """Send the traffic of ``config``, writing its records."""
    raise_open_files_limit()
    with open(config.records, "a") as out:
        generator = Generator(config, out)
        asyncio.run(generator.paced() if config.rate else generator.closed())


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.soak.traffic CONFIG.json``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.exit("usage: python -m benchmarks.soak.traffic CONFIG.json")
    started = time.monotonic()
    run(TrafficConfig.from_json(Path(args[0]).read_text()))
    print(f"traffic done in {time.monotonic() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()

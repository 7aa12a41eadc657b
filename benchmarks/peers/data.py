"""What both systems hold, the same comments on the same pages, and how each is seeded: through
its own HTTP API and its own moderation, never by writing its tables.

* a thread of 50 and one of 100 approved comments, each on its own page: four in five top
  level, one in five a reply to a different top-level comment (so that Isso's embed, which
  shows five replies per comment before a "show more", shows every one);
* 20 pages for the counts: page *n* has *n* approved comments and one pending, which no
  count may include.

commentsvc also gets a second site, ``guarded``, without comments but with the load
benchmark's blocklist of 1,000 entries of every kind (:func:`benchmarks.load_data.
blocklist_values`, none matching the benchmark's submissions), added through the moderation
API: where its submissions with every abuse rule on go, as in ``benchmarks.load``.

commentsvc gets its comments through the public API (``POST /api/v1/sites/{site}/comments``)
and approves them with the moderation API's bulk action; Isso through ``POST /new`` and its
admin's activation links (:class:`tests.support.isso.IssoServer`). Bodies are plain text
with paragraphs and some links (``benchmarks.load_data.body_variants``): commentsvc renders
them when they are stored, Isso when they are read (Markdown).
"""

from __future__ import annotations

import itertools
import random
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from benchmarks.load_data import (
    BLOCKLIST_ENTRIES,
    GUARDED_SITE,
    SEED,
    SetupError,
    blocklist_values,
    body_variants,
)
from tests.support.isso import IssoServer
from tests.support.service import Moderator

SITE = "bench"
#: The site's origin: submit.lua sends its pages' URLs on ``https://<site>.example``.
ORIGIN = f"https://{SITE}.example"
MODERATOR = Moderator("peers@example.com", "peers-benchmark-password")
API = f"/api/v1/sites/{SITE}"
#: The site with a blocklist, on its origin (submit.lua sends its pages' URLs there).
GUARDED_ORIGIN = f"https://{GUARDED_SITE}.example"
GUARDED_API = f"/api/v1/sites/{GUARDED_SITE}"
#: Page key of each thread, by its number of comments.
THREADS = {50: "/peers/thread-50", 100: "/peers/thread-100"}
COUNT_PAGES = tuple(f"/peers/counts/{number:02d}" for number in range(1, 21))
#: One comment in this many is a reply.
REPLY_EVERY = 5
#: The order comments are posted in: top-level ones (then approved), replies to them (then
#: approved), and the pending ones.
TOP, REPLY, PENDING = range(3)


@dataclass(frozen=True)
class SeedComment:
    """One comment of the seed, as both systems get it."""

    number: int
    page: str
    text: str
    #: ``TOP``, ``REPLY`` or ``PENDING``: when it is posted, and whether it is approved.
    wave: int
    #: The position, in its page's list, of the comment it answers.
    parent: int | None = None

    @property
    def author(self) -> str:
        return f"Reader {self.number}"

    @property
    def email(self) -> str:
        return f"reader{self.number}@example.com"

    @property
    def website(self) -> str | None:
        return f"https://reader{self.number}.example/" if self.number % 3 == 0 else None


def seed_pages() -> dict[str, list[SeedComment]]:
    """Each page's comments, in the order they are posted."""
    texts = [body for body, _ in body_variants(random.Random(SEED))]
    numbers = itertools.count(1)

    def comment(page: str, wave: int, parent: int | None = None) -> SeedComment:
        number = next(numbers)
        text = f"Comment {number}. {texts[number % len(texts)]}"
        return SeedComment(number, page, text, wave, parent)

    pages: dict[str, list[SeedComment]] = {}
    for count, page in THREADS.items():
        replies = count // REPLY_EVERY
        top = [comment(page, TOP) for _ in range(count - replies)]
        # Reply n answers top-level comment 3n (mod their number): one reply each at most.
        pages[page] = top + [comment(page, REPLY, 3 * n % len(top)) for n in range(replies)]
    for count, page in enumerate(COUNT_PAGES, start=1):
        pages[page] = [comment(page, TOP) for _ in range(count)] + [comment(page, PENDING)]
    return pages


def approved_counts() -> dict[str, int]:
    """The approved comments of each counts page: what both must answer."""
    pages = seed_pages()
    return {page: sum(c.wave != PENDING for c in pages[page]) for page in COUNT_PAGES}


class Storage(Protocol):
    """A system being seeded: it stores a comment (pending) and approves comments."""

    def post(self, comment: SeedComment, parent_id: int | None) -> int: ...
    def approve(self, ids: Sequence[int]) -> None: ...


def seed(storage: Storage) -> int:
    """Post and approve every page's comments, wave by wave; how many were posted."""
    posted = 0
    for comments in seed_pages().values():
        ids: list[int] = []
        for wave, group in itertools.groupby(comments, key=lambda c: c.wave):
            batch = list(group)
            new = [storage.post(c, None if c.parent is None else ids[c.parent]) for c in batch]
            ids += new
            posted += len(new)
            if wave != PENDING:
                storage.approve(new)
    return posted


@dataclass
class CommentsvcStorage:
    """commentsvc's public API, and its moderation API with a moderator's token."""

    url: str
    token: str
    http: requests.Session

    def post(self, comment: SeedComment, parent_id: int | None) -> int:
        answer = self.http.post(
            f"{self.url}{API}/comments",
            json={
                "page": comment.page,
                "page_url": ORIGIN + comment.page,
                "page_title": _title(comment.page),
                "body": comment.text,
                "author_name": comment.author,
                "author_email": comment.email,
                "author_url": comment.website,
                "parent_id": parent_id,
            },
            timeout=10,
        )
        return int(_checked(answer, 201)["id"])

    def approve(self, ids: Sequence[int]) -> None:
        answer = self.http.post(
            f"{self.url}/api/v1/moderation/comments/bulk",
            json={"ids": list(ids), "action": "approve"},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        _checked(answer, 200)


@dataclass
class IssoStorage:
    """Isso's ``POST /new`` (with the page's title, as the embed sends it) and its admin."""

    isso: IssoServer

    def post(self, comment: SeedComment, parent_id: int | None) -> int:
        created = self.isso.new(
            comment.page,
            text=comment.text,
            author=comment.author,
            email=comment.email,
            website=comment.website,
            parent=parent_id,
            title=_title(comment.page),
        )
        if not created.pending:
            raise SetupError(f"Isso published comment {created.id} at once: moderation is off")
        return created.id

    def approve(self, ids: Sequence[int]) -> None:
        self.isso.activate(*ids)


def seed_blocklist(url: str, token: str, http: requests.Session) -> int:
    """The load benchmark's blocklist on commentsvc's ``guarded`` site, one entry per request
    of the moderation API; how many it holds after (SetupError unless all of them)."""
    blocklist = f"{url}/api/v1/moderation/blocklist"
    headers = {"Authorization": f"Bearer {token}"}
    for kind, value in blocklist_values():
        answer = http.post(
            blocklist,
            json={"kind": kind.value, "value": value, "site": GUARDED_SITE},
            headers=headers,
            timeout=10,
        )
        if answer.status_code not in (200, 201):
            raise SetupError(f"POST {blocklist}: {answer.status_code} {answer.text[:300]}")
    listed = http.get(blocklist, params={"site": GUARDED_SITE}, headers=headers, timeout=30)
    held = len(_checked(listed, 200)["entries"])
    if held != BLOCKLIST_ENTRIES:
        raise SetupError(f"the {GUARDED_SITE} site holds {held} blocklist entries, not 1,000")
    return held


def _title(page: str) -> str:
    return f"Article {page}"


def _checked(answer: requests.Response, status: int) -> dict[str, Any]:
    if answer.status_code != status:
        raise SetupError(
            f"{answer.request.method} {answer.url}: {answer.status_code} {answer.text[:300]}"
        )
    body: dict[str, Any] = answer.json()
    return body


def quoted(key: str) -> str:
    """``key`` as JavaScript's ``encodeURIComponent`` writes it (both widgets use it)."""
    return urllib.parse.quote(key, safe="-_.!~*'()")

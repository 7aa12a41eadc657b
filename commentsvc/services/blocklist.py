"""The blocklist (DESIGN §7): entries per site or for every site, matched by kind.

Values are normalized once, when an entry is added, and submissions are normalized the same
way when they are checked, so that ``WWW.Example.COM``, ``https://example.com/x`` and
``bücher.example`` as ``xn--bcher-kva.example`` all find their entry.

Matching never scans the table. Each worker keeps the entries in memory as hash sets, and
checks at every submission, by one more column of the submission's first read, whether the
blocklist's generation (bumped in the same transaction as every change) is still the one it
loaded: a change applies from the next submission on, in every worker and replica.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import idna
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from commentsvc.caching import worker_cache
from commentsvc.extensions import db, write_transaction
from commentsvc.markup import Markup, link_targets, visible_text
from commentsvc.models import BlocklistEntry, BlocklistKind, Generation, Site, utcnow
from commentsvc.security import IPAddress, parse_ip
from commentsvc.services.errors import Forbidden, Invalid, NotFound

GENERATION = "blocklist"
MAX_VALUE_LENGTH: int = BlocklistEntry.value.type.length
_CACHE = "blocklist"
_WORD = re.compile(r"\w+")
#: Host names in free text: ``example.com``, ``www.bücher.example``, a link's host.
_HOST = re.compile(r"(?<![\w.-])(?:[\w-]+\.)+[\w-]+")
_ASCII_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


#: Invisible formatting characters (Unicode's Cf) a word may hide behind: the soft hyphen,
#: zero-width spaces and joiners, direction marks and isolates, the word joiner, the BOM.
#: Gone before words are split: ``bad\u200bword`` reads "badword" on the screen.
_INVISIBLE = dict.fromkeys(
    [
        0x00AD,
        0x061C,
        0x180E,
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2070),
        0xFEFF,
    ]
)


def words(text: str) -> tuple[str, ...]:
    """The words of ``text``, compatibility-normalized and case-folded (full-width
    letters, ``CASINO`` and ``casino`` are one word; punctuation separates words; invisible
    characters do not)."""
    shown = unicodedata.normalize("NFKC", text.translate(_INVISIBLE)).casefold()
    return tuple(_WORD.findall(shown))


def normalize_domain(value: str) -> str | None:
    """A host name as entries and submissions compare it: lower case, no trailing dot, no
    leading ``www.`` or ``*.``, internationalized names as punycode; None if not a host."""
    host = value.strip()
    if "/" in host or ":" in host:
        host = urlsplit(host if "//" in host else f"//{host}").hostname or ""
    host = host.strip().rstrip(".").lower()
    for prefix in ("*.", "www."):
        host = host.removeprefix(prefix)
    if not host or host.startswith(".") or ".." in host:
        return None
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                return None
    return host if _ASCII_HOST.fullmatch(host) else None


def _suffixes(domain: str) -> Iterator[str]:
    """``a.b.example`` and every domain it is under: ``b.example``, ``example``."""
    labels = domain.split(".")
    for start in range(len(labels)):
        yield ".".join(labels[start:])


def _email(value: str) -> str:
    value = value.strip()
    if value.startswith("@"):
        domain = normalize_domain(value[1:]) if "/" not in value else None
        if domain is None:
            raise Invalid.on("value", "Not a domain after '@'.")
        return f"@{domain}"
    try:
        info = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise Invalid.on("value", f"Not an email address or @domain: {error}") from None
    return normalize_email(info.normalized)


def normalize_email(address: str) -> str:
    """An address as entries and submissions compare it: case-folded, its domain as
    punycode."""
    local, _, domain = address.rpartition("@")
    return f"{local.casefold()}@{normalize_domain(domain) or domain.lower()}"


def _domain(value: str) -> str:
    domain = normalize_domain(value)
    if domain is None:
        raise Invalid.on("value", "Not a domain name (such as example.com).")
    return domain


def _ip(value: str) -> str:
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise Invalid.on(
            "value", "Not an IP address or CIDR range (such as 203.0.113.0/24)."
        ) from None
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        mapped = network.network_address.ipv4_mapped
        network = ipaddress.IPv4Network(f"{mapped}/{max(network.prefixlen - 96, 0)}", strict=False)
    return str(network)


def _word(value: str) -> str:
    phrase = " ".join(words(value))
    if not phrase:
        raise Invalid.on("value", "A word or phrase needs at least one letter or digit.")
    return phrase


_NORMALIZE = {
    BlocklistKind.EMAIL: _email,
    BlocklistKind.DOMAIN: _domain,
    BlocklistKind.IP: _ip,
    BlocklistKind.WORD: _word,
}


def parse_kind(kind: str) -> BlocklistKind:
    """The kind ``kind`` names; Invalid on ``kind`` otherwise."""
    try:
        return BlocklistKind(kind.strip().lower())
    except ValueError:
        kinds = ", ".join(BlocklistKind)
        raise Invalid.on("kind", f"Must be one of: {kinds}.") from None


def normalize_value(kind: BlocklistKind, value: str) -> str:
    """``value`` as an entry of ``kind`` stores it; Invalid on ``value`` if it is none."""
    if not value.strip():
        raise Invalid.on("value", "This field is required.")
    normalized = _NORMALIZE[kind](value)
    if len(normalized) > MAX_VALUE_LENGTH:
        raise Invalid.on("value", f"Must be at most {MAX_VALUE_LENGTH} characters.")
    return normalized


# --- managing entries -------------------------------------------------------------------


def _bump_generation() -> None:
    """Tell every worker that the blocklist changed (inside the change's transaction)."""
    bumped = db.session.execute(
        sa.update(Generation)
        .where(Generation.name == GENERATION)
        .values(value=Generation.value + 1)
    )
    if not bumped.rowcount:  # type: ignore[attr-defined]
        db.session.add(Generation(name=GENERATION, value=1))


def add_entry(
    kind: str, value: str, site_id: int | None, created_by: str
) -> tuple[BlocklistEntry, bool]:
    """Add an entry (``site_id`` None: every site); returns it and whether it is new (the
    same normalized entry already there is returned as it is)."""
    with write_transaction():
        return add_in_transaction(kind, value, site_id, created_by)


def add_in_transaction(
    kind: str, value: str, site_id: int | None, created_by: str
) -> tuple[BlocklistEntry, bool]:
    """:func:`add_entry` inside a write transaction that the caller holds."""
    parsed = parse_kind(kind)
    normalized = normalize_value(parsed, value)
    if site_id is not None and db.session.get(Site, site_id) is None:
        raise NotFound("There is no such site.")
    same_site = (
        BlocklistEntry.site_id.is_(None) if site_id is None else BlocklistEntry.site_id == site_id
    )
    existing = db.session.scalar(
        sa.select(BlocklistEntry).where(
            BlocklistEntry.kind == parsed, BlocklistEntry.value == normalized, same_site
        )
    )
    if existing is not None:
        return existing, False
    entry = BlocklistEntry(
        site_id=site_id, kind=parsed, value=normalized, created_by=created_by, created_at=utcnow()
    )
    db.session.add(entry)
    _bump_generation()
    return entry, True


def entries(scope: set[int] | None, site_id: int | None = None) -> Sequence[BlocklistEntry]:
    """Entries a moderator with ``scope`` (None: every site) may see, newest first: those
    for every site and those of the sites in scope; narrowed to one site (and the
    every-site entries that hold there too) when ``site_id`` is given."""
    statement = sa.select(BlocklistEntry).order_by(BlocklistEntry.id.desc())
    if site_id is not None:
        statement = statement.where(
            sa.or_(BlocklistEntry.site_id.is_(None), BlocklistEntry.site_id == site_id)
        )
    if scope is not None:
        statement = statement.where(
            sa.or_(BlocklistEntry.site_id.is_(None), BlocklistEntry.site_id.in_(scope))
        )
    return db.session.scalars(statement).all()


def find_entry(entry_id: int, scope: set[int] | None) -> BlocklistEntry:
    """One entry a moderator with ``scope`` may see; NotFound otherwise."""
    entry = db.session.get(BlocklistEntry, entry_id)
    if entry is None or not (entry.site_id is None or scope is None or entry.site_id in scope):
        raise NotFound(f"There is no blocklist entry {entry_id}.")
    return entry


def remove_entry(entry_id: int, scope: set[int] | None) -> BlocklistEntry:
    """Remove an entry; NotFound if there is none in sight, Forbidden for an every-site
    entry unless the moderator moderates every site."""
    with write_transaction():
        entry = find_entry(entry_id, scope)
        if not can_manage(scope, entry.site_id):
            raise Forbidden("Only a moderator of every site may remove an every-site entry.")
        db.session.delete(entry)
        _bump_generation()
    return entry


def can_manage(scope: set[int] | None, site_id: int | None) -> bool:
    """Whether a moderator with ``scope`` may add or remove entries of ``site_id`` (None:
    every site, which only moderators of every site may)."""
    if scope is None:
        return True
    return site_id is not None and site_id in scope


# --- matching ---------------------------------------------------------------------------


@dataclass
class _Lists:
    """The entries of one site (or of every site), as sets to look values up in."""

    emails: set[str] = field(default_factory=set)
    domains: set[str] = field(default_factory=set)
    #: Ranges by (IP version, prefix length): the numbers of their network parts.
    networks: dict[tuple[int, int], set[int]] = field(default_factory=dict)
    #: Words and phrases by their number of words.
    phrases: dict[int, set[tuple[str, ...]]] = field(default_factory=dict)

    def add(self, kind: BlocklistKind, value: str) -> None:
        if kind == BlocklistKind.EMAIL:
            self.emails.add(value)
        elif kind == BlocklistKind.DOMAIN:
            self.domains.add(value)
        elif kind == BlocklistKind.IP:
            network = ipaddress.ip_network(value)
            key = (network.version, network.prefixlen)
            shift = network.max_prefixlen - network.prefixlen
            self.networks.setdefault(key, set()).add(int(network.network_address) >> shift)
        else:
            phrase = tuple(value.split(" "))
            self.phrases.setdefault(len(phrase), set()).add(phrase)


class Traits:
    """What the blocklist looks at in a submission, normalized as entries are; each part
    worked out when a kind of entry first asks for it (a blocklist without domains never
    parses a host name)."""

    def __init__(
        self,
        email: str,
        name: str,
        website: str | None,
        body: str,
        address: str | None,
        links: Sequence[str] = (),
        body_html: str | None = None,
    ) -> None:
        self._email = email
        self._name = name
        self._website = website
        self._body = body
        self._address = address
        #: Where the body's rendered links point (a Markdown link may spell its target in
        #: ways the text alone does not show, such as entities).
        self._links = links
        #: The body as rendered, when its markup shows words its text splits (Markdown:
        #: ``bad*wo*rd`` reads "badword"); None when readers see the words of the text.
        self._body_html = body_html

    @classmethod
    def of_comment(
        cls,
        email: str,
        name: str,
        website: str | None,
        body: str,
        address: str | None,
        body_html: str,
        markup: Markup,
    ) -> Traits:
        """The traits of a comment whose ``body``, rendered in its site's ``markup``, is
        ``body_html``: where its links point, and on a Markdown site the words readers
        see, which the markup may join across what the text splits (``bad*wo*rd``)."""
        shown = body_html if markup == Markup.MARKDOWN else None
        return cls(email, name, website, body, address, link_targets(body_html), shown)

    @functools.cached_property
    def emails(self) -> tuple[str, str]:
        """The address, and ``@`` its domain."""
        email = normalize_email(self._email)
        return email, "@" + email.rpartition("@")[2]

    @functools.cached_property
    def domains(self) -> frozenset[str]:
        """Every domain named (email, website, hosts in the body) and every domain above."""
        hosts = [self._email.rpartition("@")[2], *_HOST.findall(self._body)]
        for link in self._links:
            hosts.extend(_HOST.findall(link))
        if self._website:
            hosts.extend([self._website, *_HOST.findall(self._website)])
        return frozenset(
            suffix
            for host in hosts
            if (domain := normalize_domain(host)) is not None
            for suffix in _suffixes(domain)
        )

    @functools.cached_property
    def address(self) -> IPAddress | None:
        return parse_ip(self._address)

    @functools.cached_property
    def texts(self) -> tuple[tuple[str, ...], ...]:
        """The words of the body, the name and the website, each apart; and, when they
        differ, those of the body as readers see it rendered (the text's own words are
        still checked: a word in a link's target or in code is there all the same)."""
        body = words(self._body)
        texts: tuple[tuple[str, ...], ...] = (body, words(self._name), words(self._website or ""))
        if self._body_html is not None:
            shown = words(visible_text(self._body_html))
            if shown != body:
                texts += (shown,)
        return texts


def _has_phrase(text: Sequence[str], phrases: dict[int, set[tuple[str, ...]]]) -> bool:
    """Whether ``text`` (a sequence of words) holds one of ``phrases`` (by length)."""
    for length, wanted in phrases.items():
        # Every run of ``length`` words of the text, made by zip (no loop in Python).
        runs = zip(*(itertools.islice(text, start, None) for start in range(length)), strict=False)
        if not wanted.isdisjoint(runs):
            return True
    return False


@dataclass(frozen=True)
class Blocklist:
    """Every entry, by site (None: every site), as loaded at ``generation``."""

    generation: int
    lists: dict[int | None, _Lists]

    def _applying(self, site_id: int) -> Iterator[_Lists]:
        for key in (None, site_id):
            if (lists := self.lists.get(key)) is not None:
                yield lists

    def prepare(self, site_id: int, traits: Traits) -> None:
        """Work out now the parts of ``traits`` that matching them on a site will read."""
        for lists in self._applying(site_id):
            if lists.emails:
                traits.emails  # noqa: B018 - a cached property, computed here
            if lists.domains:
                traits.domains  # noqa: B018
            if lists.networks:
                traits.address  # noqa: B018
            if lists.phrases:
                traits.texts  # noqa: B018

    def email(self, site_id: int, traits: Traits) -> bool:
        return any(
            value in lists.emails
            for lists in self._applying(site_id)
            if lists.emails
            for value in traits.emails
        )

    def domain(self, site_id: int, traits: Traits) -> bool:
        return any(
            not lists.domains.isdisjoint(traits.domains)
            for lists in self._applying(site_id)
            if lists.domains
        )

    def ip(self, site_id: int, traits: Traits) -> bool:
        for lists in self._applying(site_id):
            if not lists.networks or (address := traits.address) is None:
                continue
            number = int(address)
            for (version, prefix), networks in lists.networks.items():
                shift = address.max_prefixlen - prefix
                if version == address.version and number >> shift in networks:
                    return True
        return False

    def word(self, site_id: int, traits: Traits) -> bool:
        return any(
            _has_phrase(text, lists.phrases)
            for lists in self._applying(site_id)
            if lists.phrases
            for text in traits.texts
        )


_GENERATION = sa.select(Generation.value).where(Generation.name == GENERATION)
_ENTRIES = sa.select(BlocklistEntry.site_id, BlocklistEntry.kind, BlocklistEntry.value)


class _Holder:
    """This worker's copy of the blocklist."""

    blocklist: Blocklist | None = None


def cached_blocklist() -> Blocklist:
    """This worker's copy of the blocklist as last loaded (perhaps stale; empty if none)."""
    holder = worker_cache(_CACHE, lambda config: _Holder())
    return holder.blocklist or Blocklist(-1, {})


#: The blocklist's generation, as a column of another statement (one round trip fewer).
GENERATION_COLUMN = _GENERATION.scalar_subquery()


def current_blocklist(connection: sa.Connection, generation: int | None = None) -> Blocklist:
    """The blocklist at ``generation`` (read now if not given): this worker's copy, loaded
    again if the blocklist changed since."""
    holder = worker_cache(_CACHE, lambda config: _Holder())
    if generation is None:
        generation = connection.execute(_GENERATION).scalar() or 0
    if holder.blocklist is None or holder.blocklist.generation != generation:
        holder.blocklist = _load(connection, generation)
    return holder.blocklist


def _load(connection: sa.Connection, generation: int) -> Blocklist:
    lists: dict[int | None, _Lists] = {}
    for site_id, kind, value in connection.execute(_ENTRIES):
        lists.setdefault(site_id, _Lists()).add(kind, value)
    return Blocklist(generation, lists)


def described(entries: Iterable[tuple[BlocklistKind, str]]) -> str:
    """Entries as an audit note or a message says them: ``email a@b.example, ip …``."""
    return ", ".join(f"{kind.value} {value}" for kind, value in entries)


def offered_entries(email: str, ip_prefix: str | None) -> list[tuple[BlocklistKind, str]]:
    """What "spam and block this author" offers to block for a comment: the address, its
    domain, and the client's anonymized address range; each only if it makes an entry (an
    erased comment has no email to offer)."""
    candidates = [(BlocklistKind.EMAIL, email), (BlocklistKind.DOMAIN, email.rpartition("@")[2])]
    if ip_prefix:
        prefix = 24 if ":" not in ip_prefix else 48
        candidates.append((BlocklistKind.IP, f"{ip_prefix}/{prefix}"))
    offers = []
    for kind, value in candidates:
        try:
            offers.append((kind, normalize_value(kind, value)))
        except Invalid:
            continue
    return offers

"""Sites: adding and changing them (CLI and panel), and finding one for a public request."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cachetools import TTLCache
from flask import current_app

from commentsvc.caching import drop_worker_cache, worker_cache
from commentsvc.extensions import db, read_connection, write_transaction
from commentsvc.markup import Markup
from commentsvc.models import Site
from commentsvc.security import normalize_origin
from commentsvc.services.errors import Invalid, NotFound
from commentsvc.services.unique import insert_unique

MAX_SLUG_LENGTH: int = Site.slug.type.length
SLUG = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_SLUG_LENGTH - 1}}}$")
_CACHE = "sites"


#: The site's moderation modes (DESIGN §7): every comment waits for a moderator, or only
#: those whose author has no approved comment on the site yet.
MODERATION_MODES = ("all", "first")
#: Largest ``max_links`` and ``min_fill_seconds`` a site may set.
MAX_LINKS_LIMIT = 1000
MAX_FILL_SECONDS = 3600


@dataclass(frozen=True)
class SiteRules:
    """A site's graded pre-moderation settings (DESIGN §7), with their defaults."""

    moderation: str = "all"
    max_links: int = 2
    min_fill_seconds: int = 3

    @classmethod
    def of(cls, settings: Mapping[str, object] | None) -> SiteRules:
        """The rules stored in a site's settings; a missing one takes its default."""
        stored = settings or {}
        default = cls()
        return cls(
            moderation=str(stored.get("moderation", default.moderation)),
            max_links=int(stored.get("max_links", default.max_links)),  # type: ignore[call-overload]
            min_fill_seconds=int(
                stored.get("min_fill_seconds", default.min_fill_seconds)  # type: ignore[call-overload]
            ),
        )

    def checked(self) -> SiteRules:
        """These rules; Invalid naming each setting out of bounds."""
        errors: dict[str, list[str]] = {}
        if self.moderation not in MODERATION_MODES:
            errors["moderation"] = [f"Must be one of: {', '.join(MODERATION_MODES)}."]
        if not 0 <= self.max_links <= MAX_LINKS_LIMIT:
            errors["max_links"] = [f"Must be from 0 to {MAX_LINKS_LIMIT}."]
        if not 0 <= self.min_fill_seconds <= MAX_FILL_SECONDS:
            errors["min_fill_seconds"] = [f"Must be from 0 to {MAX_FILL_SECONDS}."]
        if errors:
            raise Invalid(errors)
        return self

    def as_settings(self) -> dict[str, object]:
        return {
            "moderation": self.moderation,
            "max_links": self.max_links,
            "min_fill_seconds": self.min_fill_seconds,
        }


def feeds_on(settings: Mapping[str, object] | None) -> bool:
    """Whether a site with these settings publishes Atom feeds (DESIGN §8; the default)."""
    return bool((settings or {}).get("feeds", True))


#: The markups a site may choose (DESIGN §10).
MARKUPS = tuple(markup.value for markup in Markup)


def markup_of(settings: Mapping[str, object] | None) -> Markup:
    """The markup a site with these settings renders its comments in (``text``, the
    default, or ``markdown``)."""
    return Markup(str((settings or {}).get("markup", Markup.TEXT.value)))


@dataclass(frozen=True)
class PublicSite:
    """What the public API needs of a site; cached for ``SITE_CACHE_SECONDS`` per worker."""

    id: int
    slug: str
    origins: tuple[str, ...]
    comments_open: bool
    rules: SiteRules = SiteRules()
    feeds: bool = True
    markup: Markup = Markup.TEXT


_SITE_BY_SLUG = sa.select(Site.id, Site.slug, Site.origins, Site.settings).where(
    Site.slug == sa.bindparam("slug")
)


def _make_cache(config: Mapping[str, Any]) -> TTLCache[str, PublicSite]:
    return TTLCache(maxsize=1024, ttl=max(config["SITE_CACHE_SECONDS"], 0.001))


def get_site(slug: str) -> PublicSite | None:
    """The site with this slug, or None.

    Every public request names its site, and sites change seldom: a site found is kept for
    ``SITE_CACHE_SECONDS`` (a change made through this process clears it at once; other
    workers see it within that time). Unknown slugs are not cached.
    """
    caching = current_app.config["SITE_CACHE_SECONDS"] > 0
    cache = worker_cache(_CACHE, _make_cache) if caching else None
    if cache is not None and (found := cache.get(slug)) is not None:
        return found
    with read_connection() as connection:
        row = connection.execute(_SITE_BY_SLUG, {"slug": slug}).first()
    if row is None:
        return None
    found = PublicSite(
        row.id,
        row.slug,
        tuple(row.origins or ()),
        Site.open_for_comments(row.settings),
        SiteRules.of(row.settings),
        feeds_on(row.settings),
        markup_of(row.settings),
    )
    if cache is not None:
        cache[slug] = found
    return found


def forget_sites() -> None:
    """Drop this worker's cached sites (after a site changed)."""
    drop_worker_cache(_CACHE)


def normalize_origins(origins: Iterable[str]) -> list[str]:
    """Each origin as ``scheme://host[:port]``, at least one; Invalid naming the first bad one."""
    normalized: list[str] = []
    for origin in origins:
        value = normalize_origin(origin)
        if value is None:
            raise Invalid.on("origins", f"{origin!r} is not an origin (scheme://host[:port])")
        if value not in normalized:
            normalized.append(value)
    if not normalized:
        raise Invalid.on("origins", "a site needs at least one origin")
    return normalized


def create_site(slug: str, origins: Iterable[str], name: str | None = None) -> Site:
    """Add a site that may embed comments from the given origins."""
    if not SLUG.match(slug):
        raise Invalid.on("slug", f"the slug must be 1-{MAX_SLUG_LENGTH} of a-z, 0-9, '-' and '_'")
    normalized = normalize_origins(origins)
    site = Site(slug=slug, name=name or slug, origins=normalized, settings={})
    insert_unique(site, Site.slug == slug, "slug", f"site {slug!r} already exists")
    return site


def update_site(
    site_id: int,
    name: str,
    origins: Iterable[str],
    comments_open: bool,
    rules: SiteRules | None = None,
    feeds: bool | None = None,
) -> Site:
    """Change a site's name, origins, whether it accepts comments and (when given) its
    moderation rules and whether it publishes feeds."""
    normalized = normalize_origins(origins)
    settings: dict[str, object] = {"comments_open": comments_open}
    if rules is not None:
        settings.update(rules.checked().as_settings())
    if feeds is not None:
        settings["feeds"] = feeds
    with write_transaction():
        site = db.session.get(Site, site_id)
        if site is None:
            raise NotFound("there is no such site")
        site.name = name.strip() or site.slug
        site.origins = normalized
        site.settings = {**site.settings, **settings}
    forget_sites()
    return site


def change_origins(slug: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> list[str]:
    """Add origins to a site and remove others (adding one it has, or removing one it has
    not, changes nothing); Invalid when an origin is malformed or none would be left.
    Returns the site's origins now."""
    added = normalize_origins(add) if add else []
    removed = set(normalize_origins(remove)) if remove else set()
    with write_transaction():
        site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
        if site is None:
            raise NotFound(f"there is no site {slug!r}")
        kept = [origin for origin in site.origins if origin not in removed]
        site.origins = normalize_origins([*kept, *added])
    forget_sites()
    return list(site.origins)


def set_rules(slug: str, **changes: object) -> SiteRules:
    """Change some of a site's moderation rules (``moderation``, ``max_links``,
    ``min_fill_seconds``); the others keep their values. Returns the rules now in force."""
    with write_transaction():
        site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
        if site is None:
            raise NotFound(f"there is no site {slug!r}")
        current = SiteRules.of(site.settings).as_settings()
        rules = SiteRules.of({**current, **changes}).checked()
        site.settings = {**site.settings, **rules.as_settings()}
    forget_sites()
    return rules


def set_markup(slug: str, markup: Markup) -> bool:
    """Set the markup a site's comments are written in (DESIGN §10); returns whether it
    changed. Its stored comments keep their HTML until they are rendered again
    (:func:`commentsvc.services.rerender.rerender_comments`)."""
    with write_transaction():
        site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
        if site is None:
            raise NotFound(f"there is no site {slug!r}")
        if markup_of(site.settings) == markup:
            return False
        site.settings = {**site.settings, "markup": markup.value}
    forget_sites()
    return True


def set_feeds(slug: str, on: bool) -> bool:
    """Turn a site's Atom feeds on or off (DESIGN §8); returns whether they are on now."""
    with write_transaction():
        site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
        if site is None:
            raise NotFound(f"there is no site {slug!r}")
        site.settings = {**site.settings, "feeds": on}
    forget_sites()
    return on


def all_sites() -> Sequence[Site]:
    """Every site, by slug."""
    return db.session.scalars(sa.select(Site).order_by(Site.slug)).all()


def sites_by_slug(slugs: Iterable[str]) -> list[Site]:
    """The sites with these slugs; Invalid naming the first unknown one."""
    sites = []
    for slug in slugs:
        site = db.session.scalar(sa.select(Site).where(Site.slug == slug))
        if site is None:
            raise Invalid.on("sites", f"there is no site {slug!r}")
        sites.append(site)
    return sites

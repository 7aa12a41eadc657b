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
from commentsvc.models import Site
from commentsvc.security import normalize_origin
from commentsvc.services.errors import Invalid, NotFound
from commentsvc.services.unique import insert_unique

MAX_SLUG_LENGTH: int = Site.slug.type.length
SLUG = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_SLUG_LENGTH - 1}}}$")
_CACHE = "sites"


@dataclass(frozen=True)
class PublicSite:
    """What the public API needs of a site; cached for ``SITE_CACHE_SECONDS`` per worker."""

    id: int
    slug: str
    origins: tuple[str, ...]
    comments_open: bool


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
        row.id, row.slug, tuple(row.origins or ()), Site.open_for_comments(row.settings)
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


def update_site(site_id: int, name: str, origins: Iterable[str], comments_open: bool) -> Site:
    """Change a site's name, origins and whether it accepts comments."""
    normalized = normalize_origins(origins)
    with write_transaction():
        site = db.session.get(Site, site_id)
        if site is None:
            raise NotFound("there is no such site")
        site.name = name.strip() or site.slug
        site.origins = normalized
        site.settings = {**site.settings, "comments_open": comments_open}
    forget_sites()
    return site


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

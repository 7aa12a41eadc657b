"""Who a moderation API request speaks for: bearer tokens checked on every request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from commentsvc.extensions import db, read_connection, write_transaction
from commentsvc.models import ApiToken, Moderator, moderator_sites, utcnow
from commentsvc.security import hash_token

#: Use is recorded at most this often, so that reads do not each cost a write.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenHolder:
    """Whom an API token speaks for: a moderator, and the sites they may see (None: all)."""

    moderator_id: int
    scope: set[int] | None

    def moderator(self) -> Moderator | None:
        """The moderator, loaded to act; None if removed or deactivated since the check."""
        moderator = db.session.get(Moderator, self.moderator_id)
        return moderator if moderator is not None and moderator.is_active else None


_TOKEN_HOLDER = (
    sa.select(
        Moderator.id,
        Moderator.is_admin,
        Moderator.all_sites,
        ApiToken.id.label("token_id"),
        ApiToken.last_used_at,
    )
    .join(ApiToken, ApiToken.moderator_id == Moderator.id)
    .where(
        ApiToken.token_hash == sa.bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        Moderator.is_active.is_(True),
    )
)
_SITES_OF_MODERATOR = sa.select(moderator_sites.c.site_id).where(
    moderator_sites.c.moderator_id == sa.bindparam("moderator_id")
)
_TOUCH_TOKEN = (
    sa.update(ApiToken)
    .where(ApiToken.id == sa.bindparam("token_id"))
    .values(last_used_at=sa.bindparam("now"))
)


def authenticate_token(token: str) -> TokenHolder | None:
    """Whom a bearer token speaks for, if it is valid and its moderator active; else None.

    Core rows on a connection of their own (see :func:`read_connection`): every moderation
    API request asks, and most only read. An action loads the moderator itself.
    """
    with read_connection() as connection:
        row = connection.execute(_TOKEN_HOLDER, {"token_hash": hash_token(token)}).first()
        if row is None:
            return None
        scope = None
        if not Moderator.sees_every_site(is_admin=row.is_admin, all_sites=row.all_sites):
            sites = connection.execute(_SITES_OF_MODERATOR, {"moderator_id": row.id})
            scope = set(sites.scalars())
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > TOKEN_TOUCH_INTERVAL:
        with write_transaction():
            db.session.execute(_TOUCH_TOKEN, {"token_id": row.token_id, "now": now})
    return TokenHolder(row.id, scope)

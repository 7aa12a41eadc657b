"""hardening: pages defined by approved comments only; login attempts without clear text

Revision ID: 0004_hardening
Revises: 0003_abuse_protection
Create Date: 2026-11-30 13:05:00.000000

"""
import json
import re
from urllib.parse import urlsplit

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_hardening'
down_revision = '0003_abuse_protection'
branch_labels = None
depends_on = None


def _login_attempts_v2():
    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('device', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.Enum('succeeded', 'failed', 'throttled', name='login_attempt_outcome', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_account', ['account', 'created_at'], unique=False)
        batch_op.create_index('ix_login_attempts_client', ['client', 'created_at'], unique=False)
        batch_op.create_index('ix_login_attempts_created_at', ['created_at'], unique=False)


def _login_attempts_v1():
    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_client', ['client', 'created_at'], unique=False)
        batch_op.create_index('ix_login_attempts_email', ['email', 'created_at'], unique=False)


# The page's URL and title: those of its newest approved comment that gave them.
_PAGES_FROM_APPROVED = """
UPDATE pages SET
  url = (SELECT c.page_url FROM comments c
         WHERE c.page_id = pages.id AND c.status = 'approved' AND c.page_url IS NOT NULL
         ORDER BY c.id DESC LIMIT 1),
  title = (SELECT c.page_title FROM comments c
           WHERE c.page_id = pages.id AND c.status = 'approved' AND c.page_title IS NOT NULL
           ORDER BY c.id DESC LIMIT 1)
"""


# What browsers and urlsplit may read differently: such a URL names no origin here.
_AMBIGUOUS = re.compile(r"[\\\s\x00-\x1f\x7f]")


def _origin(url):
    """The origin of an http(s) URL as the service stored site origins, or None."""
    if _AMBIGUOUS.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == (80 if parts.scheme == "http" else 443):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _forget_off_site_pages():
    """A page URL off its site's origins came from whoever commented first (nothing checked
    it before): it and the title sent with it are dropped from the page's comments."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT p.id, p.url, s.origins FROM pages p JOIN sites s ON s.id = p.site_id"
            " WHERE p.url IS NOT NULL"
        )
    ).all()
    for page_id, url, origins in rows:
        allowed = json.loads(origins) if isinstance(origins, str) else (origins or [])
        if _origin(url) not in allowed:
            bind.execute(
                sa.text(
                    "UPDATE comments SET page_url = NULL, page_title = NULL"
                    " WHERE page_id = :page_id"
                ),
                {"page_id": page_id},
            )


def upgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('page_url', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('page_title', sa.String(length=300), nullable=True))
    # Which comment gave a page its URL and title was not kept: every comment gets the
    # page's, and the page keeps them only if it has an approved comment.
    op.execute(
        "UPDATE comments SET"
        " page_url = (SELECT p.url FROM pages p WHERE p.id = comments.page_id),"
        " page_title = (SELECT p.title FROM pages p WHERE p.id = comments.page_id)"
    )
    _forget_off_site_pages()
    op.execute(_PAGES_FROM_APPROVED)

    # Throttling state only (the window is minutes long), with clear-text emails in it:
    # replaced, not converted.
    op.drop_table('login_attempts')
    _login_attempts_v2()


def downgrade():
    op.drop_table('login_attempts')
    _login_attempts_v1()
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_column('page_title')
        batch_op.drop_column('page_url')

"""hardening: pages defined by approved comments only; login attempts without clear text

Revision ID: 0004_hardening
Revises: 0003_abuse_protection
Create Date: 2026-11-30 13:05:00.000000

"""
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

"""edit tokens: a hash of the token a comment's author may edit or delete it with

Revision ID: 0008_edit_tokens
Revises: 0007_personal_data
Create Date: 2026-11-30 20:34:20.362704

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_edit_tokens'
down_revision = '0007_personal_data'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edit_token_hash', sa.String(length=64), nullable=True))



def downgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_column('edit_token_hash')


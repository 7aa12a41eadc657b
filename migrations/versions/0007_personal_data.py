"""personal data requests: a commenter's mailed link to export or erase their data

Revision ID: 0007_personal_data
Revises: 0006_imports
Create Date: 2026-11-30 19:50:40.056160

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_personal_data'
down_revision = '0006_imports'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('personal_data_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('kind', sa.Enum('export', 'erase', name='personal_data_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('client_hash', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_personal_data_requests_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_personal_data_requests'))
    )
    with op.batch_alter_table('personal_data_requests', schema=None) as batch_op:
        batch_op.create_index('ix_personal_data_requests_client', ['site_id', 'client_hash', 'created_at'], unique=False)
        batch_op.create_index('ix_personal_data_requests_email', ['site_id', 'email', 'created_at'], unique=False)



def downgrade():
    with op.batch_alter_table('personal_data_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_personal_data_requests_email')
        batch_op.drop_index('ix_personal_data_requests_client')

    op.drop_table('personal_data_requests')

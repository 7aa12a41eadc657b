"""imports: a record per imported comment (source, source id), so that a re-import adds nothing

Revision ID: 0006_imports
Revises: 0005_notifications
Create Date: 2026-11-30 18:26:47.751493

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_imports'
down_revision = '0005_notifications'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('import_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=200), nullable=False),
    sa.Column('parent_source_id', sa.String(length=200), nullable=True),
    sa.Column('comment_id', sa.Integer(), nullable=True),
    sa.Column('run', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], name=op.f('fk_import_records_comment_id_comments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_import_records_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_records')),
    sa.UniqueConstraint('site_id', 'source', 'source_id', name='uq_import_records_source')
    )
    with op.batch_alter_table('import_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_records_comment_id'), ['comment_id'], unique=False)
        batch_op.create_index('ix_import_records_run', ['run'], unique=False)



def downgrade():
    with op.batch_alter_table('import_records', schema=None) as batch_op:
        batch_op.drop_index('ix_import_records_run')
        batch_op.drop_index(batch_op.f('ix_import_records_comment_id'))

    op.drop_table('import_records')

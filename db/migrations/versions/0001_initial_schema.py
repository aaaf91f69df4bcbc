"""initial schema

Revision ID: 0001
Revises:

"""
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _image_columns() -> list[sa.Column[Any]]:
    return [
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('filename', sa.Text(), nullable=False),
    sa.Column('original_path', sa.Text(), nullable=False),
    sa.Column('mime_type', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('hash', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), server_default=sa.text("'pending'"), nullable=True),
    sa.Column('metadata', sa.Text(), nullable=True),
    sa.Column('created_at', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.Text(), nullable=True),
    sa.Column('lease_expires_at', sa.Float(), nullable=True),
    sa.Column('enqueued_at', sa.Float(), nullable=True),
    sa.Column('started_at', sa.Float(), nullable=True),
    sa.Column('completed_at', sa.Float(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=True),
    sa.Column('owns_original', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('source_url', sa.Text(), nullable=True),
    sa.Column('lane', sa.Text(), nullable=True),
    sa.Column('recipe', sa.Text(), nullable=True),
    sa.Column('timings', sa.Text(), nullable=True),
    sa.Column('orientation', sa.Integer(), nullable=True),
    sa.Column('taken_at', sa.Text(), nullable=True),
    sa.Column('gps', sa.Text(), nullable=True),
    sa.Column('placeholder', sa.Text(), nullable=True),
    sa.Column('dominant_color', sa.Text(), nullable=True),
    sa.Column('embedding_model', sa.Text(), nullable=True),
    sa.Column('embedded_at', sa.Float(), nullable=True),
    sa.Column('duplicate_of', sa.Text(), nullable=True),
    sa.Column('duplicate_score', sa.Float(), nullable=True),
    ]


def _variant_columns() -> list[sa.Column[Any]]:
    return [
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('image_id', sa.Text(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('format', sa.Text(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=True),
    ]


def _adopt(table: str, columns: list[sa.Column[Any]]) -> None:
    """The table exists already (an app created the seed-004 schema): add what is missing.

    Every column Darkroom adds is nullable or has a server default, so
    ``ALTER TABLE ... ADD COLUMN`` works on SQLite and PostgreSQL alike.
    """
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    for column in columns:
        if column.name not in present:
            op.add_column(table, column)


def upgrade() -> None:
    """Create the schema, or adopt an existing seed-004 images/image_variants pair."""
    insp = sa.inspect(op.get_bind())
    if insp.has_table('images'):
        _adopt('images', _image_columns())
    else:
        op.create_table('images', *_image_columns(),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_images'))
        )
    op.create_index('ix_images_completed_at', 'images', ['completed_at'], if_not_exists=True)
    op.create_index('ix_images_hash', 'images', ['hash'], if_not_exists=True)
    op.create_index('ix_images_status_lease', 'images', ['status', 'lease_expires_at'], if_not_exists=True)

    op.create_table('leases',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.Text(), nullable=True),
    sa.Column('expires_at', sa.Float(), nullable=True),
    sa.Column('last_run_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    op.create_table('maintenance_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.Column('outcome', sa.Text(), server_default=sa.text("'running'"), nullable=False),
    sa.Column('figures', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('host', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_runs'))
    )
    with op.batch_alter_table('maintenance_runs', schema=None) as batch_op:
        batch_op.create_index('ix_maintenance_runs_name_started', ['name', 'started_at'], unique=False)

    op.create_table('workers',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('host', sa.Text(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('version', sa.Text(), nullable=False),
    sa.Column('concurrency', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('heartbeat_at', sa.Float(), nullable=False),
    sa.Column('stopped_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers'))
    )
    if insp.has_table('image_variants'):
        _adopt('image_variants', _variant_columns())
        # Adopted tables keep their own constraints; the upsert needs this one.
        op.create_index('uq_image_variants_image_width_format', 'image_variants',
                        ['image_id', 'width', 'format'], unique=True, if_not_exists=True)
    else:
        op.create_table('image_variants', *_variant_columns(),
        sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_image_variants_image_id_images'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_image_variants')),
        sa.UniqueConstraint('image_id', 'width', 'format', name='uq_image_variants_image_width_format')
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('image_variants')
    op.drop_table('workers')
    with op.batch_alter_table('maintenance_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_maintenance_runs_name_started')

    op.drop_table('maintenance_runs')
    op.drop_table('leases')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index('ix_images_status_lease')
        batch_op.drop_index('ix_images_hash')
        batch_op.drop_index('ix_images_completed_at')

    op.drop_table('images')

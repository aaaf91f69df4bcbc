"""images.pending_vector: the vector an image job computed, until the embedding step writes it

Revision ID: 0004
Revises: 0003

With the ``local`` embedder, the image job describes the pixels it already
decoded and leaves the vector on its row (``pending_vector``: float32
little-endian bytes; ``pending_vector_model``: the model that made it). The
embedding step, LanceDB's one writer, takes the vector from the row instead
of opening the original again, writes it in its batch and clears both
columns. Both are nullable, with no default: an ``INSERT`` written against
contract version 2 is unchanged, and rows without a vector are embedded from
the file as before.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("images")}
    if "pending_vector" not in present:
        op.add_column("images", sa.Column("pending_vector", sa.LargeBinary(), nullable=True))
    if "pending_vector_model" not in present:
        op.add_column("images", sa.Column("pending_vector_model", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("pending_vector_model")
        batch.drop_column("pending_vector")

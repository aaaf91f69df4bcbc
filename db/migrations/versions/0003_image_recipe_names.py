"""images.recipe names the recipe; its fingerprint moves to recipe_fingerprint

Revision ID: 0003
Revises: 0002

Until now ``images.recipe`` held the fingerprint of the one recipe an
installation had (written by the worker, read by ``reprocess --missing``).
From contract version 2 the column is the producer's choice: the *name* of
a ``[recipes.NAME]`` table, NULL meaning ``default``. Existing rows keep
their fingerprint in the new ``recipe_fingerprint`` column and get NULL
(the default recipe, which is what built them) in ``recipe``, so a
``reprocess --missing`` after the upgrade finds nothing new to do.

The index serves the per-recipe counts of ``darkroom status`` and
``reprocess --recipe NAME``.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("images")}
    if "recipe_fingerprint" not in present:
        op.add_column("images", sa.Column("recipe_fingerprint", sa.Text(), nullable=True))
    op.execute("UPDATE images SET recipe_fingerprint = recipe, recipe = NULL WHERE recipe IS NOT NULL")
    op.create_index("ix_images_recipe_status", "images", ["recipe", "status"])


def downgrade() -> None:
    op.drop_index("ix_images_recipe_status", table_name="images")
    # Names cannot go back into a fingerprint column: the fingerprint is what the old code read.
    op.execute("UPDATE images SET recipe = recipe_fingerprint")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("recipe_fingerprint")

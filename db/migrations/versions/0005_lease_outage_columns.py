"""leases.outages and leases.outage_kind: the embedding step's outage state in its own columns

Revision ID: 0005
Revises: 0004

Until now an outage of the embedding step was written into the lease's
owner as ``outage:<n>:<kind>`` (consecutive failed runs, and what failed),
so that every process backs off together. The two facts now have columns:
``outages`` (0 when healthy) and ``outage_kind`` (NULL when healthy). A row
held for an outage at the time of the upgrade keeps its owner and expiry
(the backoff runs out as planned) and gets its count and kind copied into
the new columns. Additive: older code ignores the columns.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PREFIX = "outage:"


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("leases")}
    if "outages" not in present:
        op.add_column("leases", sa.Column("outages", sa.Integer(), nullable=False, server_default="0"))
    if "outage_kind" not in present:
        op.add_column("leases", sa.Column("outage_kind", sa.Text(), nullable=True))
    bind = op.get_bind()
    held = bind.execute(sa.text("SELECT name, owner FROM leases WHERE owner LIKE :p"), {"p": _PREFIX + "%"}).all()
    for name, owner in held:
        count, _, kind = owner[len(_PREFIX):].partition(":")
        if count.isdigit():
            bind.execute(sa.text("UPDATE leases SET outages = :n, outage_kind = :kind WHERE name = :name"),
                         {"n": int(count), "kind": kind or None, "name": name})


def downgrade() -> None:
    bind = op.get_bind()
    held = bind.execute(sa.text("SELECT name, outages, outage_kind FROM leases WHERE outages > 0")).all()
    for name, count, kind in held:  # back into the owner, where the old code reads it
        bind.execute(sa.text("UPDATE leases SET owner = :owner WHERE name = :name"),
                     {"owner": f"{_PREFIX}{count}:{kind or 'outage'}", "name": name})
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("outage_kind")
        batch.drop_column("outages")

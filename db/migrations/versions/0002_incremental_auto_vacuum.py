"""enable incremental auto_vacuum on SQLite

Revision ID: 0002
Revises: 0001

A file created before this revision has ``auto_vacuum = NONE``: deleted rows
leave free pages that only a full ``VACUUM`` gives back. Switching to
``INCREMENTAL`` lets the optimize duty return free pages a few hundred at a
time (``PRAGMA incremental_vacuum(N)``) instead of rewriting the whole file
while every writer waits.

The switch only takes effect after a ``VACUUM``, and ``VACUUM`` cannot run
inside a transaction, so the migration ends Alembic's transaction on the raw
connection, vacuums, and opens a new write transaction for Alembic to commit
its version stamp in. PostgreSQL has its own (auto)vacuum: nothing to do.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INCREMENTAL = 2


def _set_auto_vacuum(mode: str, code: int) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    raw = bind.connection.driver_connection
    assert raw is not None  # a live connection of the sqlite3 driver
    if raw.execute("PRAGMA auto_vacuum").fetchone()[0] == code:
        return
    # Work on the sqlite3 connection directly: SQLAlchemy still believes its
    # transaction is open, and it is again once BEGIN IMMEDIATE has run below.
    if raw.in_transaction:
        raw.execute("COMMIT")
    raw.execute(f"PRAGMA auto_vacuum = {mode}")
    raw.execute("VACUUM")
    raw.execute("BEGIN IMMEDIATE")


def upgrade() -> None:
    _set_auto_vacuum("INCREMENTAL", _INCREMENTAL)


def downgrade() -> None:
    _set_auto_vacuum("NONE", 0)

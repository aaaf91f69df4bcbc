"""Optimize, and migration 0002 that makes incremental vacuum possible on existing files."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Engine, text

from db.engine import make_engine, write_session
from db.maintenance.optimize import optimize
from db.migrate import alembic_config, current_revision, upgrade


def pragma(path: Path, name: str) -> Any:
    """A PRAGMA's value: an int (auto_vacuum) or a str (journal_mode)."""
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_migration_0002_turns_on_incremental_vacuum_in_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, "0001")  # a database made before 0002
    with write_session(engine) as s:
        s.execute(text("INSERT INTO leases (name, owner) VALUES ('kept', 'x')"))
    assert pragma(path, "auto_vacuum") == 0

    upgrade(engine, "0002")

    assert current_revision(engine) == "0002" and pragma(path, "auto_vacuum") == 2
    assert pragma(path, "journal_mode") == "wal"
    with engine.connect() as conn:  # data and the pool's connections still fine
        assert conn.execute(text("SELECT owner FROM leases WHERE name = 'kept'")).scalar_one() == "x"
    command.downgrade(alembic_config(engine), "0001")
    assert current_revision(engine) == "0001" and pragma(path, "auto_vacuum") == 0
    upgrade(engine)
    assert pragma(path, "auto_vacuum") == 2
    engine.dispose()


def test_optimize_gives_free_pages_back_in_chunks(engine: Engine, db_path: Path) -> None:
    with write_session(engine) as s:
        s.execute(text("CREATE TABLE junk (data BLOB)"))
        s.execute(text("INSERT INTO junk VALUES (randomblob(3000))"), [{}] * 2_000)
    with write_session(engine) as s:
        s.execute(text("DELETE FROM junk"))
    free = pragma(db_path, "freelist_count")
    assert free > 1_000

    figures = optimize(engine, analyze=True, free_pages_threshold=500, chunk_pages=256)

    # ANALYZE itself may take a page or two from the freelist for sqlite_stat1.
    assert figures["auto_vacuum"] == "INCREMENTAL" and free - 10 < figures["free_pages_before"] <= free
    assert figures["freed_pages"] == figures["free_pages_before"] and figures["free_pages_after"] == 0
    assert pragma(db_path, "freelist_count") == 0
    with sqlite3.connect(db_path) as conn:  # ANALYZE ran: the planner has statistics
        assert conn.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0] > 0
    again = optimize(engine)
    assert again["freed_pages"] == 0 and again["analyze"] is False


def test_without_incremental_auto_vacuum_it_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE junk (data BLOB)")
    conn.executemany("INSERT INTO junk VALUES (randomblob(3000))", [()] * 800)
    conn.commit()
    conn.execute("DELETE FROM junk")
    conn.commit()
    conn.close()
    engine = make_engine(f"sqlite:///{path}")
    figures = optimize(engine, free_pages_threshold=100)
    assert figures["freed_pages"] == 0 and "darkroom migrate" in figures["warnings"][0]
    engine.dispose()

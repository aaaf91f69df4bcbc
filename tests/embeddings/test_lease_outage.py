"""The embedding lease keeps an outage in its own columns (``leases.outages``, ``outage_kind``), not in the owner."""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from sqlalchemy import Engine, text

from db import migrate
from db.engine import make_engine
from jobs.embeddings import lease

NAME = "embedding"


def _engine(tmp_path: Path, revision: str = "head") -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    migrate.upgrade(engine, revision)
    return engine


def _row(engine: Engine) -> tuple[str | None, int, str | None]:
    with engine.connect() as conn:
        owner, outages, kind = conn.execute(
            text("SELECT owner, outages, outage_kind FROM leases WHERE name = :n"), {"n": NAME}).one()
    return owner, outages, kind


def test_an_outage_is_held_in_columns_and_handed_to_the_next_holder(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    assert lease.acquire(engine, NAME, "worker-a", 60) == lease.LeaseState(None, None, None)
    # A backoff long enough that a loaded machine cannot reach its end before the next line...
    lease.hold_for_outage(engine, NAME, "worker-a", 2, "misconfigured", until=time.time() + 30)
    assert _row(engine) == ("worker-a", 2, "misconfigured")  # the owner stays a name
    held = lease.state(engine, NAME)
    assert held is not None and (held.outages, held.outage_kind) == (2, "misconfigured")
    assert lease.acquire(engine, NAME, "worker-b", 60) is None  # nobody runs during the backoff
    # ...then the same backoff, run out.
    lease.hold_for_outage(engine, NAME, "worker-a", 2, "misconfigured", until=time.time() - 0.01)
    before = lease.acquire(engine, NAME, "worker-b", 60)
    assert before is not None and (before.owner, before.outages, before.outage_kind) == \
        ("worker-a", 2, "misconfigured")  # the count reaches the next run...
    assert _row(engine) == ("worker-b", 0, None)  # ...and the row is healthy until that run fails too
    lease.release(engine, NAME, "worker-b")
    assert _row(engine) == (None, 0, None)
    engine.dispose()


def test_migration_0005_moves_an_outage_out_of_the_owner_and_back(tmp_path: Path) -> None:
    engine = _engine(tmp_path, "0004")
    until = time.time() + 600
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO leases (name, owner, expires_at) VALUES "
                          "(:n, 'outage:3:vector store', :t), ('backup', 'host-1:42', NULL)"), {"n": NAME, "t": until})
    migrate.upgrade(engine, "0005")
    assert _row(engine) == ("outage:3:vector store", 3, "vector store")
    state = lease.state(engine, NAME)
    assert state is not None and state.expires_at == until and state.outages == 3  # the backoff runs out as planned
    with engine.connect() as conn:
        other = conn.execute(text("SELECT owner, outages, outage_kind FROM leases WHERE name = 'backup'")).one()
    assert tuple(other) == ("host-1:42", 0, None)

    with engine.begin() as conn:  # an outage recorded by the new code goes back into the owner on downgrade
        conn.execute(text("UPDATE leases SET owner = 'worker-a', outages = 5, outage_kind = 'outage' "
                          "WHERE name = :n"), {"n": NAME})
    command.downgrade(migrate.alembic_config(engine), "0004")
    with engine.connect() as conn:
        owner = conn.execute(text("SELECT owner FROM leases WHERE name = :n"), {"n": NAME}).scalar_one()
    assert owner == "outage:5:outage"
    engine.dispose()

"""The same Alembic migrations on SQLite and PostgreSQL: complete, typed, idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from db import migrate
from db.engine import make_engine
from db.models import Base
from tests import backends
from tests.backends import BackendSetup, schema_of
from tests.conftest import backend_params

# The queue plays no part here: one SQLite and one PostgreSQL run.
pytestmark = pytest.mark.parametrize(
    "backend", backend_params(backends.SQLITE, backends.PG_REDIS), indirect=True)


@pytest.fixture
def engine(backend: BackendSetup, tmp_path: Path) -> Iterator[Engine]:
    url = backend.database_url or f"sqlite:///{tmp_path / 'app.db'}"
    eng = make_engine(url)
    yield eng
    eng.dispose()


def _head() -> str:
    head = ScriptDirectory.from_config(migrate.alembic_config(None)).get_current_head()  # type: ignore[arg-type]
    assert head is not None
    return head


def test_migrations_build_the_models_schema_and_rerun_as_a_no_op(engine: Engine,
                                                                 backend: BackendSetup) -> None:
    assert not migrate.has_schema(engine)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == _head()
    if backend.database_url:  # the tables landed in the test's own schema, nowhere else
        assert set(inspect(engine).get_table_names(schema=schema_of(backend.database_url))) >= {
            "images", "image_variants", "workers", "leases", "maintenance_runs", "alembic_version"}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO images (id, filename, original_path, mime_type, size) "
                          "VALUES ('keep-me', 'a.jpg', 'a.jpg', 'image/jpeg', 1)"))

    migrate.upgrade(engine)  # second run: nothing to do, nothing lost
    assert migrate.current_revision(engine) == _head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM images")).scalar_one() == 1
        # What the migrations built is what the models describe: types
        # (booleans, floats) and server defaults included.
        diff = compare_metadata(MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}), Base.metadata)
    assert diff == []


def test_a_row_with_only_the_seed_columns_gets_every_default(engine: Engine) -> None:
    """Another app's INSERT (seed-004 columns only) is a valid pending row on both databases."""
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO images (id, filename, original_path, mime_type, size) "
                          "VALUES ('x1', 'a.jpg', 'uploads/a.jpg', 'image/jpeg', 12)"))
        row = conn.execute(text("SELECT status, attempts, owns_original, created_at, "
                                "lease_expires_at FROM images WHERE id = 'x1'")).one()
    assert row.status == "pending"
    assert row.attempts == 0
    assert row.owns_original in (False, 0) and row.owns_original is not None
    assert row.created_at == 0 and row.lease_expires_at is None


def test_float_timestamps_keep_sub_second_precision(engine: Engine) -> None:
    """Leases compare float seconds; PostgreSQL must store them as double precision."""
    migrate.upgrade(engine)
    lease = 1_800_000_000.123456
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO images (id, filename, original_path, mime_type, size, "
                          "lease_expires_at) VALUES ('f1', 'a', 'a', 'image/png', 1, :t)"), {"t": lease})
        stored = conn.execute(text("SELECT lease_expires_at FROM images WHERE id = 'f1'")).scalar_one()
    assert abs(stored - lease) < 1e-5

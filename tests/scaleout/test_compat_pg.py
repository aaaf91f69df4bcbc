"""An application that already owns the seed-004 schema on PostgreSQL (Drizzle's
pg-core, for example) is adopted by the same migrations, as on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from db import images
from db.engine import make_engine
from db.migrate import current_revision
from tests import backends
from tests.conftest import backend_params
from tests.imagefiles import photo
from tests.test_compat import SEED_004_DDL
from worker import daemon
from worker.app import build
from worker.settings import load

pytestmark = pytest.mark.parametrize("backend", backend_params(backends.PG_REDIS), indirect=True)


def test_existing_seed_schema_on_postgres_is_adopted_and_its_rows_processed(
        make_config, tmp_path: Path) -> None:
    settings = load(make_config(), env={})
    original = photo(tmp_path / "upload.jpg", (500, 400))
    other_app = make_engine(settings.database.url)
    with other_app.begin() as conn:
        for statement in filter(str.strip, SEED_004_DDL.split(";")):
            conn.execute(text(statement))
        conn.execute(text(
            "INSERT INTO images (id, filename, original_path, mime_type, size, metadata, created_at)"
            " VALUES ('app-1', 'upload.jpg', :p, 'image/jpeg', :n, '{\"alt\": \"x\"}', 1700000000)"),
            {"p": str(original), "n": original.stat().st_size})

    app = build(settings)
    try:
        app.migrate()
        app.migrate()  # idempotent on an adopted schema too
        assert current_revision(app.engine) is not None
        daemon.drain(app)  # the reconciler finds the row nobody enqueued
        row = images.get(app.engine, "app-1")
        assert row is not None and row.status == "completed", row and row.error
        assert row.metadata_ == '{"alt": "x"}' and row.created_at == 1700000000
        assert row.owns_original is False
        assert {v.width for v in images.variants_of(app.engine, "app-1")} == {64, 128, 256}
        with other_app.connect() as conn:  # the app's own reads keep working
            assert conn.execute(text("SELECT status FROM images WHERE id = 'app-1'")).scalar_one() == "completed"
    finally:
        app.close()
        other_app.dispose()

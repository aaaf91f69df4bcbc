"""Compatibility with an application that already owns the seed-004 schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from db import images
from db.migrate import current_revision
from tests.imagefiles import photo
from worker import daemon
from worker.app import build
from worker.settings import load

# What Drizzle generates for the seed-004 `images` and `image_variants` tables.
SEED_004_DDL = """
CREATE TABLE images (
  id text PRIMARY KEY NOT NULL, filename text NOT NULL, original_path text NOT NULL,
  mime_type text NOT NULL, size integer NOT NULL, width integer, height integer, hash text,
  status text DEFAULT 'pending', metadata text, created_at integer);
CREATE TABLE image_variants (
  id text PRIMARY KEY NOT NULL, image_id text NOT NULL, width integer NOT NULL,
  format text NOT NULL, path text NOT NULL, size integer NOT NULL);
"""


def test_existing_seed_schema_is_adopted_and_its_rows_processed(make_config, tmp_path: Path) -> None:
    cfg = make_config()
    settings = load(cfg, env={})
    db_file = Path(settings.database.url[len("sqlite:///"):])
    db_file.parent.mkdir(parents=True)
    original = photo(tmp_path / "upload.jpg", (500, 400))
    with sqlite3.connect(db_file) as conn:
        conn.executescript(SEED_004_DDL)
        conn.execute("INSERT INTO images (id, filename, original_path, mime_type, size, metadata, created_at)"
                     " VALUES ('app-1', 'upload.jpg', ?, 'image/jpeg', ?, '{\"alt\": \"x\"}', 1700000000)",
                     (str(original), original.stat().st_size))

    app = build(settings)
    app.migrate()
    app.migrate()  # idempotent
    assert current_revision(app.engine) is not None
    daemon.drain(app)  # the reconciler finds the row nobody enqueued

    row = images.get(app.engine, "app-1")
    assert row is not None and row.status == "completed", row and row.error
    assert row.metadata_ == '{"alt": "x"}' and row.created_at == 1700000000
    assert {v.width for v in images.variants_of(app.engine, "app-1")} == {64, 128, 256}
    with sqlite3.connect(db_file) as conn:  # the app's own reads keep working
        assert conn.execute("SELECT status FROM images WHERE id='app-1'").fetchone() == ("completed",)

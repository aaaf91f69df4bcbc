"""Revision 0003: ``images.recipe`` becomes the recipe's name; fingerprints move, nothing is lost."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from db import migrate
from db.engine import make_engine


def test_upgrade_moves_fingerprints_and_leaves_names_null(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    migrate.upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO images (id, filename, original_path, mime_type, size, status, recipe) "
                          "VALUES ('old', 'a.jpg', 'a.jpg', 'image/jpeg', 1, 'completed', 'abcdef0123456789'), "
                          "('new', 'b.jpg', 'b.jpg', 'image/jpeg', 1, 'pending', NULL)"))
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, recipe, recipe_fingerprint FROM images ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("new", None, None), ("old", None, "abcdef0123456789")]


    command.downgrade(migrate.alembic_config(engine), "0002")  # and back: the fingerprint returns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT recipe FROM images WHERE id = 'old'")).scalar_one() == "abcdef0123456789"
    engine.dispose()

"""Integration: enqueue real images, drain the real queue in-process, check rows and files.

Every test here runs on each backend combination (SQLite, PostgreSQL + Redis,
SQLite + Redis).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from db import images
from db.models import Status
from jobs.intake import submit_file
from tests.conftest import all_backends, run_cli
from tests.imagefiles import photo, rgba_png, truncated_jpeg
from worker import daemon
from worker.app import App, build
from worker.settings import load

pytestmark = all_backends


def _drain(app: App) -> None:
    assert daemon.drain(app, workers=1) == 0


def test_three_images_complete_with_valid_variants(make_config, tmp_path: Path) -> None:
    cfg = make_config(variants={"widths": [320, 640]})
    app = build(load(cfg, env={}))
    app.migrate()
    src = tmp_path / "src"
    files = [photo(src / "a.jpg", (1000, 700)), rgba_png(src / "b.png", (700, 500)),
             photo(src / "tiny.jpg", (200, 150))]
    ids = [submit_file(app.engine, app.tasks, app.settings.paths.media_dir, f).image_id for f in files]
    _drain(app)

    expected_widths = {ids[0]: {320, 640}, ids[1]: {320, 640}, ids[2]: {200}}
    for image_id, f in zip(ids, files):
        row = images.get(app.engine, image_id)
        assert row is not None and row.status == Status.COMPLETED.value, row and row.error
        with Image.open(f) as im:
            assert (row.width, row.height) == im.size
        assert row.hash and len(row.hash) == 64 and row.mime_type.startswith("image/")
        variants = images.variants_of(app.engine, image_id)
        assert {(v.width, v.format) for v in variants} == {
            (w, fmt) for w in expected_widths[image_id] for fmt in ("webp", "avif")}
        for v in variants:
            path = app.settings.paths.media_dir / v.path
            assert path.stat().st_size == v.size
            with Image.open(path) as im:
                assert im.format == v.format.upper()
                assert im.width == v.width
                if image_id == ids[1]:
                    assert "A" in im.mode  # alpha kept
    leftovers = list(app.settings.paths.media_dir.rglob(".tmp-*"))
    assert leftovers == []

    app.close()
    report = json.loads(run_cli(cfg, "status", "--json").stdout)
    assert report["images"] == {"pending": 0, "processing": 0, "completed": 3, "failed": 0}


def test_row_inserted_with_plain_sql_is_processed(app: App, tmp_path: Path) -> None:
    """Another program writes only the seed-004 required columns."""
    media_dir = app.settings.paths.media_dir
    original = photo(media_dir / "uploads" / "from-other-app.jpg", (300, 200))
    # Plain SQL through the DB-API connection, not the ORM: what any other
    # program (any language) would send to SQLite or PostgreSQL.
    conn = app.engine.raw_connection()
    try:
        cur = conn.cursor()
        ph = "?" if app.engine.dialect.name == "sqlite" else "%s"
        cur.execute(
            f"INSERT INTO images (id, filename, original_path, mime_type, size) VALUES ({', '.join([ph] * 5)})",
            ("other-app-1", "from-other-app.jpg", "uploads/from-other-app.jpg", "image/jpeg",
             original.stat().st_size))
        conn.commit()
    finally:
        conn.close()
    row = images.get(app.engine, "other-app-1")
    assert row is not None and row.status == "pending" and row.attempts == 0
    app.tasks.enqueue_images(["other-app-1"])
    _drain(app)
    row = images.get(app.engine, "other-app-1")
    assert row is not None and row.status == Status.COMPLETED.value, row.error
    assert row.width == 300 and row.owns_original is False
    assert images.variants_of(app.engine, "other-app-1")


def test_broken_inputs_fail_readably_and_good_one_completes(app: App, tmp_path: Path) -> None:
    media_dir = app.settings.paths.media_dir
    text = tmp_path / "notes.jpg"
    text.write_text("this is a shopping list, not a picture\n" * 20)
    broken = truncated_jpeg(tmp_path / "cut.jpg")
    good = photo(tmp_path / "good.jpg", (400, 300))
    ids = [submit_file(app.engine, app.tasks, media_dir, f).image_id for f in (text, broken, good)]
    _drain(app)
    rows = [images.get(app.engine, i) for i in ids]
    assert [r.status for r in rows] == ["failed", "failed", "completed"]
    assert "not an image" in rows[0].error.lower()
    assert any(w in rows[1].error.lower() for w in ("truncated", "broken"))
    assert rows[2].error is None


def test_duplicate_delivery_does_nothing(app: App, tmp_path: Path) -> None:
    image_id = submit_file(app.engine, app.tasks, app.settings.paths.media_dir,
                           photo(tmp_path / "x.jpg", (300, 200))).image_id
    app.tasks.enqueue_images([image_id, image_id])  # two more deliveries of the same message
    _drain(app)
    row = images.get(app.engine, image_id)
    assert row.status == "completed" and row.attempts == 1
    variants = images.variants_of(app.engine, image_id)
    assert len(variants) == 6  # 64, 128, 256 px x webp, avif: no duplicates
    assert len({(v.width, v.format) for v in variants}) == 6


def test_both_producers_store_originals_one_way_and_never_overwrite_a_taken_id(app: App, tmp_path: Path) -> None:
    from jobs import media
    from jobs.intake import submit_file
    from worker.api import Darkroom, ImageExists

    media_dir = app.settings.paths.media_dir
    first = photo(tmp_path / "first.jpg", (64, 48))
    taken = submit_file(app.engine, app.tasks, media_dir, first, image_id="taken-id")
    row = images.get(app.engine, "taken-id")
    assert row is not None and row.hash == media.sha256_file(first) and row.size == first.stat().st_size
    stored = media_dir / row.original_path
    before = stored.read_bytes()
    with pytest.raises(ImageExists):  # the same id again, from a file
        submit_file(app.engine, app.tasks, media_dir, photo(tmp_path / "other.jpg", (80, 60)), image_id=taken.image_id)
    with pytest.raises(ImageExists):  # and from the Python API (which checks first)
        Darkroom(app).submit(b"\xff\xd8 not the same bytes", id=taken.image_id)
    assert stored.read_bytes() == before  # the first image's original is untouched
    assert not [p for p in media_dir.rglob("*") if p.name.startswith(media.TMP_PREFIX)]  # and nothing is left over
    api_id = Darkroom(app).submit(tmp_path / "first.jpg")
    assert images.get(app.engine, api_id).hash == row.hash  # the same bytes hash the same either way

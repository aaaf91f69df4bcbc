"""The recipe chosen per image from every entry point: CLI, Python API, a plain SQL insert."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from darkroom_api import Darkroom, UnknownRecipe
from db import images
from db.engine import read_sessions
from db.models import Image
from tests.conftest import run_cli
from tests.imagefiles import photo
from worker import daemon
from worker.app import App

KNOWN = "known: avatar, banner, default, product"


def rows(app: App) -> list[tuple[Any, ...]]:
    with read_sessions(app.engine)() as s:
        return [tuple(r) for r in s.execute(select(Image.filename, Image.recipe, Image.status)
                                            .order_by(Image.filename))]


def sizes(app: App, image_id: str) -> set[tuple[int, int | None]]:
    return {(v.width, v.height) for v in images.variants_of(app.engine, image_id)}


def test_cli_enqueue_with_a_recipe_files_dirs_and_urls(recipes_config: Path, recipes_app: App,
                                                       tmp_path: Path) -> None:
    one = photo(tmp_path / "in" / "one.jpg", (400, 300))
    photo(tmp_path / "in" / "dir" / "two.jpg", (300, 500), color=(10, 200, 30))
    out = run_cli(recipes_config, "enqueue", "--recipe", "avatar", "--json", str(one), str(tmp_path / "in" / "dir"),
                  "--url", "http://127.0.0.1:9/three.jpg")
    created = json.loads(out.stdout)["created"]
    assert len(created) == 3
    assert [(f, r) for f, r, _ in rows(recipes_app)] == [("one.jpg", "avatar"), ("three.jpg", "avatar"),
                                                         ("two.jpg", "avatar")]
    # the same content again: a duplicate for this recipe, a new image for another
    again = json.loads(run_cli(recipes_config, "enqueue", "--recipe", "avatar", "--json", str(one)).stdout)
    assert again["created"] == [] and len(again["duplicates"]) == 1
    banner = json.loads(run_cli(recipes_config, "enqueue", "--recipe", "banner", "--json", str(one)).stdout)
    assert len(banner["created"]) == 1
    default = json.loads(run_cli(recipes_config, "enqueue", "--json", str(one)).stdout)
    assert len(default["created"]) == 1
    assert images.get(recipes_app.engine, default["created"][0]["id"]).recipe is None  # type: ignore[union-attr]


@pytest.mark.parametrize("extra", [["FILE"], ["--url", "https://example.com/a.jpg"]])
def test_cli_refuses_an_unknown_recipe_naming_the_known_ones(recipes_config: Path, recipes_app: App,
                                                             tmp_path: Path, extra: list[str]) -> None:
    src = photo(tmp_path / "a.jpg", (100, 100))
    args = [str(src) if a == "FILE" else a for a in extra]
    proc = run_cli(recipes_config, "enqueue", "--recipe", "avtar", *args, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"darkroom: unknown recipe 'avtar' ({KNOWN})"]
    assert rows(recipes_app) == []


def test_api_submit_with_a_recipe_and_an_unknown_one(recipes_app: App, tmp_path: Path) -> None:
    dr = Darkroom(recipes_app)
    src = photo(tmp_path / "wide.jpg", (640, 360))
    avatar = dr.submit(src, recipe="avatar")
    banner = dr.submit(src.read_bytes(), recipe="banner")
    plain = dr.submit(src)
    with pytest.raises(UnknownRecipe) as caught:
        dr.submit(src, recipe="hero")
    assert str(caught.value) == f"unknown recipe 'hero' ({KNOWN})"
    assert isinstance(caught.value, ValueError)
    assert len(rows(recipes_app)) == 3  # nothing written for the refused one
    assert daemon.drain(recipes_app, workers=1) == 0
    assert sizes(recipes_app, avatar) == {(32, 32), (64, 64)}
    assert sizes(recipes_app, banner) == {(96, 54), (160, 90)}
    assert sizes(recipes_app, plain) == {(64, 36), (128, 72), (256, 144)}


def test_plain_sql_insert_with_a_recipe_and_an_unknown_one(recipes_app: App, tmp_path: Path) -> None:
    src = photo(tmp_path / "upload.jpg", (500, 400))
    db_file = recipes_app.settings.database.url[len("sqlite:///"):]
    with sqlite3.connect(db_file) as conn:  # the seed-004 columns plus recipe (contract version 2)
        for image_id, recipe in (("app-1", "product"), ("app-2", "nope"), ("app-3", None)):
            conn.execute("INSERT INTO images (id, filename, original_path, mime_type, size, status, created_at, "
                         "recipe) VALUES (?, 'upload.jpg', ?, 'image/jpeg', ?, 'pending', 1700000000, ?)",
                         (image_id, str(src), src.stat().st_size, recipe))
    assert daemon.drain(recipes_app, workers=1) == 0
    product, unknown, plain = (images.get(recipes_app.engine, i) for i in ("app-1", "app-2", "app-3"))
    assert product is not None and product.status == "completed", product and product.error
    assert sizes(recipes_app, "app-1") == {(80, 80)}
    assert unknown is not None and unknown.status == "failed"
    assert unknown.error == f"unknown recipe 'nope' ({KNOWN})"
    assert plain is not None and plain.status == "completed"
    assert product.recipe_fingerprint != plain.recipe_fingerprint

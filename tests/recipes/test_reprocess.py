"""The fingerprint is per recipe: editing one recipe makes only its images stale."""

from __future__ import annotations

from pathlib import Path

from darkroom_api import Darkroom
from db import images
from jobs import media
from tests.conftest import run_cli
from tests.imagefiles import photo
from worker import daemon
from worker.app import App, build
from worker.settings import load


def files(app: App, image_id: str) -> set[str]:
    vdir = media.variant_dir(app.settings.paths.media_dir, image_id)
    return {p.name for p in vdir.iterdir()} if vdir.is_dir() else set()


def test_editing_one_recipe_redoes_only_its_images_and_removes_stale_files(recipes_config: Path,
                                                                          recipes_app: App,
                                                                          tmp_path: Path) -> None:
    dr = Darkroom(recipes_app)
    src = photo(tmp_path / "a.jpg", (640, 480))
    other = photo(tmp_path / "b.jpg", (480, 640), color=(20, 160, 60))
    avatars = [dr.submit(src, recipe="avatar"), dr.submit(other, recipe="avatar")]
    banner, plain = dr.submit(src, recipe="banner"), dr.submit(src)
    assert daemon.drain(recipes_app, workers=1) == 0
    assert files(recipes_app, avatars[0]) == {"32.webp", "64.webp"}
    untouched = {i: images.get(recipes_app.engine, i).completed_at for i in (banner, plain)}  # type: ignore[union-attr]
    assert run_cli(recipes_config, "reprocess", "--missing", "--dry-run").stdout.splitlines()[0].split() == \
        ["old_recipe", "0"]

    # The avatar recipe drops 32 px and gains 48 px.
    text = recipes_config.read_text()
    assert text.count("widths = [32, 64]") == 1
    recipes_config.write_text(text.replace("widths = [32, 64]", "widths = [48, 64]"))

    dry = run_cli(recipes_config, "reprocess", "--missing", "--dry-run").stdout
    assert "old_recipe     2" in dry and "would reprocess 2 image(s)" in dry
    assert "reprocessing 2 image(s)" in run_cli(recipes_config, "reprocess", "--missing").stdout
    assert {images.get(recipes_app.engine, i).status for i in avatars} == {"pending"}  # type: ignore[union-attr]

    edited = build(load(recipes_config, env={}))
    try:
        assert daemon.drain(edited, workers=1) == 0
        for image_id in avatars:
            row = images.get(edited.engine, image_id)
            assert row is not None and row.status == "completed"
            assert files(edited, image_id) == {"48.webp", "64.webp"}  # 32.webp removed
            assert {v.width for v in images.variants_of(edited.engine, image_id)} == {48, 64}
        for image_id, completed_at in untouched.items():  # not redone
            assert images.get(edited.engine, image_id).completed_at == completed_at  # type: ignore[union-attr]
    finally:
        edited.close()
    assert "would reprocess 0 image(s)" in run_cli(recipes_config, "reprocess", "--missing", "--dry-run").stdout


def test_reprocess_one_recipe_and_an_unknown_one(recipes_config: Path, recipes_app: App, tmp_path: Path) -> None:
    dr = Darkroom(recipes_app)
    src = photo(tmp_path / "a.jpg", (640, 480))
    banner = dr.submit(src, recipe="banner")
    dr.submit(src, recipe="avatar")
    dr.submit(src)
    assert daemon.drain(recipes_app, workers=1) == 0
    dry = run_cli(recipes_config, "reprocess", "--recipe", "banner", "--dry-run").stdout
    assert "recipe banner: 1 completed or failed image(s)" in dry and "would reprocess 1 image(s)" in dry
    assert "would reprocess 1 image(s)" in run_cli(recipes_config, "reprocess", "--recipe", "default",
                                                   "--dry-run").stdout
    assert "reprocessing 1 image(s)" in run_cli(recipes_config, "reprocess", "--recipe", "banner").stdout
    assert images.get(recipes_app.engine, banner).status == "pending"  # type: ignore[union-attr]
    proc = run_cli(recipes_config, "reprocess", "--recipe", "hero", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        "darkroom: unknown recipe 'hero' (known: avatar, banner, default, product)"]

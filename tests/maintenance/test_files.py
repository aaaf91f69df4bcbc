"""Deleting images removes their files; the orphan sweep finds what rows and files disagree on."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import Engine, func, select

from db.engine import write_session
from db.maintenance.ttl import TtlRule, sweep
from db.models import Image, ImageVariant
from jobs.maintenance.files import image_file_remover, sweep_orphans
from jobs.media import original_relpath, variant_relpath

DAY = 86_400


def make_webp(path: Path, width: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (width, width // 2), (200, 80, 40)).save(path, "WEBP", quality=50)


def add_processed_image(engine: Engine, media: Path, image_id: str, *, age_s: float, owns: bool,
                        original: Path | None = None) -> list[Path]:
    """A completed image row with two real variant files; returns the variant paths."""
    if original is None:
        original = media / original_relpath(image_id, ".png")
        original.parent.mkdir(parents=True, exist_ok=True)
        PILImage.new("RGB", (64, 32), (1, 2, 3)).save(original, "PNG")
    files = []
    with write_session(engine) as s:
        s.add(Image(id=image_id, filename="x.png", original_path=str(original.relative_to(media))
                    if original.is_relative_to(media) else str(original), mime_type="image/png", size=1,
                    status="completed", created_at=int(time.time() - age_s), owns_original=owns))
        s.flush()
        for w in (16, 32):
            rel = variant_relpath(image_id, w, "webp")
            make_webp(media / rel, w)
            files.append(media / rel)
            s.add(ImageVariant(id=f"{image_id}-{w}", image_id=image_id, width=w, format="webp",
                               path=rel, size=(media / rel).stat().st_size))
    return files


def test_deleting_an_image_removes_its_variant_files_original_and_embedding(
        engine: Engine, tmp_path: Path) -> None:
    media = tmp_path / "media"
    outside = tmp_path / "elsewhere" / "theirs.png"  # another app's file: never ours to delete
    outside.parent.mkdir()
    PILImage.new("RGB", (8, 8)).save(outside)
    old_owned = add_processed_image(engine, media, "old-owned-01", age_s=40 * DAY, owns=True)
    old_foreign = add_processed_image(engine, media, "old-foreign-02", age_s=40 * DAY, owns=False,
                                      original=outside)
    young = add_processed_image(engine, media, "young-03", age_s=DAY, owns=True)
    deleted_vectors: list[str] = []

    figures = sweep(engine, [TtlRule(table="images", column="created_at", max_age_s=30 * DAY)],
                    on_delete=image_file_remover(media, deleted_vectors.extend))

    assert figures["deleted"] == 2
    assert not any(p.exists() for p in old_owned + old_foreign)
    assert not (media / original_relpath("old-owned-01", ".png")).exists()
    assert not (media / "variants" / "01").exists()  # emptied folders go too
    assert outside.exists()
    assert all(p.exists() for p in young) and (media / original_relpath("young-03", ".png")).exists()
    assert sorted(deleted_vectors) == ["old-foreign-02", "old-owned-01"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ImageVariant)).scalar_one() == 2


def test_orphan_sweep(engine: Engine, tmp_path: Path) -> None:
    media = tmp_path / "media"
    kept = add_processed_image(engine, media, "kept-01", age_s=DAY, owns=True)
    lost = add_processed_image(engine, media, "lost-02", age_s=DAY, owns=True)
    lost[0].unlink()  # a row whose file is gone
    old = time.time() - 2 * 3600
    orphan = media / variant_relpath("deleted-03", 320, "webp")  # a file with no row
    make_webp(orphan, 32)
    fresh_orphan = media / variant_relpath("inflight-04", 320, "webp")  # written, row not yet
    make_webp(fresh_orphan, 32)
    old_tmp = media / "variants" / "04" / ".tmp-abc123"
    old_tmp2 = media / "originals" / "05" / "upload.tmp"
    new_tmp = media / "variants" / "04" / ".tmp-def456"
    for p in (old_tmp, old_tmp2, new_tmp):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial")
    for p in (orphan, old_tmp, old_tmp2):
        os.utime(p, (old, old))

    figures = sweep_orphans(engine, media)

    assert figures["orphan_files"] == 1 and not orphan.exists()
    assert fresh_orphan.exists()  # inside the grace period
    assert figures["temp_files"] == 2 and not old_tmp.exists() and not old_tmp2.exists()
    assert new_tmp.exists()
    assert figures["missing_files"] == 1 and figures["missing_sample"] == ["lost-02"]
    assert "reprocess --missing" in figures["warnings"][0]
    assert all(p.exists() for p in kept) and lost[1].exists()
    again = sweep_orphans(engine, media, dry_run=True)
    assert again["orphan_files"] == 0 and again["temp_files"] == 0


def test_rows_pointing_outside_the_media_dir_are_refused(engine: Engine, tmp_path: Path) -> None:
    from db.maintenance.ttl import DeletedImages
    from jobs.maintenance.files import remove_image_files

    media = tmp_path / "media"
    media.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    counts = remove_image_files(media, DeletedImages(("x",), ("../victim.txt", str(victim)), ("../victim.txt",)))
    assert counts == {"variant_files": 0, "originals": 0, "refused": 3}
    assert victim.read_text() == "keep me"

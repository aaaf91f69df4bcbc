"""Assertions on the outcome of a run: rows, variant files, temporary files."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.reliability.conftest import query


def assert_all_completed_cleanly(config: Path, n: int, formats: tuple[str, ...] = ("webp", "avif")) -> None:
    """All ``n`` images completed, one variant row per (width, format), every file decodes, no temp files."""
    rows = query(config, "SELECT id, status, error, lease_owner FROM images")
    assert len(rows) == n
    bad = [r for r in rows if r[1] != "completed" or r[3] is not None]
    assert not bad, bad
    dupes = query(config, "SELECT image_id, width, format, count(*) FROM image_variants "
                          "GROUP BY image_id, width, format HAVING count(*) > 1")
    assert dupes == []
    media = config.parent / "data" / "media"
    variants = query(config, "SELECT image_id, width, format, path, size FROM image_variants")
    per_image: dict[str, set[tuple[int, str]]] = {}
    for image_id, width, fmt, path, size in variants:
        per_image.setdefault(image_id, set()).add((width, fmt))
        file = media / path
        assert file.stat().st_size == size, path
        with Image.open(file) as im:
            im.load()  # decodes the whole file, not only the header
            assert im.format == fmt.upper() and im.width == width
    assert len(per_image) == n
    for image_id, pairs in per_image.items():
        widths = {w for w, _ in pairs}
        assert pairs == {(w, f) for w in widths for f in formats}, (image_id, pairs)
    assert list(media.rglob(".tmp-*")) == []

"""Find completed images whose variants are not what the current recipe makes.

Reasons, checked in this order (an image is counted under the first that applies):

- ``old_recipe``: built with another recipe (widths, formats, qualities,
  encoder settings): ``images.recipe_fingerprint`` differs from the current one;
- ``missing_rows``: a variant row the recipe calls for is absent;
- ``missing_files``: a variant row's file is absent from the media store.

>>> counts(find_stale(engine, media_dir, recipe))
{'old_recipe': 2, 'missing_rows': 0, 'missing_files': 1}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from db.engine import read_sessions
from db.models import Image, ImageVariant, Status
from jobs.imaging import Recipe, plan_widths

REASONS = ("old_recipe", "missing_rows", "missing_files")


@dataclass(frozen=True)
class Stale:
    image_id: str
    reason: str  # one of REASONS


def expected_variants(width: int, recipe: Recipe) -> set[tuple[int, str]]:
    """(width, format) pairs the recipe makes for an image ``width`` px wide."""
    return {(w, e.format) for w in plan_widths(width, recipe.widths) for e in recipe.encoders}


def find_stale(engine: Engine, media_dir: Path, recipe: Recipe, batch: int = 500) -> Iterator[Stale]:
    """Yield every completed image that needs its variants made again, with the reason."""
    fingerprint = recipe.fingerprint()
    after = ""
    while True:
        with read_sessions(engine)() as s:
            rows = s.execute(
                select(Image.id, Image.recipe_fingerprint, Image.width)
                .where(Image.status == Status.COMPLETED.value, Image.id > after)
                .order_by(Image.id).limit(batch)).all()
            if not rows:
                return
            variants: dict[str, list[tuple[int, str, str]]] = {}
            for image_id, w, fmt, path in s.execute(
                    select(ImageVariant.image_id, ImageVariant.width, ImageVariant.format, ImageVariant.path)
                    .where(ImageVariant.image_id.in_([r[0] for r in rows]))):
                variants.setdefault(image_id, []).append((w, fmt, path))
        for image_id, built_with, width in rows:
            reason = _reason(fingerprint, built_with, width, variants.get(image_id, []), media_dir, recipe)
            if reason:
                yield Stale(image_id, reason)
        after = rows[-1][0]


def _reason(fingerprint: str, built_with: str | None, width: int | None,
            variants: list[tuple[int, str, str]], media_dir: Path, recipe: Recipe) -> str | None:
    if built_with != fingerprint:
        return "old_recipe"
    have = {(w, f) for w, f, _ in variants}
    if width is None or not expected_variants(width, recipe) <= have:
        return "missing_rows"
    if any(not (media_dir / path).is_file() for _, _, path in variants):
        return "missing_files"
    return None


def counts(stale: Iterable[Stale]) -> dict[str, int]:
    """Count per reason; every reason is present."""
    c = Counter(s.reason for s in stale)
    return {r: c.get(r, 0) for r in REASONS}

"""Find completed images whose variants are not what their recipe makes now.

Each image is checked against the recipe its row names (``images.recipe``,
NULL = ``default``), so editing ``[recipes.avatar]`` makes only avatar
images stale. Rows naming a recipe the config does not have are left out
(processing them would fail with ``unknown recipe``).

Reasons, checked in this order (an image is counted under the first that applies):

- ``old_recipe``: built with another recipe (widths, formats, qualities,
  encoder settings): ``images.recipe_fingerprint`` differs from the current one;
- ``missing_rows``: a variant row the recipe calls for is absent;
- ``missing_files``: a variant row's file is absent from the media store.

>>> counts(find_stale(engine, media_dir, recipes))  # doctest: +SKIP
{'old_recipe': 2, 'missing_rows': 0, 'missing_files': 1}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from db.engine import read_sessions
from db.images import of_recipe
from db.models import Image, ImageVariant, Status
from jobs.imaging import Recipe
from jobs.imaging.fit import plan
from jobs.imaging.recipes import DEFAULT

REASONS = ("old_recipe", "missing_rows", "missing_files")


@dataclass(frozen=True)
class Stale:
    image_id: str
    reason: str  # one of REASONS


def expected_variants(width: int, recipe: Recipe, height: int | None = None) -> set[tuple[int, str]]:
    """(width, format) pairs the recipe makes for an image ``width`` x ``height`` px (upright).

    ``height`` matters only to ``cover`` and ``contain``; without it the image is taken as square.
    """
    boxes = plan((width, height or width), recipe).boxes
    return {(w, e.format) for w, _ in boxes for e in recipe.encoders}


def find_stale(engine: Engine, media_dir: Path, recipes: Mapping[str, Recipe] | Recipe, batch: int = 500,
               only: str | None = None) -> Iterator[Stale]:
    """Yield every completed image that needs its variants made again, with the reason.

    ``recipes``: every recipe by name (a single Recipe means ``default`` only);
    ``only``: check images of that recipe alone.
    """
    book = {DEFAULT: recipes} if isinstance(recipes, Recipe) else dict(recipes)
    fingerprints = {name: r.fingerprint() for name, r in book.items()}
    after = ""
    while True:
        with read_sessions(engine)() as s:
            q = (select(Image.id, Image.recipe, Image.recipe_fingerprint, Image.width, Image.height)
                 .where(Image.status == Status.COMPLETED.value, Image.id > after))
            if only is not None:
                q = q.where(of_recipe(only))
            rows = s.execute(q.order_by(Image.id).limit(batch)).all()
            if not rows:
                return
            variants: dict[str, list[tuple[int, str, str]]] = {}
            for image_id, w, fmt, path in s.execute(
                    select(ImageVariant.image_id, ImageVariant.width, ImageVariant.format, ImageVariant.path)
                    .where(ImageVariant.image_id.in_([r[0] for r in rows]))):
                variants.setdefault(image_id, []).append((w, fmt, path))
        for image_id, name, built_with, width, height in rows:
            recipe = book.get(name or DEFAULT)
            if recipe is None:
                continue
            reason = _reason(fingerprints[name or DEFAULT], built_with, width, height,
                             variants.get(image_id, []), media_dir, recipe)
            if reason:
                yield Stale(image_id, reason)
        after = rows[-1][0]


def ids_of_recipe(engine: Engine, name: str, statuses: Iterable[str]) -> list[str]:
    """Ids of the images of recipe ``name`` in one of ``statuses`` (``reprocess --recipe``)."""
    with read_sessions(engine)() as s:
        return list(s.scalars(select(Image.id).where(of_recipe(name), Image.status.in_(list(statuses)))
                              .order_by(Image.id)))


def _reason(fingerprint: str, built_with: str | None, width: int | None, height: int | None,
            variants: list[tuple[int, str, str]], media_dir: Path, recipe: Recipe) -> str | None:
    if built_with != fingerprint:
        return "old_recipe"
    have = {(w, f) for w, f, _ in variants}
    if width is None or not expected_variants(width, recipe, height) <= have:
        return "missing_rows"
    if any(not (media_dir / path).is_file() for _, _, path in variants):
        return "missing_files"
    return None


def counts(stale: Iterable[Stale]) -> dict[str, int]:
    """Count per reason; every reason is present."""
    c = Counter(s.reason for s in stale)
    return {r: c.get(r, 0) for r in REASONS}

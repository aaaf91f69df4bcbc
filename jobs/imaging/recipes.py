"""Recipes: what to make of an image, as declared in ``config.toml``. Pure: no project imports.

``[variants]`` is the recipe named ``default``; each ``[recipes.NAME]`` table
is another, of the same type (:class:`RecipeSettings`); the keys ``widths``,
``formats``, ``webp`` and ``avif`` it leaves out are inherited from
``[variants]`` (the settings loader merges them before building the table)::

    [recipes.avatar]
    widths = [64, 128, 256]
    aspect = "1:1"
    fit = "cover"
    gravity = "attention"

:func:`to_recipe` turns a table into the :class:`~jobs.imaging.types.Recipe`
the pipeline renders; :func:`pick` finds one by name, or raises
:class:`UnknownRecipe` naming the known ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from jobs.imaging.types import EncoderSpec, Recipe

DEFAULT = "default"  # what a NULL images.recipe means; db.images.DEFAULT_RECIPE (imaging cannot import db)
FITS = ("limit", "cover", "contain")
GRAVITIES = ("centre", "north", "south", "east", "west", "attention")
TRANSPARENT = "transparent"
INHERITED = ("widths", "formats", "webp", "avif")  # keys a [recipes.NAME] table takes from [variants]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_ASPECT_RE = re.compile(r"^\s*(\d{1,5})\s*:\s*(\d{1,5})\s*$")
_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


class UnknownRecipe(ValueError):
    """No recipe has this name; the message names the known ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name, self.known = name, known
        super().__init__(f"unknown recipe {name!r} (known: {', '.join(known)})")


@dataclass(frozen=True)
class RecipeSettings:
    """One recipe table: ``[variants]`` (the recipe ``default``) or ``[recipes.NAME]``."""

    widths: tuple[int, ...] = (320, 640, 1280, 1920)
    formats: tuple[str, ...] = ("webp", "avif")
    webp: EncoderSpec = EncoderSpec("webp", quality=80, effort=4)
    avif: EncoderSpec = EncoderSpec("avif", quality=60, effort=9)
    aspect: str = ""  # "W:H"; needed by fit cover/contain, refused with limit
    fit: str = "limit"  # limit | cover | contain
    gravity: str = "centre"  # cover: centre | north | south | east | west | attention
    background: str = "#ffffff"  # contain: "#rrggbb" or "transparent"

    def check(self) -> None:
        """Raise ``ValueError("key: expected ...")`` for a value that cannot work."""
        if not self.widths or any(w < 1 or w > 16_384 for w in self.widths):
            raise ValueError("widths: expected a non-empty list of integers between 1 and 16384")
        if not self.formats or any(f not in ("webp", "avif") for f in self.formats):
            raise ValueError("formats: expected a non-empty list of 'webp' and/or 'avif'")
        for name, enc, top in (("webp", self.webp, 6), ("avif", self.avif, 10)):
            if enc.format != name:
                raise ValueError(f"{name}.format: expected {name!r} (the table names the format)")
            if not 0 <= enc.quality <= 100:
                raise ValueError(f"{name}.quality: expected an integer from 0 to 100")
            if not 0 <= enc.effort <= top:
                raise ValueError(f"{name}.effort: expected an integer from 0 to {top}")
        if self.fit not in FITS:
            raise ValueError(f"fit: expected one of {', '.join(FITS)}")
        if self.gravity not in GRAVITIES:
            raise ValueError(f"gravity: expected one of {', '.join(GRAVITIES)}")
        if self.aspect and parse_aspect(self.aspect) is None:
            raise ValueError("aspect: expected \"W:H\" with two whole numbers from 1 to 99999, such as \"16:9\"")
        if self.fit == "limit" and self.aspect:
            raise ValueError("aspect: expected no aspect with fit = \"limit\" (limit keeps the image's own; "
                             "use fit = \"cover\" or \"contain\")")
        if self.fit != "limit" and not self.aspect:
            raise ValueError(f"aspect: expected \"W:H\" (fit = {self.fit!r} fills an aspect box)")
        if parse_background(self.background) is None:
            raise ValueError("background: expected \"#rrggbb\" or \"transparent\"")


def parse_aspect(text: str) -> tuple[int, int] | None:
    """``"16:9"`` -> ``(16, 9)``; None when it is not two whole numbers >= 1.

    >>> parse_aspect("16:9"), parse_aspect("1.5:1")
    ((16, 9), None)
    """
    m = _ASPECT_RE.match(text)
    if m is None:
        return None
    w, h = int(m.group(1)), int(m.group(2))
    return (w, h) if w >= 1 and h >= 1 else None


def parse_background(text: str) -> tuple[int, int, int, int] | None:
    """``"#rrggbb"`` -> RGBA with alpha 255, ``"transparent"`` -> ``(0, 0, 0, 0)``; None otherwise.

    >>> parse_background("#ff8000"), parse_background("transparent")
    ((255, 128, 0, 255), (0, 0, 0, 0))
    """
    if text == TRANSPARENT:
        return (0, 0, 0, 0)
    if not _COLOUR_RE.match(text):
        return None
    return (int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16), 255)


def to_recipe(name: str, table: RecipeSettings, *, keep_gps: bool = False, animated_webp: bool = False) -> Recipe:
    """The renderable :class:`Recipe` of a checked table."""
    return Recipe(widths=tuple(sorted(set(table.widths))),
                  encoders=tuple(table.webp if f == "webp" else table.avif for f in table.formats),
                  keep_gps=keep_gps, animated_webp=animated_webp, name=name, fit=table.fit,
                  aspect=parse_aspect(table.aspect) if table.aspect else None, gravity=table.gravity,
                  background=table.background)


def pick(recipes: Mapping[str, Recipe], name: str | None) -> Recipe:
    """The recipe called ``name`` (None or "" mean ``default``); raises :class:`UnknownRecipe`.

    >>> pick({"default": r}, "avatar")  # doctest: +SKIP
    Traceback (most recent call last):
    UnknownRecipe: unknown recipe 'avatar' (known: default)
    """
    found = recipes.get(name or DEFAULT)
    if found is None:
        raise UnknownRecipe(name or DEFAULT, sorted(recipes))
    return found


def stored_name(name: str | None) -> str | None:
    """What goes in ``images.recipe``: NULL for the default recipe (contract version 1 rows)."""
    return None if not name or name == DEFAULT else name


def inherit(variants: Mapping[str, object], table: Mapping[str, object]) -> dict[str, object]:
    """A raw ``[recipes.NAME]`` table with the keys it leaves out taken from raw ``[variants]``.

    Encoder tables merge key by key: ``webp = { quality = 70 }`` keeps
    ``[variants]``'s webp effort.
    """
    out: dict[str, object] = {k: variants[k] for k in INHERITED if k in variants}
    for key, value in table.items():
        base = out.get(key)
        if key in ("webp", "avif") and isinstance(base, Mapping) and isinstance(value, Mapping):
            out[key] = {**base, **value}
        else:
            out[key] = value
    return out

"""``local``: an offline content descriptor computed with Pillow and numpy.

Three blocks, each L2-normalised, then weighted and normalised together:

- colour: a hue x saturation x value histogram (12 x 4 x 4) of a 64 px copy,
  square-rooted (Hellinger) so large flat areas do not drown the rest;
- shape: gradient-orientation histograms (8 bins, unsigned) over the whole
  image and a 2 x 2 grid, magnitude weighted;
- layout: the low-frequency 2-D DCT coefficients (8 x 8 minus DC) of a
  32 x 32 grayscale copy, mean removed so brightness shifts cancel.

It finds resized, re-encoded, slightly cropped and brightness-shifted copies
of a photo; it is *not* semantic (two different cats are not close).
Change ``VERSION`` (``LOCAL_VERSION`` in :mod:`.names`) whenever the vectors
would change: it is in the model name, so a change re-embeds everything.

The descriptor is computed from a copy of at most 256 px that the image job
makes from the pixels it already decoded (:mod:`jobs.imaging.embed_copy`):
the job embeds each image itself, and the embedding step only writes those
vectors to LanceDB. For rows the job did not embed, :func:`file_loader`
makes the identical copy from the file (the row's recipe decides the decode,
as in the job), so both paths give the same vector. Version 2: the copy comes
from the job's decode (version 1 read a 1/8 JPEG draft of its own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .base import EmbedInput, InputRejected, check_vectors
from .names import LOCAL_VERSION, local_model_name

if TYPE_CHECKING:
    from jobs.imaging.types import Limits, Recipe

log = logging.getLogger(__name__)

VERSION = LOCAL_VERSION  # defined in .names (the config loader reads it without numpy)
WORK_SIDE_PX = 64  # histograms and gradients are computed on a copy this size
DCT_SIDE_PX = 32
DCT_KEEP = 8  # keep the DCT_KEEP x DCT_KEEP lowest frequencies
HUE_BINS, SAT_BINS, VAL_BINS = 12, 4, 4
ORIENT_BINS = 8
GRID = 2
# Block weights: layout carries most identity; colour and shape keep unrelated
# images with similar layouts apart.
W_COLOUR, W_SHAPE, W_LAYOUT = 0.6, 0.5, 1.0

Loader = Callable[[EmbedInput], Image.Image]  # an input -> the RGB copy to describe


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II basis: ``D @ x`` transforms a column vector."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d


_DCT = _dct_matrix(DCT_SIDE_PX)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class LocalEmbedder:
    """Offline, deterministic image descriptor.

    ``load`` makes the copy to describe from an input (default: :func:`file_loader` with the
    default recipe and limits; the composition root passes the configured ones).

    >>> emb = LocalEmbedder()
    >>> emb.model, emb.dim
    ('local-v2', 295)
    >>> emb.embed([EmbedInput(Path("photo.jpg"))]).shape   # doctest: +SKIP
    (1, 295)
    """

    model = local_model_name()
    dim = HUE_BINS * SAT_BINS * VAL_BINS + ORIENT_BINS * (1 + GRID * GRID) + DCT_KEEP * DCT_KEEP - 1

    def __init__(self, load: Loader | None = None) -> None:
        self._load = load

    def embed(self, images: Sequence[EmbedInput]) -> np.ndarray:
        if self._load is None:
            self._load = file_loader()
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for i, item in enumerate(images):
            try:
                out[i] = self.describe(self._load(item))
            except InputRejected as exc:
                raise InputRejected(str(exc), index=i) from exc.__cause__
        return check_vectors(out, len(images), self.dim)

    def describe(self, img: Image.Image) -> np.ndarray:
        """The descriptor of an RGB image (any size)."""
        small = img.resize((WORK_SIDE_PX, WORK_SIDE_PX), Image.Resampling.BILINEAR, reducing_gap=2.0)
        colour = _colour_block(small)
        gray = np.asarray(small.convert("L"), dtype=np.float32) / 255.0
        shape = _shape_block(gray)
        layout = _layout_block(img)
        vec = np.concatenate([W_COLOUR * colour, W_SHAPE * shape, W_LAYOUT * layout])
        return _unit(vec).astype(np.float32)


def file_loader(recipes: Mapping[str, Recipe] | None = None, limits: Limits | None = None) -> Loader:
    """A loader that makes, from the file, the copy the image job made (or would make) of an input.

    ``EmbedInput.recipe`` names the recipe whose decode the job used (None or
    unknown: ``default``). Files the job would refuse are :class:`InputRejected`.
    """
    from jobs.imaging.embed_copy import load_embed_copy  # Pillow's pipeline: only once something is embedded
    from jobs.imaging.recipes import DEFAULT, RecipeSettings, to_recipe
    from jobs.imaging.types import ImageRejected
    from jobs.imaging.types import Limits as LimitsType

    table = dict(recipes or {})
    default = table.get(DEFAULT) or to_recipe(DEFAULT, RecipeSettings())
    checked = limits or LimitsType()

    def load(item: EmbedInput) -> Image.Image:
        recipe = table.get(item.recipe or DEFAULT, default)
        if not item.path.is_file():
            raise InputRejected(f"{item.path}: file not found")
        try:
            return load_embed_copy(item.path, recipe, checked)
        except ImageRejected as exc:
            raise InputRejected(f"{item.path.name}: not a readable image ({exc})") from exc
        except MemoryError as exc:
            raise InputRejected(f"{item.path.name}: too large to decode in memory") from exc

    return load


def _colour_block(small: Image.Image) -> np.ndarray:
    hsv = np.asarray(small.convert("HSV"), dtype=np.int32)
    h = hsv[..., 0] * HUE_BINS // 256
    s = hsv[..., 1] * SAT_BINS // 256
    v = hsv[..., 2] * VAL_BINS // 256
    idx = (h * SAT_BINS + s) * VAL_BINS + v
    hist = np.bincount(idx.ravel(), minlength=HUE_BINS * SAT_BINS * VAL_BINS).astype(np.float64)
    return _unit(np.sqrt(hist))


def _shape_block(gray: np.ndarray) -> np.ndarray:
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, 1:-1] = gray[:, 2:] - gray[:, :-2]
    gy[1:-1, :] = gray[2:, :] - gray[:-2, :]
    mag = np.hypot(gx, gy)
    # Unsigned orientation in [0, pi): edges, not which side is brighter.
    ang = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((ang / np.pi * ORIENT_BINS).astype(np.int32), ORIENT_BINS - 1)
    parts = [np.bincount(bins.ravel(), weights=mag.ravel(), minlength=ORIENT_BINS)]
    side = gray.shape[0] // GRID
    for gy_i in range(GRID):
        for gx_i in range(GRID):
            cell = (slice(gy_i * side, (gy_i + 1) * side), slice(gx_i * side, (gx_i + 1) * side))
            parts.append(np.bincount(bins[cell].ravel(), weights=mag[cell].ravel(), minlength=ORIENT_BINS))
    return _unit(np.sqrt(np.concatenate([_unit(p) for p in parts])))


def _layout_block(img: Image.Image) -> np.ndarray:
    tiny = img.convert("L").resize((DCT_SIDE_PX, DCT_SIDE_PX), Image.Resampling.BOX)
    x = np.asarray(tiny, dtype=np.float64) / 255.0
    x -= x.mean()
    coeffs = _DCT @ x @ _DCT.T
    low = coeffs[:DCT_KEEP, :DCT_KEEP].ravel()[1:]  # drop DC (≈0 after mean removal)
    return _unit(low)

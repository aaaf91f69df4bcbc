"""Decode an original once and encode every variant. Pure: no project imports.

Stages (each timed into ``Rendered.timings``, seconds):
``decode`` (admission checks + draft decode), ``color`` (ICC -> sRGB, 8-bit),
``resize`` (cascade + orientation), ``encode_webp`` / ``encode_avif``,
``placeholder`` (ThumbHash + dominant colour), ``embed_copy`` (the local
embedder's small copy, when asked for).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageSequence

from jobs.imaging.color import has_alpha, to_srgb
from jobs.imaging.decode import decode, open_checked
from jobs.imaging.embed_copy import embed_copy as make_embed_copy
from jobs.imaging.encode import encode, encode_animated_webp
from jobs.imaging.fanout import encode_variants
from jobs.imaging.fit import make, plan
from jobs.imaging.metadata import read_metadata
from jobs.imaging.placeholder import dominant_color, thumbhash
from jobs.imaging.resize import orient, variant_height
from jobs.imaging.types import ImageRejected, Limits, Recipe, Rendered, SourceInfo, Variant

log = logging.getLogger(__name__)

LANES = ("default", "large")
ANIMATED_FORMATS = ("GIF", "WEBP", "PNG")


def probe(path: Path, limits: Limits) -> SourceInfo:
    """Read the header only and apply admission limits; raises :class:`ImageRejected`.

    >>> probe(Path("panorama.jpg"), Limits(max_pixels=50_000_000))  # doctest: +SKIP
    Traceback (most recent call last):
    ImageRejected: image is 12000x6000 = 72,000,000 pixels, over the limit of 50,000,000 (limits.max_pixels)
    """
    with open_checked(path, limits) as (_, info):
        return info


def classify_lane(info: SourceInfo, large_pixels: int) -> str:
    """``"large"`` for images over ``large_pixels`` (they go to the low-concurrency lane), else ``"default"``.

    >>> classify_lane(SourceInfo("JPEG", "image/jpeg", 12000, 8000), 40_000_000)
    'large'
    """
    return "large" if info.pixels > large_pixels else "default"


def render(path: Path, recipe: Recipe, limits: Limits, threads: Callable[[], int] | None = None, *,
           embed_copy: bool = False) -> Rendered:
    """Decode ``path`` and encode one variant per planned width and format.

    ``threads`` is asked, once the pixels are ready, how many threads the encodes may use (default 1).
    ``embed_copy``: also return the local embedder's small copy, made from the same decoded pixels
    (:func:`jobs.imaging.embed_copy.load_embed_copy` makes the identical copy from the file).

    >>> recipe = Recipe(widths=(320, 640), encoders=(EncoderSpec("webp", 80, 4),))  # doctest: +SKIP
    >>> r = render(Path("photo.jpg"), recipe, Limits())  # doctest: +SKIP
    >>> [(v.width, v.format) for v in r.variants]  # doctest: +SKIP
    [(320, 'webp'), (640, 'webp')]
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with open_checked(path, limits) as (im, info):
        taken_at, gps = read_metadata(im, recipe.keep_gps)
        geometry = plan((info.width, info.height), recipe)
        # Animated WebP keeps the image's own shape: a cover/contain recipe renders the first frame.
        animate = (recipe.animated_webp and info.frames > 1 and info.format in ANIMATED_FORMATS
                   and geometry.fit == "limit")
        if animate:
            return _render_animated(im, info, [w for w, _ in geometry.boxes], recipe, taken_at, gps, t0,
                                    embed_copy)
        icc = im.info.get("icc_profile")
        frame = decode(im, info, geometry.decode_width)
        timings["decode"] = time.perf_counter() - t0
        t = time.perf_counter()
        frame = to_srgb(frame, icc)
        timings["color"] = time.perf_counter() - t
        copy = None
        if embed_copy:
            t = time.perf_counter()
            copy = make_embed_copy(frame, info.orientation)
            timings["embed_copy"] = time.perf_counter() - t
        t = time.perf_counter()
        scaled = make(frame, info.orientation, (info.width, info.height), recipe, geometry)
        timings["resize"] = time.perf_counter() - t
        variants, encode_timings = encode_variants(scaled, recipe.encoders, threads() if threads else 1)
        timings.update(encode_timings)
        t = time.perf_counter()
        placeholder, color = thumbhash(scaled[0]), dominant_color(scaled[0])
        timings["placeholder"] = time.perf_counter() - t
        return Rendered(source=info, variants=tuple(variants), orientation=info.orientation, taken_at=taken_at,
                        gps=gps, placeholder=placeholder, dominant_color=color, timings=timings,
                        embed_copy=copy)


def _render_animated(im: Image.Image, info: SourceInfo, widths: list[int], recipe: Recipe, taken_at: str | None,
                     gps: dict[str, float] | None, t0: float, embed_copy: bool = False) -> Rendered:
    """Every frame, at every width: animated WebP; AVIF encoders get the first frame as a still."""
    timings: dict[str, float] = {}
    frames: list[Image.Image] = []
    durations: list[int] = []
    icc = im.info.get("icc_profile")
    loop = int(im.info.get("loop", 0))
    copy = None
    try:
        for frame in ImageSequence.Iterator(im):
            durations.append(int(frame.info.get("duration", 100)) or 100)
            srgb = to_srgb(frame.convert("RGBA") if has_alpha(frame) else frame.convert("RGB"), icc)
            if embed_copy and copy is None:  # the first frame, as a still decode would see it
                copy = make_embed_copy(srgb, info.orientation)
            # Each frame upright before sizing: info.width/height are already the upright sides.
            frames.append(orient(srgb, info.orientation))
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise ImageRejected(f"broken {info.format} animation: {exc}") from None
    timings["decode"] = time.perf_counter() - t0
    variants: list[Variant] = []
    for width in widths:
        t = time.perf_counter()
        height = variant_height(width, info.width, info.height)
        scaled = [f if f.size == (width, height) else f.resize((width, height), Image.Resampling.LANCZOS)
                  for f in frames]
        timings["resize"] = timings.get("resize", 0.0) + time.perf_counter() - t
        for enc in recipe.encoders:
            t = time.perf_counter()
            if enc.format == "webp":
                data = encode_animated_webp(scaled, durations, loop, enc)
            else:
                data = encode(scaled[0], enc)
            timings[f"encode_{enc.format}"] = timings.get(f"encode_{enc.format}", 0.0) + time.perf_counter() - t
            variants.append(Variant(width, height, enc.format, data, frames=len(scaled) if enc.format == "webp" else 1))
    t = time.perf_counter()
    placeholder, color = thumbhash(frames[0]), dominant_color(frames[0])
    timings["placeholder"] = time.perf_counter() - t
    return Rendered(source=info, variants=tuple(variants), orientation=info.orientation, taken_at=taken_at, gps=gps,
                    placeholder=placeholder, dominant_color=color, timings=timings, embed_copy=copy)

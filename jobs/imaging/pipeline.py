"""Decode an original once and encode every variant. Pure: no project imports."""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from jobs.imaging.types import EncoderSpec, ImageRejected, Limits, Recipe, Rendered, SourceInfo, Variant


def plan_widths(source_width: int, widths: Sequence[int]) -> list[int]:
    """Target widths no larger than the source; never empty, never upscaled.

    >>> plan_widths(1000, [320, 640, 1280])
    [320, 640]
    >>> plan_widths(200, [320, 640])
    [200]
    """
    planned = sorted({w for w in widths if w <= source_width})
    return planned or [source_width]


def probe(path: Path, limits: Limits) -> SourceInfo:
    """Read the header only and apply admission limits."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise ImageRejected(f"file is {size} bytes, over the limit of {limits.max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return _info(im, limits)
    except UnidentifiedImageError:
        raise ImageRejected(f"not an image Darkroom can read ({_describe(path)})") from None
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from None


def _info(im: Image.Image, limits: Limits) -> SourceInfo:
    w, h = im.size
    if w * h > limits.max_pixels:
        raise ImageRejected(f"image is {w}x{h} = {w * h} pixels, over the limit of {limits.max_pixels}")
    if max(w, h) > limits.max_side:
        raise ImageRejected(f"image side {max(w, h)} px is over the limit of {limits.max_side} px")
    frames = getattr(im, "n_frames", 1)
    if frames > limits.max_frames:
        raise ImageRejected(f"image has {frames} frames, over the limit of {limits.max_frames}")
    orientation = im.getexif().get(0x0112, 1)
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    fmt = im.format or "unknown"
    return SourceInfo(format=fmt, mime_type=Image.MIME.get(fmt, "application/octet-stream"), width=w, height=h, frames=frames)


def _describe(path: Path) -> str:
    head = path.read_bytes()[:16]
    return f"first bytes {head!r}"


def render(path: Path, recipe: Recipe, limits: Limits) -> Rendered:
    """Decode ``path`` and encode one variant per planned width and format."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    info = probe(path, limits)
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            im = im.convert("RGBA" if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info else "RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"image data is broken or truncated: {exc}") from None
    timings["decode"] = time.perf_counter() - t0
    variants: list[Variant] = []
    resize_s = 0.0
    for width in plan_widths(im.width, recipe.widths):
        t = time.perf_counter()
        height = max(1, round(im.height * width / im.width))
        scaled = im if width == im.width else im.resize((width, height), Image.Resampling.LANCZOS)
        resize_s += time.perf_counter() - t
        for enc in recipe.encoders:
            t = time.perf_counter()
            variants.append(Variant(width, height, enc.format, encode(scaled, enc)))
            key = f"encode_{enc.format}"
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - t
    timings["resize"] = resize_s
    return Rendered(source=info, variants=tuple(variants), timings=timings)


def encode(im: Image.Image, enc: EncoderSpec) -> bytes:
    buf = io.BytesIO()
    if enc.format == "webp":
        im.save(buf, "WEBP", quality=enc.quality, method=enc.effort)
    elif enc.format == "avif":
        im.save(buf, "AVIF", quality=enc.quality, speed=enc.effort, max_threads=1)
    else:
        raise ValueError(f"unknown output format {enc.format!r}")
    return buf.getvalue()

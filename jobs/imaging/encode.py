"""Encode one variant. Every variant carries the sRGB profile and nothing else.

Pillow's AVIF save falls back to the image's own ``info["icc_profile"]``
(after a CMYK conversion that was the stale 190 KB CMYK profile), while its
WebP save embeds a profile only when given one; so both encoders are handed
the sRGB profile explicitly, and EXIF/XMP are passed as empty. AVIF runs
with ``max_threads=1``: parallelism comes from the worker processes and,
while cores are idle, from encoding a job's outputs in threads
(``fanout.py``); libavif's default (all CPUs) oversubscribes a process pool.

>>> len(encode(Image.new("RGB", (8, 8)), EncoderSpec("webp", 80, 4))) > 0
True
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image

from jobs.imaging.color import srgb_icc_bytes
from jobs.imaging.types import EncoderSpec

FORMATS = ("webp", "avif")


def encode(im: Image.Image, enc: EncoderSpec) -> bytes:
    """``im`` (RGB or RGBA) as ``enc.format`` bytes with only an sRGB ICC profile."""
    buf = io.BytesIO()
    icc = srgb_icc_bytes()
    if enc.format == "webp":
        im.save(buf, "WEBP", quality=enc.quality, method=enc.effort, icc_profile=icc, exif=b"", xmp=b"")
    elif enc.format == "avif":
        im.save(buf, "AVIF", quality=enc.quality, speed=enc.effort, max_threads=1, icc_profile=icc, exif=b"",
                xmp=b"")
    else:
        raise ValueError(f"unknown output format {enc.format!r}; expected one of {', '.join(FORMATS)}")
    return buf.getvalue()


def encode_animated_webp(frames: Sequence[Image.Image], durations: Sequence[int], loop: int,
                         enc: EncoderSpec) -> bytes:
    """An animated WebP of ``frames`` (RGB/RGBA), each shown for ``durations`` ms."""
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=list(frames[1:]), duration=list(durations), loop=loop,
                   quality=enc.quality, method=enc.effort, icc_profile=srgb_icc_bytes(), exif=b"", xmp=b"")
    return buf.getvalue()

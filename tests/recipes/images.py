"""Test pictures for recipes: made with Pillow, stored with a chosen EXIF orientation."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

# EXIF orientation -> what turns the upright picture into the stored pixels (the inverse of the fix).
TO_STORED = {
    1: None, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270,
    3: Image.Transpose.ROTATE_180,
}
GREY = (128, 128, 128)
RED = (230, 20, 20)


def marked(size: tuple[int, int]) -> Image.Image:
    """Grey, with a red square at the top-left corner of the upright picture."""
    im = Image.new("RGB", size, GREY)
    side = min(size) // 4
    ImageDraw.Draw(im).rectangle((0, 0, side - 1, side - 1), fill=RED)
    return im


def busy_subject(size: tuple[int, int], box: tuple[int, int, int, int], seed: int = 7) -> Image.Image:
    """A flat grey picture with a detailed, colourful patch (8 px tiles of random colour) inside ``box``."""
    im = Image.new("RGB", size, GREY)
    draw = ImageDraw.Draw(im)
    rng = random.Random(seed)
    left, top, right, bottom = box
    for x in range(left, right, 8):
        for y in range(top, bottom, 8):
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            draw.rectangle((x, y, min(x + 7, right - 1), min(y + 7, bottom - 1)), fill=colour)
    return im


def save(im: Image.Image, path: Path, orientation: int = 1) -> Path:
    """Save ``im`` (upright) as a JPEG whose stored pixels need ``orientation`` to be upright."""
    method = TO_STORED[orientation]
    stored = im.transpose(method) if method is not None else im
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    stored.save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path

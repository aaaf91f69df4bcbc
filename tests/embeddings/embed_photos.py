"""Synthetic "photos" and their transformed copies, for tests and the bench.

Each photo is a smooth random colour field with random shapes, a little
grain and blur, so descriptors see gradients, edges and colour like a photo.
Deterministic per seed.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter


def make_photo(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    w, h = size
    grid = nrng.integers(0, 256, size=(rng.randint(2, 5), rng.randint(2, 5), 3), dtype=np.uint8)
    img = Image.fromarray(grid, "RGB").resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(rng.randint(4, 14)):
        colour = tuple(rng.randint(0, 255) for _ in range(3)) + (rng.randint(120, 255),)
        x0, y0 = rng.randint(-w // 4, w), rng.randint(-h // 4, h)
        x1, y1 = x0 + rng.randint(w // 10, w // 2), y0 + rng.randint(h // 10, h // 2)
        kind = rng.random()
        if kind < 0.4:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind < 0.7:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            pts = [(rng.randint(0, w), rng.randint(0, h)) for _ in range(rng.randint(3, 6))]
            draw.polygon(pts, fill=colour)
    arr = np.asarray(img, dtype=np.int16) + nrng.normal(0, 6, size=(h, w, 3)).astype(np.int16)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return img.filter(ImageFilter.GaussianBlur(0.8))


def resized(img: Image.Image) -> Image.Image:
    return img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)


def jpeg_q50(img: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=50)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def cropped_10(img: Image.Image) -> Image.Image:
    """Cut 10 % of the width and height off, from the top-left corner."""
    dx, dy = img.width // 10, img.height // 10
    return img.crop((dx, dy, img.width, img.height))


def brightened(img: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(1.3)


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resized": resized,
    "jpeg50": jpeg_q50,
    "crop10": cropped_10,
    "bright": brightened,
}


def write_corpus(directory: Path, n: int, size: tuple[int, int] = (320, 240), seed0: int = 0) -> list[Path]:
    """Write ``n`` photos as PNG files named ``photo-<i>.png``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = directory / f"photo-{i:05d}.png"
        make_photo(seed0 + i, size).save(p)
        paths.append(p)
    return paths

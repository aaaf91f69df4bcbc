"""SSIM-Y of 1280 px variants against a reference made from the full-resolution original.

The reference is the original, colour-managed to sRGB (Darkroom's own
``to_srgb``, LittleCMS) and oriented, then LANCZOS-downscaled to
``SSIM_WIDTH`` from full resolution (no draft decode, no cascade), so
neither pipeline's shortcuts are in it. Luma is BT.601
(0.299 R + 0.587 G + 0.114 B); transparent pixels are composited on mid grey
first. SSIM is Wang et al.'s, with a 7x7 box window (not a Gaussian) and the
8-bit constants ``(0.01*255)^2``, ``(0.03*255)^2``, averaged over the image.
The references are cached as ``.npy`` beside the corpus.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
OUT = HERE / "out"
SSIM_WIDTH = 1280


def reference(path: Path, cache: Path = OUT / "reference") -> np.ndarray:
    """Y of the colour-managed, oriented original, LANCZOS-downscaled to SSIM_WIDTH (on grey if alpha)."""
    target = cache / f"{path.name}.npy"
    if target.exists():
        return np.load(target)
    from jobs.imaging.color import to_srgb
    from jobs.imaging.decode import read_orientation
    from jobs.imaging.resize import orient

    with Image.open(path) as im:
        icc, orientation = im.info.get("icc_profile"), read_orientation(im)
        im.load()
        full = orient(to_srgb(im, icc), orientation)
    ref = full.resize((SSIM_WIDTH, round(full.height * SSIM_WIDTH / full.width)), Image.Resampling.LANCZOS)
    y = luma(ref)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(target, y)
    return y


def luma(im: Image.Image) -> np.ndarray:
    if im.mode in ("RGBA", "LA"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (128, 128, 128, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"), dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def _box(a: np.ndarray, r: int = 3) -> np.ndarray:
    c = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    k = 2 * r + 1
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM with a 7x7 box window (Wang et al. constants, 8-bit range).

    >>> a = np.arange(64.0).reshape(8, 8)
    >>> round(ssim(a, a), 6)
    1.0
    """
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _box(x), _box(y)
    vx, vy, cxy = _box(x * x) - mx * mx, _box(y * y) - my * my, _box(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def ssim_y(got: Image.Image, ref: np.ndarray) -> float:
    """SSIM-Y of a decoded variant against a reference (heights may differ by a rounding pixel)."""
    y = luma(got)
    h = min(y.shape[0], ref.shape[0])
    return ssim(y[:h], ref[:h])


def score_dir(files: list[Path], folder: Path) -> dict[str, float]:
    """Mean SSIM-Y per format of ``folder/NAME.webp`` / ``NAME.avif`` (one per original in ``files``)."""
    result = {}
    for fmt in ("webp", "avif"):
        values = []
        for f in files:
            p = folder / f"{f.name}.{fmt}"
            if p.exists():
                with Image.open(p) as im:
                    values.append(ssim_y(im, reference(f)))
        result[fmt] = float(np.mean(values)) if values else float("nan")
    return result

"""Where to crop for ``gravity = "attention"``: the most salient region. Pure, deterministic.

The idea of libvips' attention strategy, on a small copy of the frame
(longest side :data:`WORK_SIDE` px), upright. Each pixel scores

    score = edge + saturation / 2 + (SKIN_BONUS if a skin tone else 0)

- ``edge``: Pillow's ``FIND_EDGES`` (a Laplacian) of the luma, 0-255; the
  one-pixel frame border is zeroed (the filter sees the edge of the picture
  as detail);
- ``saturation``: HSV saturation, 0-255, halved: colour draws the eye, but
  less than detail;
- skin tones: YCbCr with 77 <= Cb <= 127 and 133 <= Cr <= 173 (Chai & Ngan)
  and luma over 40, worth :data:`SKIN_BONUS`.

A cover crop always spans the whole frame in one direction, so only one
offset is free: the scores are summed into a profile along that axis and
the window of the crop's length with the largest sum wins. Ties (a subject
smaller than the crop fits whole in many windows) go to the window whose
centre is nearest the profile's centre of mass, then to the lower offset,
so the subject ends up as central as the frame allows. Integer sums: the
same image always gives the same crop.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from jobs.imaging.resize import orient

WORK_SIDE = 256  # px: the longest side of the copy the scores are computed on
SKIN_BONUS = 96


def score_map(im: Image.Image) -> np.ndarray:
    """Integer saliency per pixel of ``im`` (any mode), as documented above."""
    rgb = im.convert("RGB")
    luma = rgb.convert("L")
    edge = np.asarray(luma.filter(ImageFilter.FIND_EDGES), dtype=np.int64).copy()
    edge[0, :] = edge[-1, :] = 0
    edge[:, 0] = edge[:, -1] = 0
    sat = np.asarray(rgb.convert("HSV"), dtype=np.int64)[..., 1]
    ycc = np.asarray(rgb.convert("YCbCr"), dtype=np.int64)
    y, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    skin = (cb >= 77) & (cb <= 127) & (cr >= 133) & (cr <= 173) & (y > 40)
    result: np.ndarray = edge + sat // 2 + skin.astype(np.int64) * SKIN_BONUS
    return result


def best_window(profile: np.ndarray, length: int) -> int:
    """Start of the window of ``length`` with the largest sum (ties: nearest the centre of mass, then lowest)."""
    n = int(profile.shape[0])
    if length >= n:
        return 0
    sums = np.concatenate(([0], np.cumsum(profile)))
    windows = sums[length:] - sums[:-length]  # windows[i] = sum(profile[i:i+length])
    best = windows.max()
    candidates = np.flatnonzero(windows == best)
    total = int(profile.sum())
    centre2 = (2 * int((profile * np.arange(n)).sum()) // total) if total else n - 1  # twice the centroid
    # twice a window's centre is 2 * start + length - 1; compare in integers
    distance = np.abs(2 * candidates + length - 1 - centre2)
    return int(candidates[int(np.argmin(distance))])


def attention_offset(frame: Image.Image, orientation: int, region: tuple[int, int]) -> tuple[int, int]:
    """Top-left of the most salient ``region`` (width, height) in upright pixels of ``frame``.

    ``frame`` holds stored pixels (``orientation`` not applied yet).
    """
    small = frame.copy()
    small.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    small = orient(small, orientation)
    fw, fh = (frame.height, frame.width) if orientation in (5, 6, 7, 8) else frame.size
    rw, rh = region
    scores = score_map(small)
    sx, sy = small.width / fw, small.height / fh
    if fw - rw >= fh - rh:  # the crop spans the height: slide along x
        length = max(1, round(rw * sx))
        start = best_window(scores.sum(axis=0), length)
        return min(fw - rw, round(start / sx)), (fh - rh) // 2
    length = max(1, round(rh * sy))
    start = best_window(scores.sum(axis=1), length)
    return (fw - rw) // 2, min(fh - rh, round(start / sy))

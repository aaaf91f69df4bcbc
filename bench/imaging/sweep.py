"""Encoder-only sweep: CPU seconds, bytes and SSIM-Y per (format, quality, effort) at 1280 px.

    .venv/bin/python bench/imaging/sweep.py [N_IMAGES]

CPU time (``time.process_time``) rather than wall time, so a busy machine
does not distort the comparison. Each image is decoded and downscaled once
with the Darkroom pipeline; only the encoders are timed.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from corpus import build  # noqa: E402
from run import OUT, SSIM_WIDTH, luma, reference, ssim  # noqa: E402

from jobs.imaging.color import srgb_icc_bytes, to_srgb  # noqa: E402
from jobs.imaging.decode import read_orientation  # noqa: E402
from jobs.imaging.resize import orient  # noqa: E402

GRID = {
    "avif": [(q, s) for s in (6, 7, 8, 9, 10) for q in (50, 55, 60, 65)],
    "webp": [(q, m) for m in (2, 3, 4, 5, 6) for q in (75, 80, 85)],
}


def variant(path: Path) -> Image.Image:
    with Image.open(path) as im:
        icc, o = im.info.get("icc_profile"), read_orientation(im)
        im.draft(im.mode if im.mode in ("RGB", "L", "CMYK") else None, (2 * SSIM_WIDTH, 2 * SSIM_WIDTH))
        im.load()
        full = orient(to_srgb(im, icc), o)
    return full.resize((SSIM_WIDTH, round(full.height * SSIM_WIDTH / full.width)), Image.Resampling.LANCZOS)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    files = build(OUT / "corpus")
    files = files[:count - 3] + files[-3:]  # keep the CMYK / RGBA / 16-bit cases in
    images = [(f, variant(f), reference(f, OUT / "reference")) for f in files]
    print(f"| format | quality | effort | CPU s ({len(files)} imgs @ {SSIM_WIDTH}px) | KB | mean SSIM-Y |")
    print("| --- | --- | --- | --- | --- | --- |")
    for fmt, grid in GRID.items():
        for q, e in grid:
            cpu, size, scores = 0.0, 0, []
            for _, im, ref in images:
                buf = io.BytesIO()
                t = time.process_time()
                if fmt == "avif":
                    im.save(buf, "AVIF", quality=q, speed=e, max_threads=1, icc_profile=srgb_icc_bytes())
                else:
                    im.save(buf, "WEBP", quality=q, method=e, icc_profile=srgb_icc_bytes())
                cpu += time.process_time() - t
                size += buf.tell()
                buf.seek(0)
                got = luma(Image.open(buf))
                h = min(got.shape[0], ref.shape[0])
                scores.append(ssim(got[:h], ref[:h]))
            print(f"| {fmt} | {q} | {e} | {cpu:.2f} | {size / 1024:,.0f} | {np.mean(scores):.4f} |", flush=True)


if __name__ == "__main__":
    main()

"""Encoder sweep on Darkroom's own pixels, beside the sharp peer: bytes, SSIM-Y, CPU per setting.

    .venv/bin/python bench/imaging/sweep.py                          # AVIF quality x speed, WebP method
    .venv/bin/python bench/imaging/sweep.py --avif 58:9,60:9 --webp "" --sharp 60:1,62:1

Every photo of the corpus is decoded, colour-managed and resized once by
Darkroom's pipeline (``jobs.imaging``: draft decode, ``to_srgb``, the
cascade of the default recipe's widths); then each setting encodes every
width of every photo. Per setting it prints the total KB over all widths,
the KB at 1280 px, the mean SSIM-Y at 1280 px (``quality.py``) and the
encoder CPU seconds on one core (``time.process_time``, so a busy machine
does not distort it). ``--sharp Q:E`` rows (``Q:E:420``: 4:2:0 chroma) run the sharp peer
(``peer.mjs``) over the same photos at AVIF quality Q and effort E, scored
the same way; their CPU column is the peer's whole run (decode and resize
too), for reference only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from corpus import build  # noqa: E402
from quality import OUT, SSIM_WIDTH, reference, score_dir, ssim_y  # noqa: E402

from jobs.imaging.color import srgb_icc_bytes, to_srgb  # noqa: E402
from jobs.imaging.decode import decode, open_checked  # noqa: E402
from jobs.imaging.fit import make, plan  # noqa: E402
from jobs.imaging.recipes import RecipeSettings, to_recipe  # noqa: E402
from jobs.imaging.types import Limits  # noqa: E402

AVIF_GRID = "50:9,55:9,58:9,60:9,62:9,65:9,55:8,58:8,60:8,62:8,60:7,60:6"
WEBP_GRID = "80:2,80:3,80:4,80:6"


def levels(path: Path) -> list[Image.Image]:
    """The default recipe's outputs of ``path`` (ascending widths), exactly as ``render`` makes them."""
    recipe = to_recipe("default", RecipeSettings())
    with open_checked(path, Limits()) as (im, info):
        geometry = plan((info.width, info.height), recipe)
        icc = im.info.get("icc_profile")
        frame = to_srgb(decode(im, info, geometry.decode_width), icc)
        return make(frame, info.orientation, (info.width, info.height), recipe, geometry)


def encode(im: Image.Image, fmt: str, quality: int, effort: int, advanced: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    if fmt == "avif":
        extra = {"advanced": advanced} if advanced else {}
        im.save(buf, "AVIF", quality=quality, speed=effort, max_threads=1, icc_profile=srgb_icc_bytes(), **extra)
    else:
        im.save(buf, "WEBP", quality=quality, method=effort, icc_profile=srgb_icc_bytes())
    return buf.getvalue()


def darkroom_row(photos: list[tuple[Path, list[Image.Image]]], fmt: str, quality: int, effort: int,
                 advanced: dict[str, str] | None = None) -> dict:
    cpu, total, at_ssim, scores = 0.0, 0, 0, []
    for f, outs in photos:
        for im in outs:
            t = time.process_time()
            data = encode(im, fmt, quality, effort, advanced)
            cpu += time.process_time() - t
            total += len(data)
            if im.width == SSIM_WIDTH:
                at_ssim += len(data)
                with Image.open(io.BytesIO(data)) as got:
                    scores.append(ssim_y(got, reference(f)))
    return {"cpu_s": cpu, "kb": total / 1024, "kb_1280": at_ssim / 1024, "ssim": float(np.mean(scores))}


def sharp_row(files: list[Path], quality: int, effort: int, chroma: str = "4:4:4") -> dict:
    with tempfile.TemporaryDirectory(prefix="darkroom-sweep-") as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cmd = ["node", str(HERE / "peer.mjs"), "--out", tmp, "--avif-q", str(quality), "--avif-effort", str(effort),
               "--avif-chroma", chroma, *map(str, files)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE,
                              env={**os.environ, "UV_THREADPOOL_SIZE": "2"}, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        at_ssim = sum((Path(tmp) / f"{f.name}.avif").stat().st_size for f in files)
        return {"cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
                "kb": res["bytes"]["avif"] / 1024, "kb_1280": at_ssim / 1024,
                "ssim": score_dir(files, Path(tmp))["avif"]}


def pairs(spec: str) -> list[tuple[int, int]]:
    return [(int(q), int(e)) for q, e in (item.split(":") for item in spec.split(",") if item)]


def sharp_specs(spec: str) -> list[tuple[int, int, str]]:
    """``Q:E`` or ``Q:E:420`` items (420: AVIF with 4:2:0 chroma instead of sharp's default 4:4:4)."""
    out = []
    for item in filter(None, spec.split(",")):
        q, e, *rest = item.split(":")
        out.append((int(q), int(e), "4:2:0" if rest == ["420"] else "4:4:4"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--avif", default=AVIF_GRID, help="Darkroom AVIF quality:speed pairs (default: %(default)s)")
    ap.add_argument("--webp", default=WEBP_GRID, help="Darkroom WebP quality:method pairs (default: %(default)s)")
    ap.add_argument("--sharp", default="60:1", help="sharp peer AVIF quality:effort[:420] (default: %(default)s)")
    ap.add_argument("--advanced", action="append", default=[], metavar="KEY=VALUE",
                    help="an aom option for every Darkroom AVIF row (Pillow's advanced=), e.g. tune=psnr")
    ap.add_argument("--count", type=int, default=0, help="use only the first N photos (0: all)")
    args = ap.parse_args()
    files = build(OUT / "corpus")
    if args.count:
        files = files[:args.count]
    photos = [(f, levels(f)) for f in files] if args.avif or args.webp else []
    print(f"| encoder | quality | effort | KB, all widths | KB at {SSIM_WIDTH} | SSIM-Y at {SSIM_WIDTH} "
          f"| CPU s ({len(files)} photos) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")

    def show(label: str, q: int, e: int, r: dict) -> None:
        print(f"| {label} | {q} | {e} | {r['kb']:,.0f} | {r['kb_1280']:,.0f} | {r['ssim']:.4f} | {r['cpu_s']:.1f} |",
              flush=True)

    for q, e, chroma in sharp_specs(args.sharp):
        show(f"sharp AVIF (effort), {chroma}", q, e, sharp_row(files, q, e, chroma))
    advanced = dict(item.split("=", 1) for item in args.advanced)
    label = "Darkroom AVIF (speed)" + "".join(f" {k}={v}" for k, v in advanced.items())
    for q, e in pairs(args.avif):
        show(label, q, e, darkroom_row(photos, "avif", q, e, advanced or None))
    for q, e in pairs(args.webp):
        show("Darkroom WebP (method)", q, e, darkroom_row(photos, "webp", q, e))


if __name__ == "__main__":
    main()

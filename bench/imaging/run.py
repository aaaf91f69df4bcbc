"""Imaging benchmark: Darkroom end to end vs naive Pillow vs sharp, on one corpus, one run.

    .venv/bin/python bench/imaging/run.py [--workers 2] [--efforts 1,2,3] [--skip-big]

Needs sharp: ``(cd bench/imaging && npm install)`` (node_modules is gitignored).
Every pipeline runs in its own subprocess (peak RSS is per process tree) and
writes its 1280 px variants, which are scored with SSIM-Y against a
reference: the full-resolution original, colour-managed and oriented, then
LANCZOS-downscaled. Prints a table; figures are for reading, not asserting.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
OUT = HERE / "out"
WIDTHS = (320, 640, 1280, 1920)
SSIM_WIDTH = 1280


# --- Darkroom, end to end -----------------------------------------------------------------------

def darkroom(files: list[Path], workers: int, out: Path, overrides: dict) -> dict:
    """Enqueue with the real intake, drain with the real worker, read completed rows back."""
    from db import images
    from db.models import Status
    from jobs.intake import submit_file
    from worker import daemon
    from worker.app import build, lane_rule
    from worker.settings import load

    home = out / "install"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(REPO / "config.toml", home / "config.toml")  # the default config, as a user runs it
    settings = load(home / "config.toml", env={}, overrides={"queue.workers": workers, **overrides})
    app = build(settings)
    app.migrate()
    t0 = time.perf_counter()
    ids = [submit_file(app.engine, app.tasks, settings.paths.media_dir, f, lane_by=lane_rule(settings)).image_id
           for f in files]
    t_enqueue = time.perf_counter() - t0
    t1 = time.perf_counter()
    daemon.drain(app, workers=workers)
    wall = time.perf_counter() - t1
    stages: dict[str, float] = {}
    sizes = {"webp": 0, "avif": 0}
    (out / "ssim").mkdir(parents=True, exist_ok=True)
    for f, image_id in zip(files, ids):
        row = images.get(app.engine, image_id)
        assert row is not None and row.status == Status.COMPLETED.value, (f, row and row.error)
        for k, v in json.loads(row.timings or "{}").items():
            stages[k] = stages.get(k, 0.0) + v
        for v in images.variants_of(app.engine, image_id):
            sizes[v.format] += v.size
            if v.width == SSIM_WIDTH:
                shutil.copy(settings.paths.media_dir / v.path, out / "ssim" / f"{f.name}.{v.format}")
    app.close()
    return {"wall_s": wall, "enqueue_s": t_enqueue, "bytes": sizes, "stages": stages}


# --- naive Pillow ---------------------------------------------------------------------------------

def _naive_one(args: tuple[Path, Path]) -> dict[str, int]:
    path, out = args
    im = ImageOps.exif_transpose(Image.open(path))
    im = im.convert("RGBA" if "A" in im.mode else "RGB")
    sizes = {"webp": 0, "avif": 0}
    for w in WIDTHS:
        if w > im.width:
            continue
        scaled = im.resize((w, round(im.height * w / im.width)), Image.Resampling.LANCZOS)
        for fmt, kw in (("webp", {"quality": 80, "method": 4}), ("avif", {"quality": 60})):
            buf = io.BytesIO()
            scaled.save(buf, fmt.upper(), **kw)
            sizes[fmt] += buf.tell()
            if w == SSIM_WIDTH:
                (out / f"{path.name}.{fmt}").write_bytes(buf.getvalue())
    return sizes


def naive(files: list[Path], workers: int, out: Path) -> dict:
    (out / "ssim").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(_naive_one, [(f, out / "ssim") for f in files]))
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "bytes": {k: sum(r[k] for r in results) for k in ("webp", "avif")}}


# --- sharp ----------------------------------------------------------------------------------------

def sharp(files: list[Path], workers: int, out: Path, effort: int, webp_q: int, avif_q: int, threads: int) -> dict:
    env = {**os.environ, "UV_THREADPOOL_SIZE": str(max(4, workers))}
    cmd = ["node", str(HERE / "sharp_bench.mjs"), str(out / "ssim"), str(effort), str(webp_q), str(avif_q),
           str(workers), str(threads), ",".join(map(str, WIDTHS)), *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- quality --------------------------------------------------------------------------------------

def reference(path: Path, cache: Path) -> np.ndarray:
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
    if im.mode == "RGBA":
        bg = Image.new("RGBA", im.size, (128, 128, 128, 255))
        im = Image.alpha_composite(bg, im)
    return np.asarray(im.convert("RGB"), dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def _box(a: np.ndarray, r: int = 3) -> np.ndarray:
    c = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    k = 2 * r + 1
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM with a 7x7 box window (Wang et al. constants, 8-bit range)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _box(x), _box(y)
    vx, vy, cxy = _box(x * x) - mx * mx, _box(y * y) - my * my, _box(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def score(files: list[Path], out: Path) -> dict[str, float]:
    result = {}
    for fmt in ("webp", "avif"):
        values = []
        for f in files:
            p = out / "ssim" / f"{f.name}.{fmt}"
            if not p.exists():
                continue
            ref = reference(f, OUT / "reference")
            with Image.open(p) as im:
                got = luma(im)
            if got.shape != ref.shape:
                h = min(got.shape[0], ref.shape[0])
                got, ref = got[:h], ref[:h]
            values.append(ssim(got, ref))
        result[fmt] = float(np.mean(values)) if values else float("nan")
    return result


# --- orchestration --------------------------------------------------------------------------------

def child(kind: str, spec: dict) -> None:
    files = [Path(f) for f in spec["files"]]
    out = Path(spec["out"])
    if kind == "darkroom":
        res = darkroom(files, spec["workers"], out, spec.get("overrides", {}))
    elif kind == "naive":
        res = naive(files, spec["workers"], out)
    elif kind == "big":
        from jobs.imaging import Limits, render
        from worker.app import recipe_from
        from worker.settings import load

        t0 = time.perf_counter()
        r = render(files[0], recipe_from(load(REPO / "config.toml", env={})), Limits())
        res = {"wall_s": time.perf_counter() - t0, "stages": r.timings, "variants": len(r.variants)}
    else:
        raise SystemExit(f"unknown kind {kind}")
    # VmHWM, not ru_maxrss: ru_maxrss survives execve, so it would report the orchestrator's peak.
    own = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:")) / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    res["peak_rss_mb"] = max(own, kids) if kind != "naive" else kids
    print(json.dumps(res))


def spawn(kind: str, **spec: object) -> dict:
    out = Path(str(spec["out"]))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    proc = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(spec)], capture_output=True,
                          text=True, cwd=REPO)
    if proc.returncode:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--efforts", default="1,2,3", help="sharp AVIF efforts to try for the matched comparison")
    ap.add_argument("--sharp-avif-q", type=int, default=50,
                    help="sharp AVIF quality for the effort sweep (50 lands within a few %% of Darkroom's bytes)")
    ap.add_argument("--skip-big", action="store_true", help="skip the 100 MP peak-RSS check")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--darkroom-only", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="Darkroom config override, e.g. variants.avif.effort=9")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], json.loads(args.child[1]))
        return
    from corpus import big_jpeg, build

    files = [str(f) for f in build(OUT / "corpus")]
    overrides: dict[str, object] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    n, rows = args.workers, []
    print(f"corpus: {len(files)} images, widths {WIDTHS}, {n} workers; running...", file=sys.stderr)

    def run(label: str, kind: str, **kw: object) -> dict:
        t = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = OUT / label.replace(" ", "_").replace("/", "_")
        if kind == "sharp":
            out.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(out / "ssim", ignore_errors=True)
            res = sharp([Path(f) for f in files], n, out, **kw)  # type: ignore[arg-type]
        else:
            res = spawn(kind, files=files, out=str(out), **kw)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        res["cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        res["ssim"] = score([Path(f) for f in files], out)
        res["label"] = label
        rows.append(res)
        print(f"  {label}: {res['wall_s']:.1f}s ({time.perf_counter() - t:.0f}s with scoring)", file=sys.stderr)
        return res

    # Interleaved: Darkroom, sharp, naive, Darkroom 1-worker, the sharp effort sweep.
    dr = run(f"darkroom {n}w", "darkroom", workers=n, overrides=overrides)
    if not args.darkroom_only:
        efforts = [int(e) for e in args.efforts.split(",") if e]
        run(f"sharp effort {efforts[0]}", "sharp", effort=efforts[0], webp_q=80, avif_q=args.sharp_avif_q, threads=1)
        if not args.skip_naive:
            run("naive pillow", "naive", workers=n)
        for e in efforts[1:]:
            run(f"sharp effort {e}", "sharp", effort=e, webp_q=80, avif_q=args.sharp_avif_q, threads=1)
        run("sharp defaults", "sharp", effort=4, webp_q=80, avif_q=50, threads=0)
    dr1 = run("darkroom 1w", "darkroom", workers=1, overrides=overrides)
    report(rows, dr, dr1, n, len(files))
    if not args.skip_big:
        big = big_jpeg(OUT / "big_100mp.jpg")
        res = spawn("big", files=[str(big)], out=str(OUT / "big"))
        print(f"\n100 MP JPEG (10000x10000): {res['wall_s']:.2f}s, peak RSS {res['peak_rss_mb']:.0f} MB; stages "
              + " ".join(f"{k}={v:.2f}s" for k, v in sorted(res["stages"].items())))


def report(rows: list[dict], dr: dict, dr1: dict, n: int, count: int) -> None:
    print(f"\n| pipeline ({count} images) | images/s | s/image | CPU s/image | WebP KB | AVIF KB | SSIM WebP "
          f"| SSIM AVIF | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['label']} | {count / r['wall_s']:.2f} | {r['wall_s'] / count:.3f} | {r['cpu_s'] / count:.3f} "
              f"| {r['bytes']['webp'] / 1024:,.0f} "
              f"| {r['bytes']['avif'] / 1024:,.0f} | {r['ssim']['webp']:.4f} | {r['ssim']['avif']:.4f} "
              f"| {r['peak_rss_mb']:.0f} |")
    stages = dr1["stages"]
    in_task = sum(v for k, v in stages.items() if k not in ("write", "db"))
    overhead = dr1["wall_s"] - in_task
    print("\nDarkroom 1 worker, per-stage CPU time over the set (s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(stages.items())))
    print(f"queue + DB + file overhead (1 worker): {overhead:.2f}s of {dr1['wall_s']:.2f}s = "
          f"{100 * overhead / dr1['wall_s']:.1f}% (enqueue, not in the wall time: {dr1['enqueue_s']:.2f}s)")
    print(f"scaling: {n} workers {count / dr['wall_s']:.2f} img/s vs 1 worker {count / dr1['wall_s']:.2f} img/s = "
          f"{dr1['wall_s'] / dr['wall_s']:.2f}x")
    others = {r["label"]: r for r in rows}
    if "naive pillow" in others:
        print(f"Darkroom {n}w vs naive Pillow: {others['naive pillow']['wall_s'] / dr['wall_s']:.2f}x")
    sharps = [r for r in rows if r["label"].startswith("sharp effort")]
    if sharps:
        def distance(r: dict) -> float:
            size_gap = abs(r["bytes"]["avif"] / dr["bytes"]["avif"] - 1)
            return size_gap + 10 * max(0.0, dr["ssim"]["avif"] - r["ssim"]["avif"])
        best = min(sharps, key=distance)
        print(f"closest sharp to Darkroom's AVIF bytes/SSIM: {best['label']} (AVIF bytes "
              f"{100 * (best['bytes']['avif'] / dr['bytes']['avif'] - 1):+.1f}%, SSIM {best['ssim']['avif']:.4f} vs "
              f"{dr['ssim']['avif']:.4f}); Darkroom is {best['wall_s'] / dr['wall_s']:.2f}x its images/s "
              f"({best['cpu_s'] / dr['cpu_s']:.2f}x per CPU second)")


if __name__ == "__main__":
    main()

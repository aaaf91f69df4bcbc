"""Imaging benchmark: Darkroom end to end (real daemon, default config) vs the sharp peer, interleaved.

    .venv/bin/python bench/imaging/run.py                    # 3 rounds, ~10 min on 2 busy cores
    .venv/bin/python bench/imaging/run.py --rounds 5 --match 65:2 --skip-big

Needs sharp: ``(cd bench/imaging && npm ci)`` (node_modules is git-ignored).

Each round runs, in alternating order:
- **Darkroom, 2 workers**: a fresh installation with the repository's
  config.toml, a real ``darkroom worker`` daemon started and left to go idle;
  then the clock runs from ``darkroom enqueue <corpus dir>`` (a subprocess)
  until every row is ``completed`` *and* has its vector (``embedded_at``).
  Then, on the same idle daemon, single photos: a new 12 MP JPEG submitted
  through the Python API (``Darkroom.submit``) until its row is completed.
- **sharp peer, AVIF effort 1** (``peer.mjs``: decode once with
  shrink-on-load, derive each smaller width from the larger level's pixels,
  2 photos in flight, ``sharp.concurrency(1)``), timed as a whole process;
  and the same single photos in-process, with sharp's default threads.
- **sharp peer at --match Q:E**, the AVIF setting whose bytes and SSIM-Y are
  nearest Darkroom's (found with sweep.py).
- **Darkroom, 1 worker** (2 vs 1 with the default threads), unless --skip-1w.
- **Darkroom, serial jobs, 2 workers and 1** (``imaging.encode_threads = 1``):
  worker scaling when each job uses one core, unless --skip-serial. (With the
  default, a lone job already encodes on both cores, so a second worker adds
  little on 2 cores: that run says how much.)

Wall figures are medians over rounds (min-max); ratios are taken within
each round, then the median. SSIM-Y (quality.py) of every 1280 px variant
against the full-resolution reference. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from corpus import big_jpeg, build, photo  # noqa: E402
from install import Install, clean_env  # noqa: E402
from quality import OUT, SSIM_WIDTH, score_dir  # noqa: E402

SHARP1 = "sharp peer, AVIF q60 effort 1"
ONE_WORKER, ONE_WORKER_SERIAL = "Darkroom 1 worker", "Darkroom 1 worker, serial jobs"


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def darkroom_set(corpus: Path, count: int, workers: int, out: Path, singles: list[Path],
                 encode_threads: int = 0) -> dict:
    """The whole corpus through a real daemon; then ``singles`` one by one through the Python API.

    ``encode_threads``: the config's ``imaging.encode_threads`` (0, the default, is automatic; 1 = serial jobs).
    """
    inst = Install(out / "install", encode_threads=encode_threads)
    cpu0 = cpu_children()
    inst.start(workers)
    try:
        t0 = time.perf_counter()
        enq = subprocess.run(inst.command("enqueue", str(corpus)), capture_output=True, env=clean_env(),
                             cwd=inst.home)
        t_enqueued, enqueued_at = time.perf_counter(), time.time()
        if enq.returncode:
            raise SystemExit(f"enqueue failed: {enq.stderr.decode()[-2000:]}")
        t_completed, t_vectors = inst.wait_done(count)
        peak = inst.peak_rss_mb()
        res = inst.results(SSIM_WIDTH, out / "ssim", after=enqueued_at)  # the corpus only: before the singles
        res["refused"] = inst.refused()
        single_s = []
        if singles:
            inst.settle()
            single_s = single_photos(inst, singles)
    finally:
        inst.stop()
    res.update(wall_s=t_vectors - t0, completed_s=t_completed - t0, enqueue_s=t_enqueued - t0,
               cpu_s=cpu_children() - cpu0, peak_rss_mb=peak,
               single_s=single_s)
    return res


def single_photos(inst: Install, photos: list[Path]) -> list[float]:
    """Submit each photo through the Python API to the idle daemon; seconds until its row is completed."""
    from worker.api import Darkroom

    times = []
    con = inst.db()
    with Darkroom.from_config(inst.config) as dr:
        for p in photos:
            t0 = time.perf_counter()
            image_id = dr.submit(p)
            while True:
                (status,) = con.execute("SELECT status FROM images WHERE id = ?", (image_id,)).fetchone()
                if status in ("completed", "failed"):
                    break
                time.sleep(0.005)
            times.append(time.perf_counter() - t0)
            if status != "completed":
                raise SystemExit(f"{p} failed")
            inst.settle(1.0)  # its vector and any follow-up task done before the next photo
    con.close()
    return times


def peer(files: list[Path], out: Path, avif_q: int, avif_effort: int, in_flight: int = 2,
         threads: int = 1) -> dict:
    """Run peer.mjs once; wall_s is the whole process (node start included), inner_s the script's own clock."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "UV_THREADPOOL_SIZE": str(in_flight * threads)} if threads else dict(os.environ)
    cmd = ["node", str(HERE / "peer.mjs"), "--out", str(out), "--avif-q", str(avif_q), "--avif-effort",
           str(avif_effort), "--in-flight", str(in_flight), "--threads", str(threads), *map(str, files)]
    cpu0 = cpu_children()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"peer.mjs failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(inner_s=res["wall_s"], wall_s=wall, cpu_s=cpu_children() - cpu0)
    res["bytes_at"] = {fmt: sum((out / f"{f.name}.{fmt}").stat().st_size for f in files) for fmt in ("webp", "avif")}
    return res


def big_child(path: str) -> None:
    """In a child process: render a 100 MP JPEG with the default recipe; print seconds and VmHWM."""
    from jobs.imaging import Limits, render
    from worker.app import recipe_from
    from worker.settings import load

    t0 = time.perf_counter()
    r = render(Path(path), recipe_from(load(HERE.parents[1] / "config.toml", env={})), Limits())
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:")) / 1024
    print(json.dumps({"wall_s": time.perf_counter() - t0, "peak_rss_mb": hwm, "variants": len(r.variants)}))


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--match", default="", help="sharp AVIF quality:effort nearest Darkroom's (sweep.py); '' skips")
    ap.add_argument("--singles", type=int, default=2, help="single 12 MP photos per round (0 skips)")
    ap.add_argument("--skip-1w", action="store_true", help="skip the 1-worker run (2-vs-1 with default threads)")
    ap.add_argument("--skip-serial", action="store_true",
                    help="skip the serial-job runs (imaging.encode_threads = 1, 2 workers and 1: worker scaling)")
    ap.add_argument("--skip-big", action="store_true", help="skip the 100 MP peak-RSS check")
    ap.add_argument("--big-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.big_child:
        big_child(args.big_child)
        return
    files = build(OUT / "corpus")
    corpus = files[0].parent
    count = len(files)
    match = tuple(int(x) for x in args.match.split(":")) if args.match else None
    runs: dict[str, list[dict]] = {}
    print(f"corpus: {count} photos, {args.rounds} rounds; load {os.getloadavg()}", file=sys.stderr)

    def record(label: str, res: dict) -> dict:
        runs.setdefault(label, []).append(res)
        print(f"  {label}: {res['wall_s']:.2f} s", file=sys.stderr, flush=True)
        return res

    for r in range(args.rounds):
        singles_dir = OUT / "singles"
        singles_dir.mkdir(parents=True, exist_ok=True)
        singles = []
        for i in range(args.singles):  # new content each time: no duplicate of anything stored
            p = singles_dir / f"single_{r}_{i}.jpg"
            if not p.exists():
                photo(1000 + 10 * r + i, (4032, 3024)).save(p, "JPEG", quality=90)
            singles.append(p)
        dr_label, sharp_label = f"Darkroom {args.workers} workers", SHARP1
        steps: list[tuple[str, Callable[[], dict]]] = [
            (dr_label, partial(darkroom_set, corpus, count, args.workers, OUT / "dr", singles)),
            (sharp_label, partial(peer, files, OUT / "sharp1" / "ssim", 60, 1)),
        ]
        if match:
            steps.append((f"sharp peer, AVIF q{match[0]} effort {match[1]}",
                          partial(peer, files, OUT / "sharpm" / "ssim", match[0], match[1])))
        if not args.skip_1w:
            steps.append((ONE_WORKER, partial(darkroom_set, corpus, count, 1, OUT / "dr1", [])))
        if not args.skip_serial:  # worker scaling with single-threaded jobs (imaging.encode_threads = 1)
            steps.append((f"Darkroom {args.workers} workers, serial jobs",
                          partial(darkroom_set, corpus, count, args.workers, OUT / "drs", [], 1)))
            steps.append((ONE_WORKER_SERIAL, partial(darkroom_set, corpus, count, 1, OUT / "dr1s", [], 1)))
        if r % 2:
            steps.reverse()
        print(f"round {r + 1}: load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        for label, step in steps:
            record(label, step())
        if singles:  # sharp on the same photos, in-process, its default threads
            for p in singles:
                res = peer([p], OUT / "sharp_single", 60, 1, in_flight=1, threads=0)
                runs.setdefault("sharp single", []).append(res)
        d, sh = runs[dr_label][-1], runs[sharp_label][-1]
        print(f"round {r + 1}: Darkroom/sharp images/s {sh['wall_s'] / d['wall_s']:.2f}x; single photo "
              + ", ".join(f"{t:.2f} s vs {x['inner_s']:.2f} s" for t, x in zip(d["single_s"], runs.get(
                  "sharp single", [])[-len(singles):], strict=False)) + f"; load {os.getloadavg()[0]:.2f}",
              file=sys.stderr, flush=True)
    report(runs, count, args.workers, files)
    if not args.skip_big:
        big = big_jpeg(OUT / "big_100mp.jpg")
        proc = subprocess.run([sys.executable, __file__, "--big-child", str(big)], capture_output=True, text=True)
        b = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"\n100 MP JPEG (10000x10000), default recipe in one process: {b['wall_s']:.2f} s, "
              f"peak RSS (VmHWM) {b['peak_rss_mb']:.0f} MB")
    print(f"\nload average at the end: {os.getloadavg()}")


def report(runs: dict[str, list[dict]], count: int, workers: int, files: list[Path]) -> None:
    dirs = {SHARP1: OUT / "sharp1" / "ssim", f"Darkroom {workers} workers": OUT / "dr" / "ssim",
            ONE_WORKER: OUT / "dr1" / "ssim", f"Darkroom {workers} workers, serial jobs": OUT / "drs" / "ssim",
            ONE_WORKER_SERIAL: OUT / "dr1s" / "ssim"}
    print(f"\n| pipeline ({count} photos) | wall s, median (min-max) | images/s | CPU s | WebP KB | AVIF KB "
          f"| AVIF KB at {SSIM_WIDTH} | SSIM-Y WebP | SSIM-Y AVIF | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, rs in runs.items():
        if label == "sharp single":
            continue
        folder = dirs.get(label, OUT / "sharpm" / "ssim")
        q = score_dir(files, folder)
        last = rs[-1]
        if any(r["bytes"] != last["bytes"] for r in rs):
            print(f"(note: {label}'s bytes differ between rounds)")
        walls = [r["wall_s"] for r in rs]
        print(f"| {label} | {med(walls)} | {count / statistics.median(walls):.2f} "
              f"| {statistics.median(r['cpu_s'] for r in rs):.1f} | {last['bytes']['webp'] / 1024:,.0f} "
              f"| {last['bytes']['avif'] / 1024:,.0f} | {last['bytes_at']['avif'] / 1024:,.0f} | {q['webp']:.4f} "
              f"| {q['avif']:.4f} | {max(r['peak_rss_mb'] for r in rs):.0f} |")
    dr = runs[f"Darkroom {workers} workers"]
    print(f"\nDarkroom {workers} workers: enqueue command {med([r['enqueue_s'] for r in dr])} s; all completed at "
          f"{med([r['completed_s'] for r in dr])} s; all vectors at {med([r['wall_s'] for r in dr])} s")
    for label in (f"Darkroom {workers} workers", ONE_WORKER):
        refused = {f"{name}: {why.rsplit(': ', 1)[-1]}" for r in runs.get(label, []) for name, why in r["refused"]}
        if refused:
            print(f"  {label}: completed without a vector (the embedder refused): " + "; ".join(sorted(refused)))
    sharp = runs[SHARP1]
    ratios = [s["wall_s"] / d["wall_s"] for s, d in zip(sharp, dr, strict=False)]
    print(f"Darkroom {workers} workers vs sharp peer (effort 1), images/s ratio per round: "
          + ", ".join(f"{x:.2f}" for x in ratios) + f"; median {statistics.median(ratios):.2f}x")
    print(f"  sharp's own clock (decode to last encode, no node start): {med([s['inner_s'] for s in sharp])} s")
    for label, rs in runs.items():
        if label.startswith("sharp peer, AVIF q") and "effort 1" not in label:
            rat = [s["wall_s"] / d["wall_s"] for s, d in zip(rs, dr, strict=False)]
            print(f"Darkroom {workers} workers vs {label}: median {statistics.median(rat):.2f}x")
    serial = f"Darkroom {workers} workers, serial jobs"
    for many, one_label in ((f"Darkroom {workers} workers", ONE_WORKER), (serial, ONE_WORKER_SERIAL)):
        if one_label not in runs or many not in runs:
            continue
        one = runs[one_label]
        scale = [o["wall_s"] / d["wall_s"] for o, d in zip(one, runs[many], strict=False)]
        print(f"{many} vs {one_label} (enqueue to last vector): " + ", ".join(f"{x:.2f}" for x in scale)
              + f"; median {statistics.median(scale):.2f}x")
        # One worker runs one job at a time: over the rows claimed once enqueue had finished (so no job
        # waited for a row to exist), the time between jobs (queue, claim) plus the jobs' file writes and
        # DB updates, as a share of that span; the worker's other tasks between jobs (embedding-step runs,
        # maintenance) apart. (Encode stage times are not used: they run in threads.)
        over = [100 * o["overhead"] for o in one if o["overhead"] is not None]
        if over:
            print(f"  queue + DB + file overhead, {one_label} (rows claimed after enqueue finished: time between "
                  f"jobs + write + db stages, of the span; other tasks apart): {med(over)} %")
            print(f"  the same worker's other tasks between jobs (embedding-step runs writing the vectors to "
                  f"LanceDB, maintenance): {med([100 * o['other'] for o in one if o['other'] is not None])} %")
        stages = one[-1]["stages"]
        print(f"  {one_label}, stage seconds over the set: "
              + ", ".join(f"{k} {v:.2f}" for k, v in sorted(stages.items())))
    singles = [t for r in dr for t in r["single_s"]]
    if singles:
        sharp_single = [r["inner_s"] for r in runs["sharp single"]]
        pairs = [d / s for d, s in zip(singles, sharp_single, strict=False)]
        print(f"one 12 MP photo: Darkroom (Python API submit -> completed, idle {workers}-worker daemon) "
              f"{med(singles)} s; sharp in-process, default threads {med(sharp_single)} s; "
              f"Darkroom/sharp per photo median {statistics.median(pairs):.2f}")


if __name__ == "__main__":
    main()

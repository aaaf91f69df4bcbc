"""Chaos run: many small images while worker processes (and whole daemons) are SIGKILLed.

Starts a real `darkroom worker` on a throw-away installation, enqueues
``--images`` small JPEGs, and every ``--kill-every`` seconds SIGKILLs a worker
process that is in the middle of a job (the OOM killer's way); every
``--consumer-every``-th kill takes the whole consumer with ``kill -9``
instead, checks that none of its processes survive, and starts a new one.
When every image is completed or failed (or ``--timeout``), it stops the
daemon with SIGTERM and prints:

    completed / failed / not finished, duplicates (variant rows per
    (image, width, format) > 1), variants missing or undecodable, temporary
    files left, orphan processes, images processed more than once.

    python bench/chaos.py --images 1000 --kill-every 3
    python bench/chaos.py --images 300 --workers 2 --kill-every 2 --keep /tmp/chaos
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._install import children_of, make_images, running, start_worker, write_config


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kill-every", type=float, default=3.0, help="seconds between kills")
    ap.add_argument("--consumer-every", type=int, default=5,
                    help="every Nth kill is of the whole consumer (0: never)")
    ap.add_argument("--size", default="480x360", help="image size WxH")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None, help="use this directory and keep it")
    args = ap.parse_args()
    random.seed(args.seed)
    home = args.keep or Path(tempfile.mkdtemp(prefix="darkroom-chaos-"))
    try:
        return run(args, home)
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)


def run(args: argparse.Namespace, home: Path) -> int:
    from jobs.intake import submit_file
    from worker.app import build
    from worker.settings import load

    cfg = write_config(home, {
        "queue": {"workers": args.workers, "max_delay_s": 0.1},
        "variants": {"widths": [96, 320], "webp": {"quality": 75, "effort": 2},
                     "avif": {"quality": 55, "effort": 8}},
        # Short leases so a killed consumer's images come back quickly.
        "jobs": {"lease_s": 6.0, "reconcile_interval_s": 2.0, "requeue_after_s": 60.0,
                 "max_attempts": 10, "grace_s": 10.0},
    })
    app = build(load(cfg, env={}))
    app.migrate()
    w, h = (int(x) for x in args.size.split("x"))
    files = make_images(home / "src", args.images, (w, h))
    t0 = time.monotonic()
    for f in files:
        submit_file(app.engine, app.tasks, app.settings.paths.media_dir, f)
    print(f"enqueued {len(files)} images in {time.monotonic() - t0:.1f}s; starting the worker", flush=True)

    db = home / "data" / "app.db"
    log = home / "worker.log"
    proc = start_worker(cfg, log)
    kills = Counter[str]()
    orphans: list[int] = []
    started = time.monotonic()
    next_kill = started + args.kill_every
    while time.monotonic() - started < args.timeout:
        done, total = _progress(db)
        if done == total:
            break
        if time.monotonic() >= next_kill:
            next_kill += args.kill_every
            n = sum(kills.values()) + 1
            if args.consumer_every and n % args.consumer_every == 0:
                family = _family(proc.pid)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                deadline = time.monotonic() + 5
                while any(running(p) for p in family) and time.monotonic() < deadline:
                    time.sleep(0.05)
                orphans += [p for p in family if running(p)]
                kills["consumer"] += 1
                proc = start_worker(cfg, log)
            elif _kill_busy_worker(db, set(_family(proc.pid))):
                kills["worker"] += 1
            print(f"  {time.monotonic() - started:6.1f}s  {done}/{total} done, kills: {dict(kills)}", flush=True)
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    report = audit(home, db)
    report.update(kills=dict(kills), orphan_processes=len(orphans), seconds=round(elapsed, 1),
                  images=args.images, workers=args.workers)
    print(json.dumps(report, indent=2))
    bad = (report["not_finished"] or report["duplicates"] or report["variants_bad"]
           or report["temp_files_left"] or report["orphan_processes"])
    return 1 if bad else 0


def _family(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        out += kids
        todo += kids
    return out


def _kill_busy_worker(db: Path, family: set[int]) -> bool:
    conn = sqlite3.connect(db, timeout=30)
    try:
        owners = [r[0] for r in conn.execute("SELECT lease_owner FROM images WHERE status = 'processing'")]
    finally:
        conn.close()
    pids = [int(o.rsplit("/", 1)[1]) for o in owners if o]
    pids = [p for p in pids if p in family]
    if not pids:
        return False
    try:
        os.kill(random.choice(pids), signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def _progress(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        done, total = conn.execute(
            "SELECT sum(status IN ('completed', 'failed')), count(*) FROM images").fetchone()
    finally:
        conn.close()
    return int(done or 0), int(total)


def audit(home: Path, db: Path) -> dict[str, object]:
    from PIL import Image

    from jobs.imaging import EncoderSpec, Recipe
    from jobs.reprocess import expected_variants

    recipe = Recipe(widths=(96, 320), encoders=(EncoderSpec("webp", 75, 2), EncoderSpec("avif", 55, 8)))
    media = home / "data" / "media"
    conn = sqlite3.connect(db, timeout=30)
    try:
        status = dict(conn.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall())
        failed = Counter(e for (e,) in conn.execute("SELECT error FROM images WHERE status = 'failed'"))
        duplicates = conn.execute("SELECT count(*) FROM (SELECT 1 FROM image_variants GROUP BY "
                                  "image_id, width, format HAVING count(*) > 1)").fetchone()[0]
        retried = conn.execute("SELECT count(*) FROM images WHERE attempts > 1").fetchone()[0]
        rows = conn.execute("SELECT i.id, i.width, v.width, v.format, v.path FROM images i "
                            "LEFT JOIN image_variants v ON v.image_id = i.id "
                            "WHERE i.status = 'completed'").fetchall()
    finally:
        conn.close()
    have: dict[str, set[tuple[int, str]]] = {}
    widths: dict[str, int] = {}
    bad = 0
    for image_id, width, vw, fmt, path in rows:
        widths[image_id] = width
        if path is None:
            continue
        have.setdefault(image_id, set()).add((vw, fmt))
        try:
            with Image.open(media / path) as im:
                im.load()
        except Exception:
            bad += 1
    bad += sum(1 for i, w in widths.items() if have.get(i, set()) != expected_variants(w, recipe))
    return {
        "completed": status.get("completed", 0),
        "failed": status.get("failed", 0),
        "not_finished": status.get("pending", 0) + status.get("processing", 0),
        "duplicates": duplicates,
        "variants_bad": bad,
        "temp_files_left": len(list(media.rglob(".tmp-*"))),
        "processed_more_than_once": retried,
        "failure_reasons": dict(failed),
    }


if __name__ == "__main__":
    raise SystemExit(main())

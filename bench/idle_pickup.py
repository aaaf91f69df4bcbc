"""How long a new image waits on an idle `darkroom worker` before it starts.

Starts a real daemon (one process worker) on a throw-away installation,
leaves it idle long enough for its polling to back off fully, enqueues one
small image and measures enqueue -> claim (``images.started_at``). Repeats.

    python bench/idle_pickup.py                     # config.toml defaults
    python bench/idle_pickup.py --max-delay 0.5 --rounds 10

The figure is bounded by ``queue.max_delay_s`` (SQLite storage polls; Redis
blocks on BRPOP and does not wait).
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._install import make_images, start_worker, write_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--max-delay", type=float, default=0.25, help="queue.max_delay_s")
    ap.add_argument("--idle", type=float, default=3.0, help="idle seconds before each image (+ up to 1 s random)")
    args = ap.parse_args()

    from db import images
    from jobs.intake import submit_file
    from worker.app import build
    from worker.settings import load

    with tempfile.TemporaryDirectory(prefix="darkroom-idle-") as tmp:
        home = Path(tmp)
        cfg = write_config(home, {
            "queue": {"workers": 1, "max_delay_s": args.max_delay},
            "variants": {"widths": [64]},
        })
        app = build(load(cfg, env={}))
        app.migrate()
        files = make_images(home / "src", args.rounds, (200, 150))
        proc = start_worker(cfg, home / "worker.log")
        try:
            time.sleep(3)  # start-up
            waits = []
            for f in files:
                time.sleep(args.idle + random.random())
                image_id = submit_file(app.engine, app.tasks, app.settings.paths.media_dir, f).image_id
                enqueued = time.time()
                while True:
                    row = images.get(app.engine, image_id)
                    if row is not None and row.started_at:
                        break
                    time.sleep(0.005)
                waits.append(row.started_at - enqueued)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            app.close()
    waits.sort()
    print(f"idle pickup latency, max_delay_s={args.max_delay}, {len(waits)} rounds after "
          f">= {args.idle:.0f} s idle: median {statistics.median(waits) * 1000:.0f} ms, "
          f"p90 {waits[int(0.9 * (len(waits) - 1))] * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()

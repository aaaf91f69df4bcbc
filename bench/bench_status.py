"""How long `darkroom status`, a metrics scrape and the status page take on a big table.

Builds a throwaway installation with N image rows, one a second up to now
(90% completed, 5% failed
over 20 distinct errors, 5% pending), then times ``report.gather`` (what
``status`` and ``/status.json`` run), one Prometheus scrape of the state
collector, and one render of the status page. Prints figures; asserts nothing.

    python bench/bench_status.py --rows 200000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from db.engine import write_session
from db.models import Image, ImageVariant


def populate(app, rows: int) -> None:
    now = time.time()
    batch, variants = [], []
    with write_session(app.engine) as s:
        for i in range(rows):
            r = i % 100
            status = "completed" if r < 90 else "failed" if r < 95 else "pending"
            image_id = f"img-{i:09d}"
            batch.append({
                "id": image_id, "filename": f"photo-{i}.jpg", "original_path": f"originals/{i}.jpg",
                "mime_type": "image/jpeg", "size": 1000, "status": status, "created_at": int(now - rows + i),
                "completed_at": now - (rows - i) * 1.0 if status == "completed" else None,
                "error": f"error kind {i % 20}" if status == "failed" else None,
                "updated_at": now - (rows - i) * 1.0, "attempts": 1})
            if status == "completed":
                variants.append({"id": f"v-{i:09d}", "image_id": image_id, "width": 320,
                                 "format": "webp", "path": f"variants/{i}.webp", "size": 100})
            if len(batch) >= 5000:
                s.execute(insert(Image), batch)
                if variants:
                    s.execute(insert(ImageVariant), variants)
                batch, variants = [], []
        if batch:
            s.execute(insert(Image), batch)
        if variants:
            s.execute(insert(ImageVariant), variants)


def timed(label: str, fn, repeat: int = 5) -> None:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    print(f"{label:<28} median {times[len(times) // 2] * 1000:8.1f} ms   best {times[0] * 1000:8.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    from prometheus_client import CollectorRegistry, generate_latest

    from worker.app import build
    from worker.settings import load
    from worker.status import figures
    from worker.status.metrics import StateCollector
    from worker.status.report import gather
    from worker.status.web.page import render

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text("")
        app = build(load(cfg, env={}))
        app.migrate()
        t = time.perf_counter()
        populate(app, args.rows)
        print(f"{args.rows} rows inserted in {time.perf_counter() - t:.1f}s")
        registry = CollectorRegistry()
        registry.register(StateCollector(app))
        timed("status (report.gather)", lambda: gather(app))
        timed("metrics scrape (state)", lambda: generate_latest(registry))
        timed("status page render", lambda: render(
            gather(app), figures.recent_failures(app.engine), figures.recent_completed(app.engine)))
        app.close()


if __name__ == "__main__":
    main()

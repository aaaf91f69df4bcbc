"""The embedding tail: from the last image ``completed`` to its vector written, and what the step costs.

Each round runs one child process per code tree (this one, and with
``--before DIR`` an older checkout, interleaved) on the same photos:

1. a fresh installation (default config, SQLite), the photos submitted and
   processed one after another by ``process_image`` in the child;
2. the LanceDB store opened first (its import is a one-off per worker
   process, not part of the tail);
3. one embedding step run, timed: wall and CPU seconds (all threads of the
   process), and ``tail`` = the last ``embedded_at`` minus the last
   ``completed_at``;
4. where the tree embeds inline, the per-job cost of it (the ``embed`` stage
   of each job's timings, ms per 12 MP photo), and the step again with every
   vector forgotten (``from_files``: a model switch or an upgrade, where the
   step reads the originals).

    python bench/embeddings/tail.py --corpus /tmp/corpus --rounds 3 --before /tmp/darkroom-before
    python bench/embeddings/tail.py --worker --rounds 2 --before /tmp/darkroom-before

``--worker`` instead starts a real ``darkroom worker`` (default config, 2
processes) per child, enqueues the photos with ``darkroom enqueue`` and
reports when the last row completed and the last vector was written (seconds
after the enqueue started) and the tail between them; the tail includes the
step's debounce (``delay_after_complete_s``, 2 s by default).
``--inline-cost PHOTO --rounds 30`` times only what inline embedding adds to a
job (the small copy from the decoded pixels and the descriptor).

The corpus defaults to the imaging bench's 21 photos (bench/imaging/corpus.py).
Prints one line per child and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def child(corpus: Path, home: Path) -> dict[str, object]:
    """One measurement in this process, with whatever code ``import jobs`` finds."""
    from sqlalchemy import select, update

    from db.engine import write_session
    from db.models import Image as ImageRow
    from jobs import image_job
    from jobs.embeddings.step import run_step
    from jobs.intake import submit_file
    from worker.app import build
    from worker.settings import load

    (home / "config.toml").write_text("")
    app = build(load(home / "config.toml", env={}))
    app.migrate()
    ctx = app.install_context()
    media_dir = app.settings.paths.media_dir
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".jpg", ".png"))
    ids = [submit_file(app.engine, app.tasks, media_dir, p).image_id for p in files]
    store, embedder, cfg = app.vector_store, app.embedder, app.settings.embeddings
    store.models()  # LanceDB imported and opened before anything is timed
    t = time.perf_counter()
    for image_id in ids:
        assert image_job.process_image(ctx, image_id) == "completed", image_id
    jobs_s = time.perf_counter() - t

    def timed_step() -> tuple[float, float, int, int]:
        w, c = time.perf_counter(), time.process_time()
        result = run_step(app.engine, store, embedder, cfg, media_dir, "bench")
        return time.perf_counter() - w, time.process_time() - c, result.embedded, result.refused

    wall, cpu, embedded, refused = timed_step()
    with app.engine.connect() as conn:
        rows = conn.execute(select(ImageRow.completed_at, ImageRow.embedded_at, ImageRow.width, ImageRow.height,
                                   ImageRow.timings)).all()
    tail = max(float(r[1] or 0.0) for r in rows) - max(float(r[0] or 0.0) for r in rows)
    embed_ms = [json.loads(r[4] or "{}").get("embed", 0.0) * 1000 for r in rows
                if 11e6 < (r[2] or 0) * (r[3] or 0) < 13e6]
    out: dict[str, object] = {"code": str(Path(image_job.__file__).resolve().parents[1]), "images": len(ids),
                              "embedded": embedded, "refused": refused, "jobs_s": round(jobs_s, 3),
                              "step_wall_s": round(wall, 3), "step_cpu_s": round(cpu, 3), "tail_s": round(tail, 3),
                              "inline_ms_12mp": round(statistics.median(embed_ms), 2) if any(embed_ms) else None}
    if hasattr(ImageRow, "pending_vector"):  # the step again from the files (model switch, upgrade)
        with write_session(app.engine) as s:
            s.execute(update(ImageRow).values(embedding_model=None, embedded_at=None, pending_vector=None,
                                              pending_vector_model=None))
        wall, cpu, embedded, _ = timed_step()
        out.update(from_files_wall_s=round(wall, 3), from_files_cpu_s=round(cpu, 3), from_files_embedded=embedded)
    app.close()
    return out


def worker_child(corpus: Path, home: Path) -> dict[str, object]:
    """A real ``darkroom worker`` (default config: 2 processes) draining the photos; the tail as users see it."""
    import signal

    from sqlalchemy import func, select

    from db.engine import make_engine
    from db.models import Image as ImageRow
    from worker.settings import load

    config = home / "config.toml"
    config.write_text("")
    darkroom = [sys.executable, "-m", "worker", "--config", str(config)]
    subprocess.run([*darkroom, "migrate"], check=True, capture_output=True, cwd=home)
    log = (home / "worker.log").open("wb")
    worker = subprocess.Popen([*darkroom, "worker"], stdout=log, stderr=subprocess.STDOUT, cwd=home,
                              start_new_session=True)
    try:
        time.sleep(3.0)  # started and idle: its start-up is not part of the figures
        files = sorted(str(p) for p in corpus.iterdir() if p.suffix in (".jpg", ".png"))
        t0 = time.time()
        subprocess.run([*darkroom, "enqueue", *files], check=True, capture_output=True, cwd=home)
        engine = make_engine(load(config, env={}).database.url)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                done = conn.execute(select(func.count()).select_from(ImageRow).where(
                    ImageRow.embedded_at.is_not(None) | (ImageRow.embedding_model.is_not(None)))).scalar_one()
            if done >= len(files):
                break
            time.sleep(0.05)
        with engine.connect() as conn:
            row = conn.execute(select(func.max(ImageRow.completed_at), func.max(ImageRow.embedded_at))).one()
        engine.dispose()
        last_completed, last_embedded = float(row[0] or "nan"), float(row[1] or "nan")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        log.close()
    return {"code": str(code_tree()), "images": len(files), "all_completed_s": round(last_completed - t0, 3),
            "all_embedded_s": round(last_embedded - t0, 3), "tail_s": round(last_embedded - last_completed, 3)}


def code_tree() -> Path:
    """The checkout whose code this process runs (``--before`` trees come first on PYTHONPATH)."""
    import jobs

    return Path(jobs.__file__).resolve().parents[1]


def inline_cost(photo: Path, repeat: int) -> None:
    """What the inline embedding adds to one job: the copy from the decoded pixels, and the descriptor."""
    from jobs.embeddings import inline
    from jobs.imaging.color import to_srgb
    from jobs.imaging.decode import decode, open_checked
    from jobs.imaging.embed_copy import embed_copy
    from jobs.imaging.fit import plan
    from jobs.imaging.recipes import DEFAULT, RecipeSettings, to_recipe
    from jobs.imaging.types import Limits

    recipe = to_recipe(DEFAULT, RecipeSettings())
    with open_checked(photo, Limits()) as (im, info):  # decoded as the job decodes it
        icc = im.info.get("icc_profile")
        frame = to_srgb(decode(im, info, plan((info.width, info.height), recipe).decode_width), icc)
        walls, cpus = [], []
        for _ in range(repeat):
            w, c = time.perf_counter(), time.process_time()
            inline.describe(embed_copy(frame, info.orientation))
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
    print(f"inline embedding of {photo.name} ({info.width}x{info.height}, decoded {frame.width}x{frame.height}): "
          f"median {statistics.median(walls) * 1000:.2f} ms wall, {statistics.median(cpus) * 1000:.2f} ms CPU "
          f"over {repeat}; load {os.getloadavg()[0]:.2f}")


def run_child(tree: Path, corpus: Path, mode: str = "--child") -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="tail-") as home:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        env = {k: v for k, v in env.items() if not k.startswith("DARKROOM_")}
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), mode, home,
                               "--corpus", str(corpus)], env=env, cwd=tree, capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            raise SystemExit(f"child in {tree} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=REPO / "bench/imaging/out/corpus")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", type=Path, help="an older checkout to compare with (interleaved)")
    ap.add_argument("--worker", action="store_true",
                    help="measure with a real `darkroom worker` (enqueue -> every vector written) instead")
    ap.add_argument("--inline-cost", type=Path, metavar="PHOTO",
                    help="only time the inline embedding of PHOTO (copy + descriptor), in this process")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--worker-child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.corpus, args.child)))
        return
    if args.inline_cost:
        inline_cost(args.inline_cost, max(args.rounds, 5))
        return
    if args.worker_child:
        print(json.dumps(worker_child(args.corpus, args.worker_child)))
        return
    if not args.corpus.is_dir():
        sys.path.insert(0, str(REPO / "bench/imaging"))
        from corpus import build as build_corpus

        build_corpus(args.corpus)
    trees = [("before", args.before)] if args.before else []
    trees.append(("after", REPO))
    results: dict[str, list[dict[str, object]]] = {name: [] for name, _ in trees}
    print(f"load before: {os.getloadavg()}")
    for r in range(args.rounds):
        for name, tree in trees if r % 2 == 0 else reversed(trees):
            got = run_child(tree, args.corpus, "--worker-child" if args.worker else "--child")
            results[name].append(got)
            print(f"round {r + 1} {name:6s} {json.dumps(got)}", flush=True)
    print(f"load after: {os.getloadavg()}")
    keys = ("step_wall_s", "step_cpu_s", "tail_s", "jobs_s", "inline_ms_12mp", "from_files_wall_s", "from_files_cpu_s",
            "all_completed_s", "all_embedded_s")
    for name, runs in results.items():
        medians = {k: statistics.median(float(str(g[k])) for g in runs) for k in keys
                   if all(g.get(k) is not None for g in runs)}
        print(f"median {name:6s} " + "  ".join(f"{k}={v:.3f}" for k, v in medians.items()))


if __name__ == "__main__":
    main()

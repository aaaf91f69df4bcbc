"""Nothing is lost on any backend: the reconciler and recovery after SIGKILL.

The row is the truth and the queue message a hint, on Redis as on SQLite:
rows nobody enqueued, messages dropped by the queue, and claims held by a
worker that was killed all end ``completed`` (or ``failed`` with a reason
once their attempts are spent), exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import update

from db import images
from db.engine import make_engine, write_session
from db.models import Image, Status
from jobs.intake import submit_file
from tests.conftest import all_backends, run_cli
from tests.daemon import launch, stop_piped
from tests.imagefiles import photo
from worker import daemon
from worker.app import App
from worker.settings import load

pytestmark = all_backends


def _expire(app: App, ids: list[str], attempts: int) -> None:
    """Make ``ids`` look claimed by a worker that died: processing, lease in the past."""
    with write_session(app.engine) as s:
        s.execute(update(Image).where(Image.id.in_(ids)).values(
            status=Status.PROCESSING.value, lease_owner="deadhost-1-abc/7",
            lease_expires_at=time.time() - 1, attempts=attempts))


def test_reconciler_recovers_lost_messages_and_dead_claims(app: App, tmp_path: Path) -> None:
    media = app.settings.paths.media_dir
    files = [photo(tmp_path / f"r{i}.jpg", (300 + i, 200)) for i in range(5)]
    ids = [submit_file(app.engine, app.tasks, media, f).image_id for f in files]
    app.huey.flush()  # the queue lost every message (Redis restarted without persistence)
    assert app.huey.pending_count() == 0
    inserted_only = images.insert_image(  # another app inserted a row and never enqueued
        app.engine, filename="other.jpg", original_path=str(photo(tmp_path / "o.jpg", (300, 300))),
        mime_type="image/jpeg", size=1, owns_original=False)
    _expire(app, ids[:2], attempts=1)
    _expire(app, ids[2:3], attempts=app.settings.jobs.max_attempts)  # no attempts left
    with write_session(app.engine) as s:  # enqueued long ago: past requeue_after_s
        s.execute(update(Image).where(Image.id.in_(ids[3:])).values(enqueued_at=time.time() - 3600))

    daemon.drain(app)  # reconciles first, then empties the queue

    rows = {i: images.get(app.engine, i) for i in [*ids, inserted_only]}
    assert rows[ids[2]].status == "failed"
    assert "gave up after" in rows[ids[2]].error and "lease expired" in rows[ids[2]].error
    for image_id in [*ids[:2], *ids[3:], inserted_only]:
        row = rows[image_id]
        assert row.status == "completed", (image_id, row.error)
        assert row.lease_owner is None
        assert len(images.variants_of(app.engine, image_id)) == 6  # 3 widths x 2 formats
    assert rows[ids[0]].attempts == 2 and rows[ids[3]].attempts == 1


def _start(config: Path) -> subprocess.Popen[str]:
    # Its own process group, so the test can clean up everything it started.
    return launch(config, "worker", new_session=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigkill_of_a_worker_mid_job_loses_nothing(make_config, tmp_path: Path) -> None:
    # AVIF effort 3 keeps a job in hand long enough to be killed mid-way.
    cfg = make_config(queue={"workers": 2},
                      variants={"avif": {"quality": 50, "effort": 3}},
                      jobs={"lease_s": 2.0, "reconcile_interval_s": 0.5, "requeue_after_s": 30.0})
    settings = load(cfg, env={})
    engine = make_engine(settings.database.url)
    run_cli(cfg, "migrate")
    # Big enough that a job is in hand most of the time, small enough to be quick.
    files = [str(photo(tmp_path / "in" / f"k{i:02}.jpg", (1500 + 8 * i, 1000))) for i in range(12)]
    first = _start(cfg)
    second: subprocess.Popen[str] | None = None
    try:
        # Enqueue from another process while watching for a job in hand: the
        # worker starts on the first image before the producer is done.
        producer = launch(cfg, "enqueue", "--json", *files, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not images.counts(engine)["processing"]:
            assert images.counts(engine)["completed"] < len(files), "all done before a kill"
            assert time.monotonic() < deadline, "the worker never started a job"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)  # the consumer only, as the OOM killer would
        first.communicate(timeout=10)
        deadline = time.monotonic() + 10
        while _group_alive(first.pid):  # its worker processes follow it (PDEATHSIG)
            assert time.monotonic() < deadline, "worker processes outlived their killed parent"
            time.sleep(0.05)
        out, err = producer.communicate(timeout=60)
        assert producer.returncode == 0, err
        ids = json.loads(out)["enqueued"]
        orphaned = [i for i in ids if images.get(engine, i).status == "processing"]
        assert orphaned, "no job was in hand at the kill"

        second = _start(cfg)
        deadline = time.monotonic() + 90
        while images.counts(engine)["completed"] < len(ids):
            assert second.poll() is None, second.communicate()[0]
            assert images.counts(engine)["failed"] == 0, images.get(engine, ids[0]).error
            assert time.monotonic() < deadline, images.counts(engine)
            time.sleep(0.2)
    finally:
        if _group_alive(first.pid):
            os.killpg(first.pid, signal.SIGKILL)
        output = stop_piped(second) if second is not None else ""
    assert second.returncode == 0, output
    for image_id in ids:
        row = images.get(engine, image_id)
        assert row.status == "completed" and row.lease_owner is None
        # One attempt, or two for a job the kill interrupted; never more.
        assert row.attempts == (2 if image_id in orphaned else 1), (image_id, row.attempts)
        variants = images.variants_of(engine, image_id)
        assert sorted((v.width, v.format) for v in variants) == sorted(
            (w, f) for w in (64, 128, 256) for f in ("avif", "webp"))
    engine.dispose()

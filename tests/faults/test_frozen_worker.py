"""A frozen worker (SIGSTOP) whose lease expired leaves the other worker's files untouched after SIGCONT.

Two ``darkroom worker`` daemons on one installation. Worker A is frozen
(its whole process group) while it holds an image; its lease expires, the
reconciler hands the image to worker B, which completes it. A is then
thawed: it finishes its encode, but it no longer holds the lease, so it
renames nothing and removes its temporary files: B's variants stay byte for
byte what B wrote, and the row counts two attempts (two claims).
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from db import images
from jobs import media
from jobs.intake import submit_file
from tests.conftest import run_cli, wait_for
from tests.daemon import Daemon
from tests.imagefiles import photo
from worker.app import App, build
from worker.settings import load

pytestmark = pytest.mark.acceptance


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def _freeze_inside_a_job(app: App, a: Daemon, tmp_path: Path, tries: int = 5) -> str:
    """Enqueue a big photo and SIGSTOP A's process group while A holds it; returns its id.

    A job lasts about a second: on a busy machine the poll can miss it, or A can finish
    between the look and the signal. Then A is thawed and a new photo tried: what
    counts is the state once frozen (the row processing, leased by A), not the timing.
    """
    def status(image_id: str) -> str | None:
        row = images.get(app.engine, image_id)
        return row.status if row is not None else None

    for n in range(tries):
        # A new colour each try: the same bytes would be a duplicate of the last photo.
        src = photo(tmp_path / "in" / f"big{n}.jpg", (4000, 3000), color=(200 - 30 * n, 80, 40))
        # Submitted in this process, so the polling starts as the message is queued.
        image_id = submit_file(app.engine, app.tasks, app.settings.paths.media_dir, src).image_id
        seen = wait_for(lambda: (st := status(image_id)) in ("processing", "completed") and st,  # noqa: B023 (called at once)
                        timeout=60, interval=0.01, what="worker A took the image")
        if seen == "processing":
            os.killpg(a.popen.pid, signal.SIGSTOP)
            row = images.get(app.engine, image_id)
            if row is not None and row.status == "processing" and row.lease_owner:
                return image_id
            os.killpg(a.popen.pid, signal.SIGCONT)
        wait_for(lambda: status(image_id) == "completed", timeout=60, what="the missed image completed")  # noqa: B023
    raise AssertionError(f"never caught worker A inside a job in {tries} tries")


def test_frozen_worker_leaves_the_other_workers_files_untouched(
        fault_config: Callable[..., Path], pg_url: str, start_worker: Callable[..., Daemon],
        tmp_path: Path) -> None:
    # On the private PostgreSQL: with SQLite a process frozen inside a write holds the
    # database lock, and nobody else can write until it is thawed (seen here: B waited 90 s).
    # Big enough that the encode takes a moment to catch, widths that make many files.
    cfg = fault_config(database={"url": pg_url}, jobs={"lease_s": 2.0, "reconcile_interval_s": 0.5, "grace_s": 2.0},
                       variants={"widths": [320, 640, 1280, 1920]})
    run_cli(cfg, "migrate")
    app = build(load(cfg, env={}))
    a = start_worker(cfg, "worker")
    image_id = _freeze_inside_a_job(app, a, tmp_path)
    try:
        owner_a = images.get(app.engine, image_id).lease_owner  # type: ignore[union-attr]
        b = start_worker(cfg, "worker")

        def done() -> bool:
            row = images.get(app.engine, image_id)
            return row is not None and row.status == "completed"

        wait_for(done, timeout=90, interval=0.2, what="worker B completed the image")
        vdir = media.variant_dir(app.settings.paths.media_dir, image_id)
        written_by_b = _digests(vdir)
        row = images.get(app.engine, image_id)
        assert row is not None and row.lease_owner != owner_a
    finally:
        os.killpg(a.popen.pid, signal.SIGCONT)
    # A finishes its encode and tries to complete: the compare-and-set finds B's claim.
    wait_for(lambda: f"image {image_id}: lease lost before completion; result discarded" in a.log(),
             timeout=60, interval=0.2, what="the thawed worker A gave its result up")
    assert _digests(vdir) == written_by_b, "the stale worker changed B's files"
    assert not list(vdir.parent.rglob(".tmp-*")), "the stale worker left temporary files"
    row = images.get(app.engine, image_id)
    assert row is not None and row.status == "completed" and row.attempts == 2
    assert b.stop() == 0
    app.close()

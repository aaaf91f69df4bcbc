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
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from db import images
from jobs import media
from tests.conftest import run_cli, wait_for
from tests.daemon import Daemon
from tests.imagefiles import photo
from worker.app import build
from worker.settings import load

pytestmark = pytest.mark.acceptance


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_frozen_worker_leaves_the_other_workers_files_untouched(
        fault_config: Callable[..., Path], pg_url: str, start_worker: Callable[..., Daemon],
        tmp_path: Path) -> None:
    # On the private PostgreSQL: with SQLite a process frozen inside a write holds the
    # database lock, and nobody else can write until it is thawed (seen here: B waited 90 s).
    # Big enough that the encode takes a moment to catch, widths that make many files.
    cfg = fault_config(database={"url": pg_url}, jobs={"lease_s": 2.0, "reconcile_interval_s": 0.5, "grace_s": 2.0},
                       variants={"widths": [320, 640, 1280, 1920]})
    src = photo(tmp_path / "in" / "big.jpg", (4000, 3000))
    run_cli(cfg, "enqueue", str(src))
    app = build(load(cfg, env={}))
    image_id = images.ids_with_status(app.engine, ["pending"])[0]
    a = start_worker(cfg, "worker")

    def held_by_a() -> bool:
        row = images.get(app.engine, image_id)
        return row is not None and row.status == "processing"

    wait_for(held_by_a, timeout=60, interval=0.01, what="worker A holds the image")
    os.killpg(a.popen.pid, signal.SIGSTOP)
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
    time.sleep(6.0)  # A finishes its encode (or gives up) and tries to complete
    assert _digests(vdir) == written_by_b, "the stale worker changed B's files"
    assert not list(vdir.parent.rglob(".tmp-*")), "the stale worker left temporary files"
    row = images.get(app.engine, image_id)
    assert row is not None and row.status == "completed" and row.attempts == 2
    assert b.stop() == 0
    app.close()

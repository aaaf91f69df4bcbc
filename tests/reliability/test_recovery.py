"""Acceptance: rows nobody enqueued, retryable errors, `retry` and `reprocess`."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs import media
from jobs.intake import submit_file
from tests.conftest import TEST_SECTIONS, merge, run_cli, write_config
from tests.daemon import Daemon
from tests.imagefiles import photo
from tests.reliability.checks import assert_all_completed_cleanly
from tests.reliability.conftest import db_path, query, wait_for
from worker import daemon
from worker.app import build
from worker.settings import load

pytestmark = pytest.mark.acceptance


@pytest.mark.quiet  # a bound in seconds: see tests/conftest.py:_quiet_machine
def test_row_inserted_with_plain_sql_completes_within_two_reconciler_intervals(
        make_config: Callable[..., Path], start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    interval = 1.5
    # The periodic maintenance duties and embedding step off: their first run in a process
    # (the step's vector audit imports LanceDB, seconds on a busy machine) can occupy the one
    # process worker while the row waits behind it. What is timed here is the reconciler.
    cfg = make_config(jobs={"reconcile_interval_s": interval}, maintenance={"enabled": False},
                      embeddings={"enabled": False})
    run_cli(cfg, "migrate")
    worker = start_worker(cfg)
    worker.wait_children(2)
    time.sleep(interval)  # let the start-up run pass: the row must be found by a periodic run
    src = photo(tmp_path / "elsewhere" / "upload.jpg", (300, 200))
    image_id = str(uuid.uuid4())
    conn = sqlite3.connect(db_path(cfg))
    with conn:  # only the seed-004 required columns, as another program would write
        conn.execute("INSERT INTO images (id, filename, original_path, mime_type, size) "
                     "VALUES (?, ?, ?, ?, ?)", (image_id, "upload.jpg", str(src), "image/jpeg",
                                                src.stat().st_size))
    inserted = time.time()
    conn.close()

    [(completed_at,)] = wait_for(lambda: query(
        cfg, "SELECT completed_at FROM images WHERE id = ? AND status = 'completed'", (image_id,)),
        timeout=30, what="the inserted row completed")
    assert completed_at - inserted <= 2 * interval, f"took {completed_at - inserted:.2f}s"
    assert worker.stop() == 0


def test_always_retryable_error_fails_after_the_configured_attempts_and_retry_recovers(
        make_config: Callable[..., Path], start_worker: Callable[..., Daemon], tmp_path: Path) -> None:
    cfg = make_config(jobs={"max_attempts": 3, "retry_delay_s": 0.2})
    run_cli(cfg, "migrate")
    # distinct sizes: enqueue skips duplicates
    src = [str(photo(tmp_path / f"p{i}.jpg", (300 + 10 * i, 200))) for i in range(2)]
    blocked, fine = json.loads(run_cli(cfg, "enqueue", "--json", *src).stdout)["enqueued"]
    # A real storage fault: a plain file where the image's variant directory
    # must go, so every write of its variants fails (root ignores permissions).
    vdir = media.variant_dir(cfg.parent / "data" / "media", blocked)
    vdir.parent.mkdir(parents=True, exist_ok=True)
    vdir.write_text("in the way")

    worker = start_worker(cfg)
    wait_for(lambda: query(cfg, "SELECT 1 FROM images WHERE id = ? AND status = 'failed'", (blocked,)),
             timeout=90, what="the blocked image failed")
    [(attempts, error)] = query(cfg, "SELECT attempts, error FROM images WHERE id = ?", (blocked,))
    assert attempts == 3
    assert error.startswith("gave up after 3 attempts; last error: cannot write variant"), error
    wait_for(lambda: query(cfg, "SELECT 1 FROM images WHERE id = ? AND status = 'completed'", (fine,)),
             what="the other image completed")

    vdir.unlink()  # the fault is fixed: `darkroom retry --failed` finishes the job
    out = run_cli(cfg, "retry", "--failed").stdout
    assert "retrying 1 image(s)" in out
    wait_for(lambda: query(cfg, "SELECT 1 FROM images WHERE id = ? AND status = 'completed'", (blocked,)),
             what="the retried image completed")
    assert query(cfg, "SELECT attempts, error FROM images WHERE id = ?", (blocked,)) == [(1, None)]
    assert worker.stop() == 0


def _submit_and_drain(cfg: Path, files: list[Path]) -> list[str]:
    app = build(load(cfg, env={}))
    try:
        app.migrate()
        ids = [submit_file(app.engine, app.tasks, app.settings.paths.media_dir, f).image_id for f in files]
        daemon.drain(app)
        return ids
    finally:
        app.close()


def _dry_run(cfg: Path) -> dict[str, int]:
    out = run_cli(cfg, "reprocess", "--missing", "--dry-run").stdout
    lines = [line.split() for line in out.splitlines() if line and not line.startswith("would")]
    return {reason: int(n) for reason, n in lines}


def test_reprocess_missing_counts_and_fixes_deleted_files_missing_rows_and_old_recipes(
        make_config: Callable[..., Path], tmp_path: Path) -> None:
    old = make_config(variants={"widths": [64, 128]})
    new = write_config(old.parent / "new.toml", merge(TEST_SECTIONS, {"variants": {"widths": [64, 96]}}))
    files = [photo(tmp_path / f"p{i}.jpg", (300, 200), color=(i * 40, 90, 90)) for i in range(4)]
    first = _submit_and_drain(old, files[:2])  # in process: only the commands under test run as CLI
    current = _submit_and_drain(new, files[2:])
    media_dir = old.parent / "data" / "media"
    [(path,)] = query(new, "SELECT path FROM image_variants WHERE image_id = ? AND width = 96 "
                           "AND format = 'webp'", (current[0],))
    (media_dir / path).unlink()
    conn = sqlite3.connect(db_path(new))
    with conn:
        conn.execute("DELETE FROM image_variants WHERE image_id = ? AND width = 64 AND format = 'avif'",
                     (current[1],))
    conn.close()

    before = query(new, "SELECT id, status, recipe_fingerprint, attempts FROM images ORDER BY id")
    assert _dry_run(new) == {"old_recipe": 2, "missing_rows": 1, "missing_files": 1}
    assert query(new, "SELECT id, status, recipe_fingerprint, attempts FROM images ORDER BY id") == before

    assert "reprocessing 4 image(s)" in run_cli(new, "reprocess", "--missing").stdout
    _submit_and_drain(new, [])
    assert _dry_run(new) == {"old_recipe": 0, "missing_rows": 0, "missing_files": 0}
    assert_all_completed_cleanly(new, 4)
    widths = query(new, "SELECT DISTINCT width FROM image_variants ORDER BY width")
    assert widths == [(64,), (96,)]
    for image_id in first:  # files of the old recipe (128 px) are removed
        names = sorted(p.name for p in media.variant_dir(media_dir, image_id).iterdir())
        assert names == ["64.avif", "64.webp", "96.avif", "96.webp"]

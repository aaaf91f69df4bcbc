"""Storage trouble is an outage: a full media disk pauses the work and it resumes by itself.

The media dir is a small **tmpfs** mounted for the test when this machine
allows it (root in a sandbox); where mounting is impossible the test is
skipped with the reason, and the unit tests below still check the
classification with a fault-injecting writer (an ``OSError(ENOSPC)`` raised
from the write).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from db import images
from jobs import image_job, media
from tests.conftest import run_cli, wait_for
from tests.daemon import Daemon
from tests.imagefiles import photo
from worker.app import build
from worker.settings import load


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "media"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}); "
                    "the fault-injecting unit tests cover the classification")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` to the last byte."""
    filler = directory / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 512, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler


@pytest.mark.acceptance
def test_full_media_disk_waits_and_completes_after_space_returns(
        fault_config: Callable[..., Path], small_tmpfs: Path, tmp_path: Path,
        start_worker: Callable[..., Daemon]) -> None:
    cfg = fault_config(paths={"media_dir": str(small_tmpfs)}, health={"media_min_free_mb": 0.5},
                       jobs={"max_attempts": 2, "retry_delay_s": 0.1})
    for i in range(4):
        photo(tmp_path / "in" / f"p{i}.jpg", (300 + 10 * i, 200))
    run_cli(cfg, "enqueue", str(tmp_path / "in"))  # originals stored while there is room
    filler = _fill(small_tmpfs)
    worker = start_worker(cfg, "worker")

    def waiting() -> bool:
        s = json.loads(run_cli(cfg, "status", "--json").stdout)
        return (s["images"]["completed"] == 0 and "waiting" in worker.log().lower()) or \
            "media storage at" in worker.log()

    wait_for(waiting, timeout=60, what="the storage outage noticed")
    health = run_cli(cfg, "health", check=False)
    assert health.returncode == 1 and f"media storage at {small_tmpfs}" in health.stderr
    app = build(load(cfg, env={}))
    rows = [images.get(app.engine, i) for i in images.ids_with_status(app.engine, ["pending", "processing"])]
    assert len(rows) == 4 and all(r.attempts <= 1 for r in rows), [(r.status, r.attempts) for r in rows]
    assert not list(small_tmpfs.rglob(".tmp-*")), "a failed attempt left files"

    filler.unlink()  # space returns: no `retry` needed
    wait_for(lambda: images.counts(app.engine)["completed"] == 4, timeout=60, what="every image completed")
    assert images.counts(app.engine)["failed"] == 0
    assert run_cli(cfg, "health", "--json", check=False).stdout.count("media storage") == 0
    assert worker.log().count("unreachable: ") <= 2, worker.log()[-2000:]  # one WARNING per process
    assert "is back after" in worker.log()
    assert worker.stop() == 0
    app.close()


def test_storage_errors_are_outages_and_leave_no_files(app, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault-injecting writer: the second variant write fails with ENOSPC."""
    src = photo(tmp_path / "a.jpg", (300, 200))
    from jobs.intake import submit_file

    image_id = submit_file(app.engine, app.tasks, app.settings.paths.media_dir, src).image_id
    real = media.write_temp
    calls = {"n": 0}

    def flaky(path: Path, data: bytes, token: str | None = None) -> Path:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, token)

    monkeypatch.setattr(media, "write_temp", flaky)
    ctx = app._context
    assert image_job.process_image(ctx, image_id) == "waiting"
    row = images.get(app.engine, image_id)
    assert row.status == "pending" and row.attempts == 0  # no attempt spent
    assert "No space left on device" in row.error
    vdir = media.variant_dir(app.settings.paths.media_dir, image_id)
    assert not list(vdir.glob("*")) if vdir.exists() else True
    monkeypatch.setattr(media, "write_temp", real)
    assert image_job.process_image(ctx, image_id) == "completed"


def test_variant_files_follow_the_umask(app, tmp_path: Path) -> None:
    from jobs.intake import submit_file

    old = os.umask(0o022)
    try:
        image_id = submit_file(app.engine, app.tasks, app.settings.paths.media_dir,
                               photo(tmp_path / "a.jpg", (200, 100))).image_id
        assert image_job.process_image(app._context, image_id) == "completed"
    finally:
        os.umask(old)
    files = list(media.variant_dir(app.settings.paths.media_dir, image_id).iterdir())
    assert files and all(f.stat().st_mode & 0o777 == 0o644 for f in files), \
        [(f.name, oct(f.stat().st_mode)) for f in files]


def test_a_stale_attempt_moves_nothing_into_place(app, tmp_path: Path) -> None:
    """An attempt whose lease was taken over renames nothing and removes its temporary files."""
    from jobs.intake import submit_file

    media_dir = app.settings.paths.media_dir
    image_id = submit_file(app.engine, app.tasks, media_dir, photo(tmp_path / "a.jpg", (200, 100))).image_id
    stale = images.claim(app.engine, image_id, "stale-worker/1", lease_s=0.01)
    assert stale is not None
    attempt = image_job.Attempt(media_dir)
    final = media_dir / media.variant_relpath(image_id, 64, "webp")
    attempt.write(final, b"stale bytes")
    time.sleep(0.1)  # the stale lease expires
    ctx = app._context
    assert image_job.process_image(ctx, image_id) == "completed"  # another worker took it over
    good = final.read_bytes()
    ok = images.complete(app.engine, image_id, "stale-worker/1", {}, [], before_commit=attempt.move_into_place)
    assert ok is False
    attempt.discard()
    assert final.read_bytes() == good
    assert not list(final.parent.glob(".tmp-*"))

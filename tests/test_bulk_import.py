"""The bulk intake (jobs/bulk.py): one pass over each file's bytes, one transaction per batch of rows."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text

from db import images
from jobs import bulk
from jobs.imaging.types import Limits
from tests.imagefiles import photo
from worker.app import App


def media_files(app: App) -> list[Path]:
    return sorted(p for p in app.settings.paths.media_dir.rglob("*") if p.is_file())


def commits(app: App) -> list[int]:
    seen: list[int] = []
    event.listen(app.engine, "commit", lambda _conn: seen.append(1))
    return seen


@pytest.mark.parametrize("in_memory_max", [bulk.IN_MEMORY_MAX, 0], ids=["buffered", "streamed"])
def test_import_stores_each_file_once_and_records_the_batch_in_one_transaction(
        app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_memory_max: int) -> None:
    monkeypatch.setattr(bulk, "IN_MEMORY_MAX", in_memory_max)  # 0: every file takes the streamed copy
    monkeypatch.setattr(bulk, "BATCH_WAIT_S", 600.0)  # a loaded machine must not split the batch
    src = tmp_path / "src"
    files = [photo(src / f"p{i}.jpg", (320 + 16 * i, 240), color=(20 * i, 80, 40)) for i in range(6)]
    files.append(photo(src / "p.png", (300, 200), fmt="PNG"))
    files.append(photo(src / "p.webp", (300, 200), fmt="WEBP"))
    (src / "again.jpg").write_bytes(files[0].read_bytes())  # a duplicate within the run
    files.append(src / "again.jpg")
    first = bulk.import_files(app.engine, app.tasks, app.settings.paths.media_dir, files[:1])
    assert len(first.created) == 1
    (src / "older.jpg").write_bytes(files[1].read_bytes())
    files[1] = src / "older.jpg"
    before = len(media_files(app))
    done: list[Path] = []
    n_commits = commits(app)
    report = bulk.import_files(app.engine, app.tasks, app.settings.paths.media_dir, files[1:],
                               on_file=done.append, lane_by=(Limits(), 70_000))
    assert done == files[1:]  # progress after every file
    assert [d.path.name for d in report.duplicates] == ["again.jpg"]  # files[0] is in the database already
    assert report.duplicates[0].duplicate_of == first.created[0][1]
    assert len(report.created) == 7 and not report.failed and not report.unqueued
    # The run's first file at once (its row, then its enqueued mark), the other 6 rows in one transaction.
    assert len(n_commits) == 4, "the first row, then the rest in one transaction, each then marked enqueued"
    assert len(media_files(app)) == before + 7  # the duplicate was not kept; no temporary file is left
    lanes = {}
    for path, image_id in report.created:
        row = images.get(app.engine, image_id)
        assert row is not None and row.status == "pending" and row.enqueued_at is not None
        stored = app.settings.paths.media_dir / row.original_path
        assert stored.read_bytes() == path.read_bytes()
        assert row.hash == hashlib.sha256(path.read_bytes()).hexdigest() and row.size == path.stat().st_size
        lanes[path.name] = row.lane
    # 70,000 px is the large-lane threshold here: from the header (JPEG, PNG) or Pillow (WebP)
    assert lanes == {"older.jpg": "large", "p2.jpg": "large", "p3.jpg": "large", "p4.jpg": "large",
                     "p5.jpg": "large", "p.png": "default", "p.webp": "default"}
    assert app.huey.pending_count() == 8


def test_rows_of_a_slow_run_are_recorded_as_it_goes(app: App, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker can start on the first images while the rest are still being read (slow disk, big files)."""
    monkeypatch.setattr(bulk, "BATCH_WAIT_S", 0.05)
    files = [photo(tmp_path / f"p{i}.jpg", (200, 150), color=(30 * i, 80, 40)) for i in range(5)]
    recorded: list[int] = []

    def slowly() -> Iterator[Path]:
        for i, path in enumerate(files):
            yield path
            if i >= 1:
                time.sleep(0.1)  # longer than BATCH_WAIT_S: the file before is recorded before the next is read

    n_commits = commits(app)
    report = bulk.import_files(app.engine, app.tasks, app.settings.paths.media_dir, slowly(),
                               on_file=lambda _p: recorded.append(images.counts(app.engine)["pending"]))
    assert len(report.created) == 5 and app.huey.pending_count() == 5
    # Rows recorded once each file was read: p0's at once; p1's when p2 arrives 0.1 s later (before p2 is
    # read), and so on: each file's row before the next file is read.
    assert recorded == [1, 1, 2, 3, 4]
    assert len(n_commits) == 2 * 5  # 5 batches, each its rows then its enqueued mark


def test_a_refused_batch_records_nothing_and_leaves_no_file(app: App, tmp_path: Path) -> None:
    files = [photo(tmp_path / f"p{i}.jpg", (200, 150), color=(30 * i, 80, 40)) for i in range(3)]
    with app.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON images BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    before = media_files(app)
    with pytest.raises(Exception, match="refused"):
        bulk.import_files(app.engine, app.tasks, app.settings.paths.media_dir, files)
    assert media_files(app) == before  # neither the originals nor their temporary files
    assert images.counts(app.engine)["pending"] == 0 and app.huey.pending_count() == 0


def test_an_unreadable_file_is_reported_and_the_rest_imported(app: App, tmp_path: Path) -> None:
    good = photo(tmp_path / "good.jpg", (200, 150))
    report = bulk.import_files(app.engine, app.tasks, app.settings.paths.media_dir,
                               [tmp_path / "gone.jpg", good])
    assert [p.name for p, _ in report.failed] == ["gone.jpg"] and "FileNotFoundError" in report.failed[0][1]
    assert [p.name for p, _ in report.created] == ["good.jpg"]
    assert len(media_files(app)) == 1

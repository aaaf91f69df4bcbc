"""WAL checkpoints, online backups with retention, and integrity checks on real files."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from db.engine import write_session
from db.maintenance.backup import backup, backup_to, backups_in
from db.maintenance.check import check
from db.maintenance.checkpoint import checkpoint, checkpoint_file, checkpoint_on_shutdown
from db.maintenance.errors import DutyFailed, MaintenanceError
from db.maintenance.files import wal_bytes

MIB = 1024 * 1024


def fill(engine: Engine, rows: int, size: int = 1_000) -> None:
    with write_session(engine) as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, data BLOB)"))
        s.execute(text("INSERT INTO blobs (data) VALUES (randomblob(:n))"), [{"n": size}] * rows)


def test_wal_past_threshold_is_truncated_and_data_intact(engine: Engine, db_path: Path) -> None:
    fill(engine, 6_000)  # ~6 MB in one transaction: the WAL grows past 4 x 1 MiB
    before = wal_bytes(db_path)
    assert before > 4 * MIB
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*), sum(length(data)) FROM blobs")).one()

    figures = checkpoint(engine, threshold_bytes=1 * MIB, truncate_factor=4)

    db = figures["database"]
    assert db["mode"] == "TRUNCATE" and db["wal_bytes_before"] == before
    assert db["wal_bytes_after"] == 0 == wal_bytes(db_path)
    assert not db["blocked"] and "warnings" not in figures
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), sum(length(data)) FROM blobs")).one() == total
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_between_thresholds_is_passive_and_small_is_left_alone(engine: Engine, db_path: Path) -> None:
    fill(engine, 1_500)
    size = wal_bytes(db_path)
    assert checkpoint_file(db_path, threshold_bytes=size * 10).mode == "none"
    result = checkpoint_file(db_path, threshold_bytes=size // 2, truncate_factor=4)
    assert result.mode == "PASSIVE" and result.checkpointed_frames == result.log_frames > 0
    assert wal_bytes(db_path) == size  # PASSIVE copies frames back but never shrinks the file


def test_a_reader_blocking_the_checkpoint_is_a_warning(engine: Engine, db_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    fill(engine, 100)
    reader = sqlite3.connect(db_path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM blobs").fetchone()  # holds a snapshot
    try:
        fill(engine, 3_000)
        figures = checkpoint(engine, threshold_bytes=MIB // 4, truncate_factor=4, busy_ms=200)
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert figures["database"]["blocked"] is True
    assert figures["database"]["wal_bytes_after"] > 0
    assert "blocked" in figures["warnings"][0]
    assert any("could not complete" in r.message and "MiB" in r.message for r in caplog.records)


def test_now_truncates_unless_a_reader_holds_old_frames(engine: Engine, db_path: Path) -> None:
    fill(engine, 200)
    result = checkpoint_file(db_path, threshold_bytes=1 << 40, force="NOW")
    assert result.mode == "TRUNCATE" and not result.blocked and wal_bytes(db_path) == 0
    reader = sqlite3.connect(db_path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM blobs").fetchone()
    try:
        fill(engine, 200)
        held = checkpoint_file(db_path, threshold_bytes=1 << 40, force="NOW", busy_ms=100)
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert held.mode == "PASSIVE" and held.blocked and wal_bytes(db_path) > 0


def test_queue_database_is_checkpointed_and_shutdown_truncates(engine: Engine, tmp_path: Path) -> None:
    from huey import SqliteHuey

    queue_db = tmp_path / "queue.db"
    huey = SqliteHuey("t", filename=str(queue_db))

    @huey.task()
    def noop(i: int) -> None: ...

    for i in range(300):
        noop(i)
    assert wal_bytes(queue_db) > 0
    figures = checkpoint_on_shutdown(engine, queue_db)
    assert figures["queue"]["mode"] == "TRUNCATE" and wal_bytes(queue_db) == 0
    assert huey.pending_count() == 300
    missing = checkpoint(engine, tmp_path / "nope.db", threshold_bytes=1)
    assert "queue database not found" in missing["queue"]["note"]
    assert not (tmp_path / "nope.db").exists()


def _writer(db: str, stop: multiprocessing.synchronize.Event) -> None:
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    n = 0
    while not stop.is_set():
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO ledger (n, pad) VALUES (?, randomblob(200))", (n,))
        conn.execute("COMMIT")
        n += 1
    conn.close()


def test_backup_under_concurrent_writes(engine: Engine, db_path: Path, tmp_path: Path) -> None:
    with write_session(engine) as s:
        s.execute(text("CREATE TABLE ledger (n INTEGER, pad BLOB)"))
    fill(engine, 3_000)
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=_writer, args=(str(db_path), stop))
    proc.start()
    try:
        deadline = time.time() + 30
        while True:  # wait until the writer is really committing
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM ledger")).scalar_one() > 50:
                    break
            assert time.time() < deadline
            time.sleep(0.02)
        with engine.connect() as conn:
            committed_before = conn.execute(text("SELECT max(n) FROM ledger")).scalar_one()
        figures = backup(engine, tmp_path / "backups", keep=3)
        with engine.connect() as conn:
            committed_after = conn.execute(text("SELECT max(n) FROM ledger")).scalar_one()
    finally:
        stop.set()
        proc.join(30)
    print(f"\nbackup: {figures['bytes']} bytes in {figures['seconds']} s while the writer went "
          f"from row {committed_before} to {committed_after}")
    assert committed_after > committed_before  # writes really ran during the backup
    copy = Path(figures["path"])
    assert figures["integrity"] == "ok" and copy.parent == tmp_path / "backups"
    assert not copy.with_name(copy.name + "-wal").exists()  # one self-contained file
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ns = [r[0] for r in conn.execute("SELECT n FROM ledger ORDER BY n")]
        assert conn.execute("SELECT count(*) FROM blobs").fetchone() == (3_000,)
    assert ns == list(range(len(ns)))  # no gaps: a consistent snapshot
    assert ns[-1] >= committed_before  # holds every row committed before it started


def test_retention_keeps_n_and_leaves_other_files_alone(engine: Engine, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "other-20200101T000000000000Z.db").write_text("another database's backup")
    made = [backup(engine, folder, keep=3)["path"] for _ in range(5)]
    names = [p.name for p in backups_in(folder, "app")]
    assert names == [Path(p).name for p in made[-3:]]
    assert (folder / "notes.txt").exists() and (folder / "other-20200101T000000000000Z.db").exists()
    assert not list(folder.glob(".tmp-*"))


def test_backup_to_path_refuses_to_overwrite(engine: Engine, tmp_path: Path) -> None:
    dest = tmp_path / "one-off.db"
    assert backup_to(engine, dest)["integrity"] == "ok"
    with pytest.raises(MaintenanceError, match="already exists"):
        backup_to(engine, dest)
    with pytest.raises(MaintenanceError, match="backup folder not found"):
        backup_to(engine, tmp_path / "no" / "such" / "dir.db")


def test_check_passes_then_reports_a_foreign_key_violation(engine: Engine, db_path: Path) -> None:
    assert check(engine)["result"] == "ok"
    assert check(engine, full=True)["kind"] == "integrity_check"
    raw = sqlite3.connect(db_path, isolation_level=None)  # foreign keys off, like a careless app
    raw.execute("INSERT INTO image_variants (id, image_id, width, format, path, size) "
                "VALUES ('v', 'no-such-image', 1, 'webp', 'x', 1)")
    raw.close()
    with pytest.raises(DutyFailed) as err:
        check(engine)
    assert err.value.figures["foreign_key_problems"] == 1
    assert err.value.figures["foreign_key_sample"][0]["parent"] == "images"


def test_corruption_is_found(tmp_path: Path) -> None:
    from db.engine import make_engine

    path = tmp_path / "bad.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.execute("CREATE INDEX ix ON t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(f"value {i}" * 20,) for i in range(2_000)])
    conn.commit()
    root = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'ix'").fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as fh:  # scribble over the index's root page
        fh.seek((root - 1) * page)
        fh.write(b"\x07" * 16)  # not a valid b-tree page type
    eng = make_engine(f"sqlite:///{path}")
    with pytest.raises((DutyFailed, MaintenanceError)):
        check(eng, full=True)
    with pytest.raises(MaintenanceError):
        backup_to(eng, tmp_path / "copy.db")  # a corrupt copy is never kept
    assert not (tmp_path / "copy.db").exists()
    eng.dispose()

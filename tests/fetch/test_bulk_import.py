"""`darkroom enqueue DIR` and `--url`: duplicates by content, re-runs, interruption."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.bulk import import_files
from jobs.intake import iter_image_files
from tests.conftest import run_cli
from tests.imagefiles import photo
from worker.app import build
from worker.settings import load

from .conftest import LocalServer, image_bytes, send


def make_tree(root: Path, distinct: int, copies: int) -> list[Path]:
    """``distinct`` different small photos, plus ``copies`` byte-identical copies in a subfolder."""
    files = [photo(root / f"p{i:03d}.jpg", (64 + i, 48), color=(i * 20 % 255, 90, 40)) for i in range(distinct)]
    for i in range(copies):
        dup = root / "again" / f"copy{i}.jpg"
        dup.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[i], dup)
    return files


def row_count(cfg: Path) -> int:
    with sqlite3.connect(cfg.parent / "data" / "app.db") as conn:
        return int(conn.execute("SELECT count(*) FROM images").fetchone()[0])


def test_bulk_import_skips_duplicates_and_a_second_run_adds_nothing(make_config: Callable[..., Path],
                                                                    tmp_path: Path) -> None:
    cfg = make_config()
    make_tree(tmp_path / "photos", distinct=12, copies=3)
    first = run_cli(cfg, "enqueue", "--json", str(tmp_path / "photos"))
    out = json.loads(first.stdout)
    assert len(out["enqueued"]) == 12 and out["failed"] == []
    assert sorted(Path(d["path"]).name for d in out["duplicates"]) == ["copy0.jpg", "copy1.jpg", "copy2.jpg"]
    id_of_content = {Path(c["path"]).read_bytes(): c["id"] for c in out["created"]}
    for d in out["duplicates"]:  # each copy points at the image made from the same bytes
        assert d["duplicate_of"] == id_of_content[Path(d["path"]).read_bytes()]
    assert "enqueueing" in first.stderr  # the progress bar (15 files)
    assert row_count(cfg) == 12

    second = run_cli(cfg, "enqueue", str(tmp_path / "photos"))
    assert "enqueued 0 image(s), skipped 15 duplicate(s)" in second.stderr
    assert second.stdout.count("duplicate  ") == 15
    assert row_count(cfg) == 12


def test_interrupted_import_rerun_creates_no_duplicates(make_config: Callable[..., Path], tmp_path: Path) -> None:
    app = build(load(make_config(), env={}))
    app.migrate()
    make_tree(tmp_path / "photos", distinct=10, copies=2)
    files = list(iter_image_files(tmp_path / "photos"))
    media_dir = app.settings.paths.media_dir
    done: list[Path] = []

    def interrupt_after_four(path: Path) -> None:
        done.append(path)
        if len(done) == 4:
            raise KeyboardInterrupt  # what Ctrl-C does to the loop

    with pytest.raises(KeyboardInterrupt):
        import_files(app.engine, app.tasks, media_dir, files, on_file=interrupt_after_four)
    rerun = import_files(app.engine, app.tasks, media_dir, files)
    assert len(rerun.duplicates) == 4 + 2  # the four already done, and the two copies
    assert len(rerun.created) == 10 - 4
    assert row_count(app.settings.config_path) == 10  # type: ignore[arg-type]
    app.close()


def test_enqueue_url_then_worker_drain_completes(make_config: Callable[..., Path], server: LocalServer) -> None:
    cfg = make_config(fetch={"allow": ["127.0.0.1/32"]})
    server.routes["/cat.jpg"] = lambda h: send(h, 200, image_bytes("JPEG", (100, 80)), "image/jpeg")
    out = json.loads(run_cli(cfg, "enqueue", "--json", "--url", server.url("/cat.jpg")).stdout)
    [image_id] = out["enqueued"]
    run_cli(cfg, "worker", "--drain")
    with sqlite3.connect(cfg.parent / "data" / "app.db") as conn:
        status, source_url, width = conn.execute(
            "SELECT status, source_url, width FROM images WHERE id = ?", (image_id,)).fetchone()
    assert (status, source_url, width) == ("completed", server.url("/cat.jpg"), 100)


def test_enqueue_url_rejects_other_schemes(make_config: Callable[..., Path]) -> None:
    proc = run_cli(make_config(), "enqueue", "--url", "file:///etc/passwd", check=False)
    assert proc.returncode == 1 and "expected an http:// or https:// URL" in proc.stderr

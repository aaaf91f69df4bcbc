"""The non-Python example: examples/enqueue.sh inserts a row with the sqlite3
CLI while a real `darkroom worker` daemon runs; the reconciler picks it up."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.daemon import launch, stop_piped
from tests.imagefiles import photo

pytestmark = [pytest.mark.acceptance,
              pytest.mark.skipif(shutil.which("sqlite3") is None, reason="needs the sqlite3 command")]

EXAMPLES = REPO / "examples"


def sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", *args], capture_output=True, text=True, timeout=60, check=False)


def test_shell_example_row_is_completed_by_a_running_worker(make_config: Callable[..., Path],
                                                            tmp_path: Path) -> None:
    cfg = make_config(jobs={"reconcile_interval_s": 1.0})
    run_cli(cfg, "migrate")
    db = cfg.parent / "data" / "app.db"
    worker = launch(cfg, "worker")
    try:
        time.sleep(0.5)  # let the daemon's start-up reconcile pass go by: the pick-up below is the periodic one
        image = photo(tmp_path / "it's here" / "upload.jpg", (300, 200))  # a quote in the path, on purpose
        added = sh(str(EXAMPLES / "enqueue.sh"), str(db), str(image), '{"from": "shell", "note": "it\'s"}')
        assert added.returncode == 0, added.stderr
        image_id = added.stdout.strip()
        assert len(image_id) == 32

        deadline = time.monotonic() + 60
        while True:
            out = sh(str(EXAMPLES / "status.sh"), str(db), image_id)
            status = out.stdout.split("\t", 1)[0]
            if status in ("completed", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        stop_piped(worker, timeout=45, must_stop=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "completed\t", out.stdout
    variants = [line.split("\t") for line in lines[1:]]
    assert {(fmt, int(w)) for fmt, w, *_ in variants} == {(f, w) for f in ("avif", "webp") for w in (64, 128, 256)}
    media = cfg.parent / "data" / "media"
    for _fmt, _w, _h, size, path in variants:
        assert (media / path).stat().st_size == int(size)
    rows = json.loads(run_cli(cfg, "status", "--json").stdout)["images"]
    assert rows["completed"] == 1
    import sqlite3

    with sqlite3.connect(db) as conn:
        meta, original = conn.execute("SELECT metadata, original_path FROM images WHERE id = ?",
                                      (image_id,)).fetchone()
    assert json.loads(meta) == {"from": "shell", "note": "it's"}
    assert original == str(image)
    assert image.exists()  # Darkroom does not own (or delete) another program's original


def test_shell_example_reports_bad_input(tmp_path: Path) -> None:
    out = sh(str(EXAMPLES / "enqueue.sh"), str(tmp_path / "none.db"), str(tmp_path / "x.jpg"))
    assert out.returncode == 1 and "no database" in out.stderr
    out = sh(str(EXAMPLES / "enqueue.sh"))
    assert out.returncode == 2 and "usage" in out.stderr

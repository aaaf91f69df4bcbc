"""Bulk import throughput: `import_files` over N small files with duplicates, then a re-run.

Usage: .venv/bin/python bench/bulk_import.py [N]   (default 2000; prints figures, asserts nothing)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from jobs.bulk import import_files
from jobs.intake import iter_image_files
from worker.app import build
from worker.settings import load


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "config.toml").write_text("")
        src = root / "photos"
        src.mkdir()
        distinct = n - n // 10
        for i in range(distinct):
            Image.new("RGB", (48, 32), (i % 256, (i // 256) % 256, 7)).save(src / f"{i:05d}.png")
        for i in range(n - distinct):  # 10 % exact duplicates
            shutil.copyfile(src / f"{i:05d}.png", src / f"dup{i:05d}.png")
        app = build(load(root / "config.toml", env={}))
        app.migrate()
        files = list(iter_image_files(src))
        t = time.perf_counter()
        first = import_files(app.engine, app.tasks, app.settings.paths.media_dir, files)
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        second = import_files(app.engine, app.tasks, app.settings.paths.media_dir, files)
        t2 = time.perf_counter() - t
        print(f"files: {len(files)} ({distinct} distinct)")
        print(f"first run : {t1:.2f} s, {len(files) / t1:.0f} files/s, created {len(first.created)}, "
              f"duplicates {len(first.duplicates)}")
        print(f"second run: {t2:.2f} s, {len(files) / t2:.0f} files/s, created {len(second.created)}, "
              f"duplicates {len(second.duplicates)}")
        app.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)

"""Rows per model in the LanceDB store, for ``status``, without importing LanceDB when nothing changed.

Opening the store means importing LanceDB and pyarrow (seconds on a cold
start), and ``status`` is a command people run often. Every commit to a
Lance table adds a manifest under ``<table>.lance/_versions/``, so the
names of those files say whether a table changed. The counts read the last
time are kept in a small file (``<data_dir>/vector-counts.json``) with
those names; while the names are the same the counts are too, and the store
is not opened. Any write, delete, compaction or cleanup (from any host) adds
or removes a manifest, and the next ``status`` reads the store again.

The cache is kept only when the names were the same before and after the
read, so a count taken while another process wrote is never kept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_NAME = "vector-counts.json"


def fingerprint(directory: Path) -> dict[str, list[str]]:
    """Each table directory under ``directory``, with the sorted names in its ``_versions``."""
    out: dict[str, list[str]] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(".lance") and entry.is_dir():
                try:
                    out[entry.name] = sorted(os.listdir(Path(entry.path) / "_versions"))
                except OSError:  # a table being created or dropped: nothing to trust
                    out[entry.name] = ["?"]
    return out


def cached_rows(directory: Path, cache_file: Path,
                read: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
    """What ``read()`` (which opens the store) says, or the same answer from ``cache_file`` when
    no table changed since it was kept. None when there is no store at ``directory``."""
    if not directory.is_dir():
        return None
    before = fingerprint(directory)
    kept = _load(cache_file)
    if kept is not None and kept.get("path") == str(directory) and kept.get("fingerprint") == before:
        report = kept.get("report")
        if isinstance(report, dict):
            return report
    report = read()
    if report is not None and report.get("error") is None and fingerprint(directory) == before:
        _save(cache_file, {"path": str(directory), "fingerprint": before, "report": report})
    return report


def _load(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _save(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(value))
        os.replace(tmp, path)
    except OSError:  # a read-only data dir: status still works, it just reads the store each time
        tmp.unlink(missing_ok=True)

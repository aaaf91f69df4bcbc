"""Fixtures: a real, migrated SQLite database file per test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from db.engine import make_engine, write_session
from db.models import Image
from tests.conftest import copy_migrated_sqlite


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "app.db"


@pytest.fixture
def engine(db_path: Path, migrated_sqlite_template: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{copy_migrated_sqlite(migrated_sqlite_template, db_path)}")
    yield eng
    eng.dispose()


def _add_images(engine: Engine, count: int, *, age_s: float, status: str = "completed",
               prefix: str = "img", owns_original: bool = False, original: str | None = None) -> list[str]:
    """Insert ``count`` image rows created ``age_s`` seconds ago; their ids."""
    created = int(time.time() - age_s)
    ids = [f"{prefix}-{i:06d}" for i in range(count)]
    rows = [{"id": i, "filename": f"{i}.jpg", "original_path": original or f"originals/{i}.jpg",
             "mime_type": "image/jpeg", "size": 1, "status": status, "created_at": created,
             "owns_original": owns_original} for i in ids]
    with write_session(engine) as s:
        s.execute(insert(Image), rows)
    return ids


AddImages = Callable[..., list[str]]


@pytest.fixture
def add_images() -> AddImages:
    """``add_images(engine, count, age_s=..., status=..., prefix=..., owns_original=...)``."""
    return _add_images

"""Fixtures for the embedding tests: real images on disk, real LanceDB dirs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from embed_photos import write_corpus  # noqa: E402

from jobs.vectors import VectorStore  # noqa: E402


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """60 small generated photos, shared by the session (read-only)."""
    return write_corpus(tmp_path_factory.mktemp("corpus"), 60, size=(192, 144))


@pytest.fixture
def store(tmp_path: Path) -> VectorStore:
    return VectorStore(tmp_path / "lancedb", read_consistency_s=0.0)

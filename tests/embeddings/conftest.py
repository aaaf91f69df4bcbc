"""Fixtures for the embedding tests: real images on disk, real LanceDB dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.embeddings.store import VectorStore
from tests.embeddings.embed_photos import write_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """60 small generated photos, shared by the session (read-only)."""
    return write_corpus(tmp_path_factory.mktemp("corpus"), 60, size=(192, 144))


@pytest.fixture
def store(tmp_path: Path) -> VectorStore:
    return VectorStore(tmp_path / "lancedb", read_consistency_s=0.0)

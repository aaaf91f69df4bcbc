"""The generated case set, written once per test session into a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.imaging import EncoderSpec, Recipe
from tests.imaging.cases import write_hostile, write_legit

SMALL_RECIPE = Recipe(widths=(48, 96), encoders=(EncoderSpec("webp", 85, 4), EncoderSpec("avif", 70, 9)))


@pytest.fixture(scope="session")
def legit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_legit(tmp_path_factory.mktemp("legit"))


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory, legit: dict[str, Path]) -> dict[str, Path]:
    return write_hostile(tmp_path_factory.mktemp("hostile"), legit["orient_1.jpg"].read_bytes())


@pytest.fixture
def recipe() -> Recipe:
    return SMALL_RECIPE

"""An installation with three recipes besides ``default``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from worker.app import App, build
from worker.settings import load

RECIPES: dict[str, dict[str, Any]] = {
    "recipes.avatar": {"widths": [32, 64], "aspect": "1:1", "fit": "cover", "gravity": "attention",
                       "formats": ["webp"]},
    "recipes.banner": {"widths": [96, 160], "aspect": "16:9", "fit": "cover", "formats": ["webp"]},
    "recipes.product": {"widths": [80], "aspect": "1:1", "fit": "contain", "background": "#ffffff",
                        "formats": ["webp"]},
}


@pytest.fixture
def recipes_config(make_config: Callable[..., Path]) -> Path:
    return make_config(**RECIPES)


@pytest.fixture
def recipes_app(recipes_config: Path) -> Iterator[App]:
    application = build(load(recipes_config, env={}))
    application.migrate()
    yield application
    application.close()

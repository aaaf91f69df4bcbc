"""Counts per recipe in ``status --json``, the text report and the status page (rows by plain SQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import write_session
from tests.conftest import run_cli
from tests.ops.conftest import serving
from tests.ops.test_status_page import CHROMEDRIVER, CHROMIUM, _chrome
from worker.app import App

ROWS = [  # (recipe, status): NULL is the default recipe
    (None, "completed"), (None, "failed"), ("default", "pending"),
    ("avatar", "completed"), ("avatar", "completed"), ("avatar", None), ("banner", "processing"),
]


def insert_rows(app: App) -> None:
    with write_session(app.engine) as s:
        for i, (recipe, status) in enumerate(ROWS):
            s.execute(text("INSERT INTO images (id, filename, original_path, mime_type, size, status, recipe) "
                           "VALUES (:id, :f, :p, 'image/jpeg', 1, :status, :recipe)"),
                      {"id": f"r{i}", "f": f"f{i}.jpg", "p": f"originals/r{i}.jpg", "status": status,
                       "recipe": recipe})


EXPECTED = {
    "default": {"pending": 1, "processing": 0, "completed": 1, "failed": 1},
    "avatar": {"pending": 1, "processing": 0, "completed": 2, "failed": 0},
    "banner": {"pending": 0, "processing": 1, "completed": 0, "failed": 0},
}


def test_status_json_and_text_count_per_recipe(app: App, config_path: Path) -> None:
    insert_rows(app)
    report = json.loads(run_cli(config_path, "status", "--json").stdout)
    assert report["recipes"] == EXPECTED
    assert list(report["recipes"]) == ["default", "avatar", "banner"]  # default first, then by name
    assert report["images"] == {"pending": 2, "processing": 1, "completed": 3, "failed": 1}  # unchanged key
    out = run_cli(config_path, "status").stdout
    assert "recipe avatar: pending 1  processing 0  completed 2  failed 0" in out
    assert "recipe default: pending 1  processing 0  completed 1  failed 1" in out


def test_empty_installation_reports_the_default_recipe(app: App, config_path: Path) -> None:
    report = json.loads(run_cli(config_path, "status", "--json").stdout)
    assert report["recipes"] == {"default": {"pending": 0, "processing": 0, "completed": 0, "failed": 0}}


@pytest.mark.acceptance
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no Chromium + chromedriver found")
def test_status_page_shows_the_per_recipe_table(app: App, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    insert_rows(app)
    with serving(app) as srv:
        driver = _chrome(tmp_path)
        try:
            driver.set_page_load_timeout(30)
            driver.get(srv.url)
            rows = driver.find_elements(By.CSS_SELECTOR, "#recipes tbody tr")
            cells = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows]
            assert cells == [[name, *(str(c[k]) for k in ("pending", "processing", "completed", "failed"))]
                             for name, c in EXPECTED.items()]
        finally:
            driver.quit()

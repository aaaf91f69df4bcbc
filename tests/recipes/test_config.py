"""[recipes.NAME] tables: inheritance from [variants], and bad recipes stopping the program at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, write_config
from worker.app import recipes_from
from worker.settings import ConfigError, load


def config(tmp_path: Path, **sections: Any) -> Path:
    return write_config(tmp_path / "config.toml", dict(sections))


def test_recipes_inherit_what_they_leave_out_from_variants(tmp_path: Path) -> None:
    path = config(tmp_path, variants={"widths": [320, 640], "formats": ["webp"], "webp": {"quality": 70}},
                  **{"recipes.avatar": {"widths": [64, 128, 256], "aspect": "1:1", "fit": "cover",
                                        "gravity": "attention", "webp": {"effort": 2}},
                     "recipes.banner": {"aspect": "16:9", "fit": "cover"}})
    book = recipes_from(load(path, env={}))
    assert sorted(book) == ["avatar", "banner", "default"]
    avatar, banner, default = book["avatar"], book["banner"], book["default"]
    assert avatar.widths == (64, 128, 256) and avatar.aspect == (1, 1) and avatar.gravity == "attention"
    assert [(e.format, e.quality, e.effort) for e in avatar.encoders] == [("webp", 70, 2)]
    assert banner.widths == (320, 640) and banner.fit == "cover" and banner.aspect == (16, 9)
    assert default.fit == "limit" and default.widths == (320, 640)
    assert len({r.fingerprint() for r in book.values()}) == 3


def test_a_recipe_key_from_the_environment(tmp_path: Path) -> None:
    path = config(tmp_path, **{"recipes.avatar": {"aspect": "1:1", "fit": "cover"}})
    s = load(path, env={"DARKROOM_RECIPES__AVATAR__WIDTHS": "48,96"})
    assert s.recipes["avatar"].widths == (48, 96)


def test_the_default_recipe_keeps_its_old_fingerprint() -> None:
    # A plain limit recipe hashes as before recipes had a fit: an upgrade makes nothing stale.
    from jobs.imaging import EncoderSpec, Recipe

    r = Recipe(widths=(320, 640), encoders=(EncoderSpec("webp", 80, 4),))
    import hashlib
    import json

    old = {"widths": [320, 640], "encoders": [{"format": "webp", "quality": 80, "effort": 4}],
           "keep_gps": False, "animated_webp": False}
    assert r.fingerprint() == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]


BAD = [
    ({"fit": "crop", "aspect": "1:1"}, "recipes.avatar.fit", "crop", "one of limit, cover, contain"),
    ({"fit": "cover", "aspect": "1:1", "gravity": "top"}, "recipes.avatar.gravity", "top", "one of centre"),
    ({"fit": "cover", "aspect": "1x1"}, "recipes.avatar.aspect", "1x1", '"W:H"'),
    ({"fit": "cover", "aspect": "0:1"}, "recipes.avatar.aspect", "0:1", '"W:H"'),
    ({"fit": "cover"}, "recipes.avatar.aspect", "", '"W:H"'),
    ({"aspect": "1:1"}, "recipes.avatar.aspect", "1:1", "no aspect with fit"),
    ({"fit": "cover", "aspect": "1:1", "widths": []}, "recipes.avatar.widths", (), "non-empty list"),
    ({"fit": "cover", "aspect": "1:1", "crop": "x"}, "recipes.avatar.crop", "x", "one of the known keys"),
    ({"fit": "contain", "aspect": "1:1", "background": "white"}, "recipes.avatar.background", "white",
     '"#rrggbb" or "transparent"'),
    ({"fit": "cover", "aspect": "1:1", "formats": ["jpeg"]}, "recipes.avatar.formats", ("jpeg",), "'webp'"),
]


@pytest.mark.parametrize(("table", "key", "value", "expected"), BAD)
def test_a_bad_recipe_names_the_key_the_value_and_what_was_expected(tmp_path: Path, table: dict[str, object],
                                                                    key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(config(tmp_path, **{"recipes.avatar": table}), env={})
    assert caught.value.key == key
    assert caught.value.value == value
    assert expected in caught.value.expected


def test_recipe_names_default_and_odd_ones_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recipes.default"):
        load(config(tmp_path, **{"recipes.default": {"widths": [10]}}), env={})
    path = tmp_path / "odd.toml"
    path.write_text('[recipes."a b"]\nwidths = [10]\n')
    with pytest.raises(ConfigError, match="letters, digits"):
        load(path, env={})


def test_the_program_stops_at_start_on_a_bad_recipe(tmp_path: Path) -> None:
    path = config(tmp_path, **{"recipes.avatar": {"fit": "cover", "aspect": "1:1", "gravity": "top"}})
    proc = run_cli(path, "status", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "recipes.avatar.gravity" in lines[0] and "'top'" in lines[0]
    assert "Traceback" not in proc.stderr


def test_the_default_name_is_the_same_on_both_sides_of_the_import_rule() -> None:
    from db.images import DEFAULT_RECIPE
    from jobs.imaging.recipes import DEFAULT

    assert DEFAULT == DEFAULT_RECIPE == "default"

"""Unit tests: width planning, media naming, atomic writes, settings validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.ids import uuid7
from jobs import media
from jobs.imaging import plan_widths
from worker.settings import ConfigError, load


@pytest.mark.parametrize(("source", "widths", "expected"), [
    (2000, [320, 640, 1280, 1920], [320, 640, 1280, 1920]),
    (1000, [320, 640, 1280, 1920], [320, 640]),
    (640, [640, 320], [320, 640]),
    (200, [320, 640], [200]),  # smaller than every width: one variant at its own size
    (1, [320], [1]),
])
def test_plan_widths_never_upscales_and_never_empty(source: int, widths: list[int], expected: list[int]) -> None:
    planned = plan_widths(source, widths)
    assert planned == expected
    assert planned and max(planned) <= source


def test_variant_paths_use_ids_only() -> None:
    image_id = uuid7()
    assert media.variant_relpath(image_id, 640, "webp") == f"variants/{image_id[-2:]}/{image_id}/640.webp"
    assert media.original_relpath(image_id, ".JPG").endswith(f"{image_id}.jpg")
    assert media.original_relpath(image_id, ".x/../../etc").endswith(f"{image_id}.bin")
    with pytest.raises(ValueError):
        media.variant_relpath("../../etc/passwd", 640, "webp")


def test_uuid7_is_time_ordered_and_versioned() -> None:
    ids = [uuid7() for _ in range(50)]
    assert all(i[14] == "7" for i in ids)
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)
    assert len(set(ids)) == 50


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "640.webp"
    media.atomic_write(target, b"first")
    media.atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["640.webp"]


def test_atomic_write_failure_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "dir-not-file"
    target.mkdir()
    (target / "x").write_text("keeps the directory non-empty")
    with pytest.raises(OSError):
        media.atomic_write(target, b"data")  # cannot replace a directory
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(media.TMP_PREFIX)]


def test_settings_defaults_resolve_against_config_dir(tmp_path: Path) -> None:
    cfg = tmp_path / "inst" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text('[paths]\nmedia_dir = "m"\n')
    s = load(cfg, env={})
    assert s.paths.media_dir == cfg.parent.resolve() / "m"
    assert s.database.url == f"sqlite:///{cfg.parent.resolve() / 'data' / 'app.db'}"


@pytest.mark.parametrize(("text", "env", "key"), [
    ("[queue]\nworkers = 0\n", {}, "queue.workers"),
    ("[queue]\nworkers = 'two'\n", {}, "queue.workers"),
    ("[variants]\nformats = ['png']\n", {}, "variants.formats"),
    ("[variants]\navif = { quality = 101, effort = 8 }\n", {}, "variants.avif.quality"),
    ("[limits]\nmax_pixels = -5\n", {}, "limits.max_pixels"),
    ("[queue]\nurl = 'amqp://x'\n", {}, "queue.url"),
    ("[queue]\nwrokers = 2\n", {}, "queue.wrokers"),
    ("", {"DARKROOM_JOBS__MAX_ATTEMPTS": "many"}, "jobs.max_attempts"),
])
def test_settings_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str], key: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(cfg, env=env)
    assert info.value.key == key
    assert key in str(info.value) and "expected" in str(info.value)


def test_environment_overrides_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[queue]\nworkers = 2\n")
    s = load(cfg, env={"DARKROOM_QUEUE__WORKERS": "5", "DARKROOM_VARIANTS__WIDTHS": "100,200"})
    assert s.queue.workers == 5
    assert s.variants.widths == (100, 200)


def test_one_reading_of_a_sqlite_url_drops_the_query(tmp_path: Path) -> None:
    from db.engine import sqlite_file
    from jobs.queue import sqlite_queue_path
    from worker.status.figures import queue_storage

    url = f"sqlite:///{tmp_path}/queue.db?timeout=5"
    assert sqlite_file(url) == sqlite_queue_path(url) == tmp_path / "queue.db"  # the queue once kept "?timeout=5"
    (tmp_path / "queue.db").write_bytes(b"x" * 4096)
    assert queue_storage(url)["db_bytes"] == 4096
    assert sqlite_file("sqlite:///:memory:") is None and sqlite_file("postgresql://db/app") is None
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite:///data/app.db?timeout=5"\n')
    assert load(cfg, env={}).database.url == f"sqlite:///{tmp_path}/data/app.db?timeout=5"  # absolute, query kept

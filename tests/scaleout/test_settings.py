"""Scale-out settings: URLs and queue names that work on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.queue import QueueConfig, make_huey
from worker.settings import ConfigError, load


def test_queue_name_that_redis_would_mangle_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[queue]\nurl = "redis://127.0.0.1:6379/0"\nname = "dark-room"\n')
    with pytest.raises(ConfigError) as info:
        load(cfg, env={})
    assert info.value.key == "queue.name" and "letters, digits and _" in str(info.value)


def test_postgres_and_redis_urls_load_unchanged_from_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("")
    pg = "postgresql+psycopg://darkroom@db.internal:5432/darkroom?options=-csearch_path%3Dapp"
    settings = load(cfg, env={"DARKROOM_DATABASE__URL": pg,
                              "DARKROOM_QUEUE__URL": "redis://queue.internal:6379/2"})
    assert settings.database.url == pg  # not resolved against the config dir like a SQLite path
    assert settings.queue.url == "redis://queue.internal:6379/2"


def test_redis_url_selects_the_priority_redis_storage_with_expiring_results() -> None:
    # Building the instance opens no connection (redis-py connects lazily).
    huey = make_huey(QueueConfig(url="redis://127.0.0.1:6379/0", name="dr_unit"))
    storage = huey.storage
    assert type(storage).__name__ == "PriorityRedisExpireStorage"
    assert storage.priority and storage.blocking  # BZPOPMIN: no polling delay
    assert storage.queue_key == "huey.redis.dr_unit"
    assert huey.results is False

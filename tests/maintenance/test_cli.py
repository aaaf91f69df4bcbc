"""``darkroom maintenance``, the [maintenance] settings, periodic tasks and start-up checks."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from db.maintenance.runs import last_runs
from jobs.huey_private import periodic_tasks
from jobs.maintenance import duties
from jobs.maintenance.settings import default_ttl
from tests.conftest import run_cli
from worker.app import App
from worker.cli import main
from worker.settings import ConfigError, load

COMMANDS = [["sweep"], ["optimize"], ["checkpoint"], ["backup"], ["backup", "--to", "{dir}/one-off.db"],
            ["check"], ["check", "--full"], ["runs"]]


def invoke(config: Path, *args: str) -> Result:
    args = tuple(a.replace("{dir}", str(config.parent)) for a in args)
    return CliRunner().invoke(main, ["--config", str(config), "maintenance", *args], catch_exceptions=False)


def text_of(result: Result) -> str:
    return result.output + (getattr(result, "stderr", "") or "")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_missing_database_is_an_error_and_is_not_created(config_path: Path, args: list[str]) -> None:
    result = invoke(config_path, *args)
    db = config_path.parent / "data" / "app.db"
    assert result.exit_code == 1
    assert f"database not found: {db}" in text_of(result)
    assert not db.exists()


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_unreadable_or_foreign_database_is_an_error(config_path: Path, args: list[str]) -> None:
    db = config_path.parent / "data" / "app.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not an SQLite file" * 100)
    result = invoke(config_path, *args)
    assert result.exit_code == 1 and "not a readable SQLite database" in text_of(result)
    db.unlink()
    with sqlite3.connect(db) as conn:  # an SQLite file, but not a migrated Darkroom database
        conn.execute("CREATE TABLE theirs (x)")
    result = invoke(config_path, *args)
    assert result.exit_code == 1 and "run `darkroom migrate`" in text_of(result)


def test_every_command_runs_and_is_recorded(app: App, config_path: Path) -> None:
    for args in COMMANDS[:-1]:
        result = invoke(config_path, *args)
        assert result.exit_code == 0, text_of(result)
        assert f"{args[0]}: ok" in result.output
    assert (config_path.parent / "one-off.db").exists()
    assert len(list((config_path.parent / "data" / "backups").glob("app-*.db"))) == 1
    shown = json.loads(invoke(config_path, "runs", "--json").output)
    assert sorted(r["name"] for r in shown) == sorted(duties.DUTIES)
    assert all(r["outcome"] == "ok" for r in shown)
    result = invoke(config_path, "backup", "--to", str(config_path.parent / "no" / "dir.db"))
    assert result.exit_code == 1 and "backup folder not found" in text_of(result)
    result = invoke(config_path, "backup", "--to", "{dir}/one-off.db")
    assert result.exit_code == 1 and "already exists" in text_of(result)


def test_checkpoint_by_hand_checkpoints_under_the_threshold(app: App, config_path: Path) -> None:
    from sqlalchemy import text

    from db.engine import write_session
    from db.maintenance.files import wal_bytes

    db = config_path.parent / "data" / "app.db"
    with write_session(app.engine) as s:
        s.execute(text("CREATE TABLE blobs (data BLOB)"))
        s.execute(text("INSERT INTO blobs VALUES (randomblob(1000))"), [{}] * 50)
    assert 0 < wal_bytes(db) < app.settings.maintenance.wal_threshold_mib * 2**20
    result = invoke(config_path, "checkpoint", "--json")
    assert result.exit_code == 0, text_of(result)
    figures = json.loads(result.stdout)["figures"]
    assert figures["database"]["mode"] == "TRUNCATE", figures
    assert figures["database"]["wal_bytes_after"] == 0  # (the run's own record is written after it)
    # The schedule keeps its threshold: under it, a scheduled run leaves the file alone.
    with write_session(app.engine) as s:
        s.execute(text("INSERT INTO blobs VALUES (randomblob(1000))"), [{}] * 50)
    scheduled = duties.run("checkpoint", app.engine, app.duty_env)
    assert scheduled.figures["database"]["mode"] == "none"


def test_every_maintenance_command_has_help_with_an_example() -> None:
    group = main.get_command(click.Context(main), "maintenance")  # loaded on first use (worker/cli.py)
    assert group is not None and group.commands  # type: ignore[attr-defined]
    for name in ["", *group.commands]:  # type: ignore[attr-defined]
        result = CliRunner().invoke(main, ["maintenance", *([name] if name else []), "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, name


BAD_RULE = """
[[maintenance.ttl]]
name = "failed images"
table = "images; DROP TABLE images"
column = "created_at"
max_age_s = 2592000
"""


def test_a_bad_ttl_rule_stops_worker_start_with_the_rule_named(make_config: Callable[..., Path]) -> None:
    config = make_config()
    config.write_text(config.read_text() + BAD_RULE)
    proc = run_cli(config, "worker", "--drain", check=False, timeout=60)
    assert proc.returncode == 1
    assert "TTL rule 'failed images'" in proc.stderr and "is not a plain identifier" in proc.stderr
    assert "Traceback" not in proc.stderr
    with sqlite3.connect(config.parent / "data" / "app.db") as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'images'").fetchone() == (1,)


def test_ttl_from_the_environment_in_comma_form_is_refused(config_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(config_path, env={"DARKROOM_MAINTENANCE__TTL": "images,created_at"})
    assert caught.value.key == "maintenance.ttl" and caught.value.value == "images,created_at"
    assert "JSON list" in caught.value.expected
    rules = load(config_path, env={"DARKROOM_MAINTENANCE__TTL": '[{"table": "images", "column": "created_at", '
                                                               '"max_age_s": 60}]'}).maintenance.ttl
    assert [(r.table, r.column, r.max_age_s) for r in rules] == [("images", "created_at", 60.0)]


def test_settings_section(make_config: Callable[..., Path]) -> None:
    config = make_config(maintenance={"backup_keep": 3, "backup_dir": "snapshots", "sweep_cron": "*/10 * * * *"})
    config.write_text(config.read_text() + """
[[maintenance.ttl]]
table = "images"
column = "created_at"
max_age_s = 2592000
where = { status = "failed" }

[[maintenance.ttl]]
table = "sessions"
column = "expires_at"
max_age_s = 0
format = "iso"
""")
    s = load(config, env={}).maintenance
    assert s.backup_keep == 3 and s.backup_dir == config.parent / "snapshots"
    assert [r.table for r in s.ttl] == ["images", "sessions"] and s.ttl[0].where == {"status": "failed"}
    assert load(make_config(), env={}).maintenance.ttl == default_ttl()
    with pytest.raises(ConfigError, match="maintenance.check_cron"):
        load(make_config(maintenance={"check_cron": "every day"}), env={})
    with pytest.raises(ConfigError, match="maintenance.backup_keep"):
        load(make_config(maintenance={"backup_keep": 0}), env={})


def test_periodic_tasks_run_and_missed_duties_are_caught_up_once(app: App) -> None:
    names = {t.__name__ for t in periodic_tasks(app.huey)}
    assert {f"maintenance.{d}" for d in duties.DUTIES} <= names
    assert sorted(duties.catch_up(app.engine, app.duty_env, app.duties)) == sorted(duties.DUTIES)
    assert app.huey.pending_count() == len(duties.DUTIES)
    while (task := app.huey.dequeue()) is not None:  # what a worker does
        app.huey.execute(task)
    assert sorted(r["name"] for r in last_runs(app.engine)) == sorted(duties.DUTIES)
    assert duties.catch_up(app.engine, app.duty_env, app.duties) == []  # nothing missed now
    assert app.huey.pending_count() == 0
    # The same crontab firing on a second consumer within the period is a no-op.
    app.huey.execute(app.duties["check"].s())
    assert len([r for r in last_runs(app.engine) if r["name"] == "check"]) == 1


def test_cron_gaps() -> None:
    assert duties.cron_gaps("*/5 * * * *") == (300.0, 300.0)
    assert duties.cron_gaps("0 9 * * 1-5") == (86_400.0, 3 * 86_400.0)
    with pytest.raises(ValueError):
        duties.parse_cron("61 * * * *")

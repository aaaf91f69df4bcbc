"""One error tree, translated once by the CLI: unknown ids, a busy database, every project error."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db import images
from db.engine import SqliteTuning, make_engine
from db.errors import (
    BackendUnreachable,
    DarkroomError,
    DatabaseBusy,
    DatabaseUnreachable,
    PermanentError,
    RetryableError,
    UnknownImages,
)
from db.maintenance.errors import MaintenanceError
from jobs.embeddings.search import SearchError
from jobs.embeddings.similarity import SimilarityError
from jobs.embeddings.store import VectorsRefused, VectorStoreError
from jobs.errors import MissingOriginal, StorageUnavailable
from jobs.queue import QueueUnreachable
from tests import backends
from tests.conftest import run_cli
from worker.api import Darkroom, ImageExists, ImageNotFound, retry_busy
from worker.app import App
from worker.cli import main
from worker.settings import ConfigError


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def test_the_tree_has_one_root_and_two_branches() -> None:
    retryable: list[type] = [BackendUnreachable, DatabaseUnreachable, QueueUnreachable, DatabaseBusy,
                             StorageUnavailable, VectorStoreError]
    permanent: list[type] = [UnknownImages, MaintenanceError, MissingOriginal, VectorsRefused, SimilarityError,
                             SearchError, ConfigError, ImageNotFound, ImageExists]
    assert all(issubclass(cls, RetryableError) for cls in retryable)
    assert all(issubclass(cls, PermanentError) for cls in permanent)
    assert issubclass(RetryableError, DarkroomError) and issubclass(PermanentError, DarkroomError)
    assert issubclass(ImageNotFound, LookupError) and issubclass(SearchError, ValueError)  # old contracts kept


@pytest.mark.parametrize("command", [["retry"], ["reprocess"], ["similar"]])
def test_an_unknown_id_is_one_line_and_exit_1(app: App, config_path: Path, command: list[str]) -> None:
    result = invoke(config_path, *command, "no-such-id")
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("darkroom: ") and "no-such-id" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_retry_of_known_and_unknown_ids_names_the_unknown_and_changes_nothing(app: App, config_path: Path
                                                                             ) -> None:
    images.insert_image(app.engine, image_id="known", filename="a.jpg", mime_type="image/jpeg",
                        original_path="a.jpg", size=1)
    with app.engine.begin() as conn:
        conn.execute(text("UPDATE images SET status = 'failed' WHERE id = 'known'"))
    result = invoke(config_path, "retry", "known", "gone-1", "gone-2")
    assert result.exit_code == 1
    assert result.stderr.strip() == "darkroom: no image with ids gone-1, gone-2"
    row = images.get(app.engine, "known")
    assert row is not None and row.status == "failed"
    ok = invoke(config_path, "retry", "known")
    assert ok.exit_code == 0 and "retrying 1 image(s)" in ok.stdout


def test_variants_of_an_unknown_id_raise_image_not_found(app: App) -> None:
    dr = Darkroom(app)
    with pytest.raises(ImageNotFound, match="no-such-id"):
        dr.variants("no-such-id")


def _locked(tmp_path: Path) -> tuple[sqlite3.Connection, str]:
    db = tmp_path / "busy.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    return holder, f"sqlite:///{db}"


def test_a_locked_database_is_database_busy_raised_by_db(tmp_path: Path) -> None:
    holder, url = _locked(tmp_path)
    engine = make_engine(url, SqliteTuning(busy_timeout_ms=50))
    calls = []

    def write() -> None:
        calls.append(1)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))

    try:
        with pytest.raises(DatabaseBusy, match="database is locked") as caught:
            write()
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)  # chained to the driver's error
        with pytest.raises(DatabaseBusy):
            retry_busy(write, attempts=3, sleep=lambda s: None)
        assert len(calls) == 1 + 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()


def test_the_engine_names_an_unreachable_database_and_leaves_other_errors_alone(tmp_path: Path) -> None:
    gone = make_engine(f"sqlite:///{tmp_path}/no/dir/app.db")
    with pytest.raises(DatabaseUnreachable, match="cannot open the database file"):
        gone.connect()
    fine = make_engine(f"sqlite:///{tmp_path}/app.db")
    with fine.connect() as conn, pytest.raises(OperationalError, match="no such table"):
        conn.execute(text("SELECT * FROM nowhere"))  # a bug, not an outage: SQLAlchemy's own error
    fine.dispose()


def test_postgres_refusing_the_connection_is_database_unreachable() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/darkroom")
    with pytest.raises(DatabaseUnreachable, match="connection refused"):
        refused.connect()
    if backends.postgres_unreachable():
        pytest.skip("the local PostgreSQL server is not running")
    # A role that does not exist: the server answers, but not to us.
    wrong = make_engine("postgresql+psycopg://no_such_role_here@127.0.0.1:5432/postgres")
    with pytest.raises(DatabaseUnreachable, match="no_such_role_here"):
        wrong.connect()


def test_no_module_above_db_names_sqlalchemys_operational_or_integrity_error() -> None:
    """db/ names them (DatabaseBusy, DatabaseUnreachable, ImageExists, a lease taken first)."""
    root = Path(__file__).resolve().parent.parent
    sources = [*root.glob("jobs/**/*.py"), *root.glob("worker/**/*.py"), root / "darkroom_api.py"]
    named = [str(p.relative_to(root)) for p in sources
             for name in ("OperationalError", "IntegrityError")
             if name in p.read_text().replace(f"sqlite3.{name}", "")]
    assert sources and named == []


@pytest.mark.parametrize("args, said", [
    (["retry"], "give image IDS or --failed"),                         # a command's own check
    (["status", "--interval", "abc"], "Invalid value for '--interval'"),  # click's value check
    (["--no-such-option", "status"], "No such option"),                 # the group's options
    (["no-such-command"], "No such command"),
])
def test_a_bad_command_line_is_one_line_and_exit_1(config_path: Path, args: list[str], said: str) -> None:
    proc = run_cli(config_path, *args, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("darkroom: ") and said in proc.stderr and "--help" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr and proc.stdout == ""


def test_one_shot_commands_are_quiet_and_say_each_result_once(app: App, config_path: Path) -> None:
    migrate = invoke(config_path, "migrate")
    assert migrate.exit_code == 0 and migrate.stderr == "", migrate.stderr  # no Alembic INFO lines
    quiet = invoke(config_path, "maintenance", "checkpoint")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.count("checkpoint: ok") == 1
    loud = CliRunner().invoke(main, ["--config", str(config_path), "-v", "maintenance", "checkpoint"])
    assert "INFO" in loud.stderr and "maintenance checkpoint ok" in loud.stderr
    assert "alembic" not in loud.stderr

"""A command imports only what it uses (issue 13): checked in a fresh interpreter.

On a default install (SQLite database, SQLite huey queue) ``darkroom --help``,
``enqueue``, ``status`` and ``health`` import none of LanceDB, pyarrow, numpy,
Alembic (with Mako), redis-py, psycopg or httpx (with Pygments); each probe
has a positive control showing the check sees the import when the
configuration does need the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from db import migrate
from db.engine import make_engine

PROBE = """
import sys
from worker.cli import main
try:
    main(sys.argv[1:], prog_name="darkroom")
except SystemExit:
    pass
print("MODULES", " ".join(sorted(sys.modules)))
"""


HEAVY = frozenset({"lancedb", "pyarrow", "numpy", "alembic", "mako", "redis", "psycopg", "httpx", "pygments"})


def probe_modules(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """(what the command printed, every module imported by its end), in a fresh interpreter."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=120, check=True, env={**clean, **(env or {})}).stdout
    line = next(x for x in out.splitlines() if x.startswith("MODULES "))
    return out[:out.index("MODULES ")], set(line.split()[1:])


def run_probe(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """(what the command printed, the top-level modules imported by its end), in a fresh interpreter."""
    printed, modules = probe_modules(args, cwd, env)
    return printed, {m.split(".")[0] for m in modules}


def modules_after(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> set[str]:
    return run_probe(args, cwd, env)[1]


def test_static_head_is_alembics_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    script = ScriptDirectory.from_config(migrate.alembic_config(engine))
    assert migrate.head_revision() == script.get_current_head()


def test_upgrade_if_needed_runs_alembic_only_when_behind(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine, "0002")
    assert migrate.current_revision(engine) == "0002"
    assert migrate.upgrade_if_needed(engine) is True
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.upgrade_if_needed(engine) is False
    engine.dispose()


def test_status_on_a_migrated_database_does_not_import_alembic(tmp_path: Path) -> None:
    assert "alembic" in modules_after(["migrate"], tmp_path)  # the probe can see an import
    loaded = modules_after(["status"], tmp_path)
    assert not loaded & {"alembic", "mako"}, sorted(loaded & {"alembic", "mako"})


def test_commands_on_a_default_install_import_no_heavy_module(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (640, 480), (200, 80, 40)).save(tmp_path / "photo.jpg", quality=90)
    assert "alembic" in modules_after(["migrate"], tmp_path)  # creates the database (and shows an import is seen)
    printed, loaded = run_probe(["--help"], tmp_path)
    assert "enqueue" in printed and "status" in printed  # every command is listed
    assert not loaded & (HEAVY | {"sqlalchemy", "huey", "PIL"}), sorted(loaded & (HEAVY | {"sqlalchemy", "huey"}))
    printed, loaded = run_probe(["enqueue", "photo.jpg"], tmp_path)
    assert "photo.jpg" in printed and not loaded & HEAVY, sorted(loaded & HEAVY)
    printed, loaded = run_probe(["status", "--json"], tmp_path)
    report = json.loads(printed)
    assert report["images"]["pending"] == 1 and report["queue"]["queued"] == 1  # the enqueue did its work
    assert not loaded & HEAVY, sorted(loaded & HEAVY)
    printed, loaded = run_probe(["status"], tmp_path)
    assert "pending 1" in printed and not loaded & HEAVY, sorted(loaded & HEAVY)
    loaded = modules_after(["health"], tmp_path)  # unhealthy (no worker), but it asked the database and queue
    assert {"sqlalchemy", "huey"} <= loaded and not loaded & HEAVY, sorted(loaded & HEAVY)


def test_a_redis_queue_does_import_redis(tmp_path: Path) -> None:
    """The positive control of the probe above: the configuration needs redis-py, and it is imported."""
    env = {"DARKROOM_QUEUE__URL": "redis://127.0.0.1:6379/15", "DARKROOM_QUEUE__NAME": f"imports_{uuid.uuid4().hex}"}
    assert "alembic" in modules_after(["migrate"], tmp_path, env)
    loaded = modules_after(["status"], tmp_path, env)
    assert "redis" in loaded and not loaded & (HEAVY - {"redis"}), sorted(loaded & HEAVY)


GUARDED_THEN_REDIS = """
import sys, uuid
import jobs.huey_import
assert "redis" not in sys.modules and "psycopg" not in sys.modules, "huey pulled them in"
from jobs.queue import QueueConfig, make_huey
from jobs.tasks import register
huey = make_huey(QueueConfig(url="redis://127.0.0.1:6379/15", name="guard_" + uuid.uuid4().hex))
tasks = register(huey)
tasks.enqueue_images(["x1", "x2"])
print("PENDING", huey.pending_count())
huey.flush()
import psycopg  # unblocked again after huey's import
print("OK")
"""


def test_huey_imported_without_redis_still_runs_a_redis_queue() -> None:
    """jobs/huey_import.py hands huey's storage module redis-py back for a Redis queue (real Redis)."""
    out = subprocess.run([sys.executable, "-c", GUARDED_THEN_REDIS], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "PENDING 2" in out.stdout and "OK" in out.stdout


def test_status_opens_the_vector_store_only_when_it_changed(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    from jobs.embeddings.store import VectorStore

    assert "alembic" in modules_after(["migrate"], tmp_path)
    store = VectorStore(tmp_path / "data" / "lancedb")
    store.upsert("local-v1", ["a", "b"], np.random.default_rng(0).random((2, 8), dtype=np.float32))
    printed, loaded = run_probe(["status", "--json"], tmp_path)
    assert json.loads(printed)["vectors"]["models"] == {"local-v1": 2} and "lancedb" in loaded  # read the store
    printed, loaded = run_probe(["status", "--json"], tmp_path)
    assert json.loads(printed)["vectors"]["models"] == {"local-v1": 2}
    assert not loaded & HEAVY, sorted(loaded & HEAVY)  # unchanged: the counts kept last time
    store.upsert("local-v1", ["c"], np.random.default_rng(1).random((1, 8), dtype=np.float32))
    printed, loaded = run_probe(["status", "--json"], tmp_path)
    assert json.loads(printed)["vectors"]["models"] == {"local-v1": 3} and "lancedb" in loaded


def test_a_command_loads_only_its_own_module_and_help_lists_them_all(tmp_path: Path) -> None:
    from worker.cli import COMMANDS

    def command_modules(args: list[str]) -> tuple[str, set[str]]:
        printed, modules = probe_modules(args, tmp_path)
        return printed, {m for m in modules if m.startswith("worker.commands.")}

    printed, loaded = command_modules(["--help"])
    assert loaded == {spec.split(":")[0] for spec in COMMANDS.values()}
    listed = [line.split()[0] for line in printed[printed.index("Commands:"):].splitlines()[1:] if line.strip()]
    assert listed == sorted(COMMANDS)
    assert command_modules(["status", "--help"])[1] == {"worker.commands.status"}
    assert command_modules(["maintenance", "sweep", "--help"])[1] == {"worker.commands.maintenance"}

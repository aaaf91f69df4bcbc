"""Shared fixtures: a self-contained Darkroom installation per test.

``make_config(**sections)`` writes a config.toml in a fresh directory (data
under it, exactly like a user copying config.toml into an empty directory)
and returns its path. ``app`` builds and migrates the App for it.

Backends: ``make_config`` applies the test's ``backend`` (see
``tests/backends.py``): SQLite + SQLite queue unless the test is decorated
with :data:`all_backends`, which runs it on every combination (SQLite +
SQLite queue, PostgreSQL + Redis, SQLite + Redis). On a server backend every
config a test makes shares the test's own PostgreSQL schema and Redis queue
name, so two installations made in one test are two hosts of one cluster.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from db.engine import make_engine
from db.maintenance.files import sqlite_path
from db.migrate import upgrade
from tests import backends
from tests.backends import Backend, BackendSetup
from worker.app import App, build
from worker.settings import load

REPO = Path(__file__).resolve().parent.parent

# A run started in the background by a script (`pytest &`, `nohup ... &`) has SIGINT ignored, and so
# would every daemon a test starts (an ignored signal survives exec): the tests that stop `status
# --watch` or `serve` with Ctrl-C would wait forever. A handler here is reset to the default in the
# children, which then get Python's KeyboardInterrupt as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Quick defaults for tests: small widths and the fastest encoders.
TEST_SECTIONS: dict[str, dict[str, Any]] = {
    "queue": {"workers": 1, "max_delay_s": 0.1},
    "variants": {"widths": [64, 128, 256], "webp": {"quality": 70, "effort": 0},
                 "avif": {"quality": 50, "effort": 10}},
    "jobs": {"retry_delay_s": 0.1, "reconcile_interval_s": 1.0, "requeue_after_s": 5.0},
    "embeddings": {"delay_after_complete_s": 0.1},
}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def merge(base: dict[str, dict[str, Any]], extra: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {k: dict(v) for k, v in base.items()}
    for k, v in extra.items():
        out.setdefault(k, {}).update(v)
    return out


def backend_params(*which: Backend) -> list[Any]:
    """pytest params for ``which``; server backends carry the ``scaleout`` mark."""
    return [pytest.param(b, id=b.id, marks=[pytest.mark.scaleout] if b.needs_servers else [])
            for b in which]


# Decorate a test (or module: ``pytestmark = all_backends``) to run it on
# every backend combination.
all_backends = pytest.mark.parametrize("backend", backend_params(*backends.ALL), indirect=True)
# Only the server combinations (tests about scale-out itself).
server_backends = pytest.mark.parametrize(
    "backend", backend_params(backends.PG_REDIS, backends.SQLITE_REDIS), indirect=True)


@pytest.fixture(autouse=True)
def _quiet_machine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Under pytest-xdist, a test marked ``quiet`` runs while no other test of the run runs.

    Such a test holds the machine to a bound (a heartbeat gone within its timeout
    plus 0.3 s, a row completed within two reconciler intervals, a stuck encoder
    killed within the grace period plus 5 s) that only means something when the
    CPU is not taken by the other workers' daemons. Every test
    holds a shared lock; a quiet one takes it exclusively. The gate in front keeps
    the quiet test from waiting forever behind a stream of shared holders. The
    lock files live in the run's shared temp root, so two runs never block each
    other. Without xdist (one process) there is nothing to coordinate.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    root = tmp_path_factory.getbasetemp().parent
    quiet = request.node.get_closest_marker("quiet") is not None
    with open(root / "quiet.gate", "a") as gate, open(root / "quiet.lock", "a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if quiet else fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[BackendSetup]:
    """The test's backend, provisioned and cleaned up; SQLite unless parametrized."""
    chosen: Backend = getattr(request, "param", backends.SQLITE)
    why = backends.unreachable(chosen)
    if why:
        pytest.skip(f"{chosen.id} backend: {why}; CI starts the servers (.ci/run)")
    with backends.backend_setup(chosen) as setup:
        yield setup


@pytest.fixture
def make_config(tmp_path: Path, backend: BackendSetup) -> Callable[..., Path]:
    """``make_config(queue={"workers": 2})`` -> path of a config.toml in its own dir."""
    counter = {"n": 0}

    def _make(**sections: dict[str, Any]) -> Path:
        counter["n"] += 1
        home = tmp_path / f"install{counter['n']}"
        return write_config(home / "config.toml",
                            merge(merge(TEST_SECTIONS, backend.sections), sections))

    return _make


@pytest.fixture
def config_path(make_config: Callable[..., Path]) -> Path:
    return make_config()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to the head once per session (per xdist worker).

    Alembic costs ~0.25 s of CPU per database; most tests need a migrated database,
    not a migration. They get a copy of this file (:func:`copy_migrated_sqlite`);
    the migrations themselves are tested where they are the subject (``darkroom
    migrate``, tests/recipes/test_migration.py, tests/maintenance/test_optimize.py,
    every daemon's start-up on a fresh directory).
    """
    path = tmp_path_factory.mktemp("migrated") / "app.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection closed: the WAL is checkpointed into the file and removed
    assert not path.with_name("app.db-wal").exists()
    return path


def copy_migrated_sqlite(template: Path, path: Path) -> Path:
    """Put a copy of the migrated template at ``path`` (which must not exist yet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as out, open(template, "rb") as src:
        shutil.copyfileobj(src, out)
    return path


@pytest.fixture
def app(config_path: Path, request: pytest.FixtureRequest) -> Iterator[App]:
    application = build(load(config_path, env={}))
    db_file = sqlite_path(application.engine)
    if db_file is not None and not db_file.exists():  # a fresh SQLite installation: same file as migrating
        copy_migrated_sqlite(request.getfixturevalue("migrated_sqlite_template"), db_file)
    application.migrate()  # still checks the stored revision against the head
    application.install_context()
    yield application
    application.close()


def run_cli(config: Path, *args: str, check: bool = True, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``darkroom --config CONFIG ARGS`` as a real subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "worker", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout, env=full_env, cwd=config.parent)
    if check and proc.returncode != 0:
        raise AssertionError(f"darkroom {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1,
             what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s")

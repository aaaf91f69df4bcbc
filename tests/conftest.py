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

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import backends
from tests.backends import Backend, BackendSetup
from worker.app import App, build
from worker.settings import load

REPO = Path(__file__).resolve().parent.parent

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


@pytest.fixture
def app(config_path: Path) -> Iterator[App]:
    application = build(load(config_path, env={}))
    application.migrate()
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

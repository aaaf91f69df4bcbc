"""A command imports only what it uses (issue 13): checked in a fresh interpreter.

So far: Alembic (and Mako, which it pulls in) is imported only to upgrade; a
database already at the head is recognised without it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def modules_after(args: list[str], cwd: Path) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("MODULES "))
    return {m.split(".")[0] for m in line.split()[1:]}


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

"""Alembic migrations, run programmatically (no alembic.ini needed).

``darkroom migrate`` and worker start call :func:`upgrade`; it is idempotent.
Commands that only need an up-to-date schema call :func:`upgrade_if_needed`,
which compares the stored revision with the head read from the revision files
(no Alembic import: Alembic, Mako and Pygments cost about 0.2 s to import) and
imports Alembic only when there is something to upgrade.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = "db:migrations"
VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"
VERSION_TABLE = "alembic_version"

_ASSIGN = re.compile(r"""^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:["']([^"']+)["']|None)\s*$""", re.M)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the shared database to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def upgrade_if_needed(engine: Engine) -> bool:
    """Upgrade to head unless the stored revision already is the head; True if Alembic ran."""
    head = head_revision()
    if head is not None and current_revision(engine) == head:
        return False
    upgrade(engine)
    return True


@cache
def head_revision() -> str | None:
    """The head of the revision files, read statically; None when it is not one plain chain.

    None makes :func:`upgrade_if_needed` fall back to Alembic, which knows
    better (a merge revision, a tuple ``down_revision``). A test checks this
    against Alembic's own ``ScriptDirectory.get_current_head()``.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS_DIR.glob("*.py"):
        found = {m.group(1): m.group(2) for m in _ASSIGN.finditer(path.read_text(encoding="utf-8"))}
        if "revision" not in found or found["revision"] is None:
            continue
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    """The revision stored in ``alembic_version``; None on a database Alembic never touched."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def has_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("images")

"""The same duties on PostgreSQL (local server, db ``test``, a throwaway schema)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from db.engine import make_engine, write_session
from db.maintenance.backup import backup
from db.maintenance.check import check
from db.maintenance.errors import MaintenanceError, TtlRuleError
from db.maintenance.optimize import optimize
from db.maintenance.runs import acquire, last_runs, release, run_duty
from db.maintenance.ttl import TtlRule, check_rules, sweep
from db.migrate import upgrade

pytestmark = pytest.mark.scaleout
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg() -> Iterator[Engine]:
    schema = f"maint_{uuid.uuid4().hex[:10]}"
    admin = create_engine(URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        pytest.skip(f"local PostgreSQL not reachable: {exc}")
    engine = make_engine(URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_ttl_sweep_on_postgres(pg: Engine) -> None:
    now = time.time()
    day = 86_400
    with write_session(pg) as s:
        s.execute(text("INSERT INTO images (id, filename, original_path, mime_type, size, status, created_at) "
                       "VALUES (:id, 'f', 'o', 'image/png', 1, :st, :t)"),
                  [{"id": f"old-{i}", "st": "failed", "t": int(now - 40 * day)} for i in range(7)]
                  + [{"id": f"new-{i}", "st": "failed", "t": int(now)} for i in range(3)])
        s.execute(text("CREATE TABLE sessions (id TEXT PRIMARY KEY, expires_at TEXT, "
                       "ends TIMESTAMP WITH TIME ZONE)"))
        past, future = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
        s.execute(text("INSERT INTO sessions VALUES (:id, :e, :d)"),
                  [{"id": "a", "e": past.isoformat(), "d": future}, {"id": "b", "e": future.isoformat(), "d": past}])
    figures = sweep(pg, [TtlRule(table="images", column="created_at", max_age_s=30 * day,
                                 where={"status": "failed"}),
                         TtlRule(table="sessions", column="expires_at", max_age_s=0)], batch_size=3)
    assert figures["rules"]["images.created_at"] == {**figures["rules"]["images.created_at"],
                                                     "deleted": 7, "batches": 3}
    assert figures["rules"]["sessions.expires_at"]["deleted"] == 1
    assert sweep(pg, [TtlRule(table="sessions", column="ends", max_age_s=0)])["deleted"] == 1
    with pg.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM images")).scalar_one() == 3
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar_one() == 0
    with pytest.raises(TtlRuleError, match="'images; drop table images'"):
        check_rules(pg, [TtlRule(table="images; drop table images", column="created_at", max_age_s=1)])


def test_lease_run_records_optimize_and_check_on_postgres(pg: Engine) -> None:
    assert acquire(pg, "backup", "a", 60) and not acquire(pg, "backup", "b", 60)
    release(pg, "backup", "a", ran_at=time.time())
    assert run_duty(pg, "optimize", lambda: optimize(pg, analyze=True)).figures["statement"] == "VACUUM (ANALYZE)"
    assert optimize(pg)["statement"] == "ANALYZE"
    run_duty(pg, "check", lambda: check(pg))
    assert {r["name"]: r["outcome"] for r in last_runs(pg)} == {"optimize": "ok", "check": "ok"}
    with pytest.raises(MaintenanceError, match="pg_dump"):
        backup(pg, Path("/tmp/never"), keep=1)

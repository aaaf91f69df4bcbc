"""Periodic duties run once per period across hosts sharing one database.

Every daemon runs the huey scheduler and a reconciler thread; the guard
(``db.leases.run_once_per_period``, from the reliability work) makes the
first arrival in a period run the duty and the others skip it. Skipped
until that module is on the branch.
"""

from __future__ import annotations

import math
import multiprocessing
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from db import migrate
from db.engine import make_engine, read_sessions
from db.models import Lease, MaintenanceRun
from tests import backends
from tests.backends import BackendSetup
from tests.conftest import backend_params, run_cli
from tests.daemon import launch

leases = pytest.importorskip("db.leases", reason="db/leases.py (periodic-lease guard) not merged yet")

sqlite_and_pg = pytest.mark.parametrize(
    "backend", backend_params(backends.SQLITE, backends.PG_REDIS), indirect=True)
pg_only = pytest.mark.parametrize("backend", backend_params(backends.PG_REDIS), indirect=True)

HOSTS = 6


def _host(url: str, n: int, barrier, out) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    barrier.wait()
    ran = leases.run_once_per_period(engine, "nightly", 3600.0, lambda: {"host": n},
                                     owner=f"host{n}")
    engine.dispose()
    out.put(ran)


@sqlite_and_pg
def test_many_schedulers_one_run_per_period(backend: BackendSetup, tmp_path: Path) -> None:
    url = backend.database_url or f"sqlite:///{tmp_path / 'app.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    mp = multiprocessing.get_context("fork")
    barrier, out = mp.Barrier(HOSTS), mp.Queue()
    procs = [mp.Process(target=_host, args=(url, n, barrier, out)) for n in range(HOSTS)]
    for p in procs:
        p.start()
    ran = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert ran.count(True) == 1, ran
    engine = make_engine(url)
    with read_sessions(engine)() as s:
        runs = s.execute(select(MaintenanceRun.outcome).where(MaintenanceRun.name == "nightly")).all()
    engine.dispose()
    assert [r.outcome for r in runs] == ["ok"]


def _start(config: Path) -> subprocess.Popen[str]:
    # DEBUG: quiet reconciler runs are only logged ("running for period N"),
    # not recorded in maintenance_runs.
    return launch(config, "--log-level", "DEBUG", "worker", new_session=True)


@pytest.mark.acceptance
@pg_only
def test_two_daemons_reconcile_once_per_period(backend: BackendSetup, make_config) -> None:
    period = 1.0
    sections = dict(jobs={"reconcile_interval_s": period}, queue={"workers": 1})
    hosts = [make_config(**sections), make_config(**sections)]
    run_cli(hosts[0], "migrate")
    daemons = [_start(h) for h in hosts]
    try:
        time.sleep(5 * period + 2)  # several periods with both daemons up
    finally:
        for d in daemons:
            d.send_signal(signal.SIGTERM)
        outputs = [d.communicate(timeout=40)[0] for d in daemons]
    assert [d.returncode for d in daemons] == [0, 0], outputs
    periods = [p for out in outputs for p in re.findall(r"reconcile: running for period (\d+)", out)]
    assert len(periods) >= 3, periods
    assert len(periods) == len(set(periods)), f"reconcile ran twice in one period: {sorted(periods)}"
    engine = make_engine(backend.database_url)  # type: ignore[arg-type]
    with read_sessions(engine)() as s:
        last = s.scalar(select(Lease.last_run_at).where(Lease.name == "reconcile"))
    engine.dispose()
    assert last is not None and str(math.floor(last / period)) == max(periods, key=int)

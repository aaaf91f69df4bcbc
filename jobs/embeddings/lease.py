"""The embedding step's lease: a row in ``leases`` taken by compare-and-set.

Only the holder of lease ``embedding`` writes LanceDB (one writer: concurrent
upserts of the same id would create duplicate rows). An outage is kept in the
same row: the step *keeps* the lease until the backoff ends, with the count of
consecutive failed runs in ``outages`` and what failed in ``outage_kind``, so
every process backs off together and the count (for the exponential backoff
and for logging once per outage) survives across processes. Whoever takes the
lease next receives the count in the state :func:`acquire` returns, and the
row's count goes back to 0 until that run fails too.

It differs from :mod:`db.leases` on purpose: the compare-and-set is on the
observed owner and expiry, and :func:`acquire` returns the state it replaced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from db import leases
from db.engine import read_sessions, rowcount, write_session
from db.models import Lease


@dataclass(frozen=True)
class LeaseState:
    owner: str | None
    expires_at: float | None
    last_run_at: float | None
    outages: int = 0  # consecutive failed runs (0 when healthy)
    outage_kind: str | None = None  # what failed last: "outage", "misconfigured", the store


def state(engine: Engine, name: str) -> LeaseState | None:
    with read_sessions(engine)() as s:
        row = s.execute(select(Lease.owner, Lease.expires_at, Lease.last_run_at, Lease.outages,
                               Lease.outage_kind).where(Lease.name == name)).first()
    return None if row is None else LeaseState(row[0], row[1], row[2], row[3] or 0, row[4])


def is_free(current: LeaseState | None, now: float) -> bool:
    """No live holder: never taken, released, or expired."""
    return current is None or current.owner is None or current.expires_at is None or current.expires_at < now


def acquire(engine: Engine, name: str, owner: str, lease_s: float) -> LeaseState | None:
    """Take lease ``name``; returns the state it had before (for its outage count), or None if held.

    Compare-and-set on the observed ``owner``/``expires_at``: of two processes
    that saw the same free row, exactly one update matches.
    """
    now = time.time()
    before = state(engine, name)
    if before is None:
        if leases.insert_new(engine, name, owner, now + lease_s):
            return LeaseState(None, None, None)
        before = state(engine, name)  # someone inserted it first: fall through to the update
        if before is None:
            return None
    if not is_free(before, now):
        return None
    cond = [Lease.name == name]
    cond.append(Lease.owner.is_(None) if before.owner is None else Lease.owner == before.owner)
    cond.append(Lease.expires_at.is_(None) if before.expires_at is None else Lease.expires_at == before.expires_at)
    with write_session(engine) as s:
        took = rowcount(s.execute(update(Lease).where(*cond).values(
            owner=owner, expires_at=now + lease_s, outages=0, outage_kind=None)))
    return before if took == 1 else None


def renew(engine: Engine, name: str, owner: str, lease_s: float) -> bool:
    with write_session(engine) as s:
        return rowcount(s.execute(update(Lease).where(Lease.name == name, Lease.owner == owner)
                                  .values(expires_at=time.time() + lease_s))) == 1


def release(engine: Engine, name: str, owner: str, last_run_at: float | None = None) -> None:
    values: dict[str, float | None] = {"owner": None, "expires_at": None}
    if last_run_at is not None:
        values["last_run_at"] = last_run_at
    with write_session(engine) as s:
        s.execute(update(Lease).where(Lease.name == name, Lease.owner == owner).values(**values))


def hold_for_outage(engine: Engine, name: str, owner: str, outages: int, kind: str, until: float) -> None:
    """Keep the lease until ``until``, recording the outage (nobody runs before then)."""
    with write_session(engine) as s:
        s.execute(update(Lease).where(Lease.name == name, Lease.owner == owner)
                  .values(expires_at=until, outages=outages, outage_kind=kind))

"""``darkroom health``: is this installation doing its job?

Healthy means all of:

1. the shared database answers (and is not created by asking: a missing
   SQLite file is a failure, not a new empty database);
2. the queue answers (same rule for a SQLite queue file);
3. at least one worker has a fresh heartbeat (``heartbeat.timeout_s``), or
   one on this host with ``--local``;
4. no maintenance duty listed in ``[health] duty_max_age_s`` is overdue: its
   last successful run started longer ago than its limit. A duty that never
   ran is overdue only once a live worker has been up longer than the limit
   (a new installation is not unhealthy for its first hours).

>>> result = check(settings)          # doctest: +SKIP
>>> result.ok, result.problems        # doctest: +SKIP
(False, ('no live worker: no heartbeat in the last 30s',))
"""

from __future__ import annotations

import logging
import socket
import time
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, text

from db.engine import make_engine
from jobs.queue import make_huey, queue_depth, sqlite_queue_path
from worker.settings import Settings
from worker.status import figures
from worker.status.workers import LiveWorker, live_workers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthResult:
    problems: tuple[str, ...]
    facts: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check(settings: Settings, local: bool = False, now: float | None = None) -> HealthResult:
    """Run every check; a failing check never stops the others (except a dead database)."""
    now = now or time.time()
    problems: list[str] = []
    facts: list[str] = []
    hs, hb = settings.health, settings.heartbeat

    queue_problem = _check_queue(settings)
    if queue_problem:
        problems.append(queue_problem)
    else:
        facts.append("queue reachable")

    url = settings.database.url
    path = figures.sqlite_path(url)
    if path is not None and not path.is_file():
        problems.append(f"database unreachable: no database file at {path}")
        return HealthResult(tuple(problems), tuple(facts))
    if path is None:  # a server: do not hang on an unreachable host
        engine = make_engine(url, connect_args={"connect_timeout": max(1, int(hs.connect_timeout_s))})
    else:
        engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        host = socket.gethostname() if local else None
        live = live_workers(engine, hb.timeout_s, now, host=host)
        facts.append("database reachable")
        where = f" on {host}" if host else ""
        if not live:
            problems.append(f"no live worker{where}: no heartbeat in the last {hb.timeout_s:g}s")
        else:
            facts.append(f"{len(live)} live worker(s){where}")
        if hs.duty_max_age_s:
            problems.extend(_overdue(engine, hs.duty_max_age_s, live, now))
    except Exception as exc:
        problems.append(f"database unreachable: {_one_line(exc)}")
    finally:
        engine.dispose()
    return HealthResult(tuple(problems), tuple(facts))


def _check_queue(settings: Settings) -> str | None:
    q = settings.queue
    path = sqlite_queue_path(q.url)
    if path is not None and not path.is_file():
        return f"queue unreachable: no queue file at {path}"
    try:
        huey = make_huey(dataclasses.replace(q, busy_timeout_s=min(q.busy_timeout_s, 5.0)))
        queue_depth(huey)
    except Exception as exc:
        return f"queue unreachable: {_one_line(exc)}"
    return None


def _overdue(engine: Engine, limits: dict[str, float], live: Sequence[LiveWorker],
             now: float) -> list[str]:
    last_ok = figures.last_ok_run_at(engine)
    up_since = min((w.started_at for w in live), default=None)
    out = []
    for duty, limit in sorted(limits.items()):
        at = last_ok.get(duty)
        if at is not None:
            if now - at > limit:
                out.append(f"duty {duty!r} overdue: last successful run {now - at:.0f}s ago "
                           f"(limit {limit:g}s)")
        elif up_since is not None and now - up_since > limit:
            out.append(f"duty {duty!r} overdue: no successful run recorded while workers have "
                       f"been up {now - up_since:.0f}s (limit {limit:g}s)")
    return out


def _one_line(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]

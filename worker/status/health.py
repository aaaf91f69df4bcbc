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
   (a new installation is not unhealthy for its first hours);
5. the media dir can be written (a small file is created and removed) and has
   at least ``[health] media_min_free_mb`` free;
6. no worker on this host is still starting, waiting for a backend
   (``starting: waiting for PostgreSQL at db:5432: connection refused``).

>>> result = check(settings)          # doctest: +SKIP
>>> result.ok, result.problems        # doctest: +SKIP
(False, ('no live worker: no heartbeat in the last 30s',))
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from db.engine import make_engine, sqlite_file
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

    from worker import startup

    problems.extend(f"starting: waiting for {what}" for what in startup.waiting(settings.paths.data_dir))
    media_problem, media_fact = check_media(settings.paths.media_dir, hs.media_min_free_mb)
    if media_problem:
        problems.append(media_problem)
    else:
        facts.append(media_fact)

    queue_problem = _check_queue(settings)
    if queue_problem:
        problems.append(queue_problem)
    else:
        facts.append("queue reachable")

    url = settings.database.url
    path = sqlite_file(url)
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
        from db.errors import unreachable_from

        down = unreachable_from(exc, url)
        problems.append(f"database unreachable: {down.where}: {down.reason}" if down
                        else f"database unreachable: {_one_line(exc)}")
    finally:
        engine.dispose()
    return HealthResult(tuple(problems), tuple(facts))


@dataclass(frozen=True)
class MediaState:
    """The media dir as ``health``, ``status`` and ``/metrics`` show it."""

    path: str
    writable: bool
    free_bytes: int | None
    error: str | None = None


def media_state(media_dir: Path) -> MediaState:
    from jobs import media

    problem = media.probe_writable(media_dir)
    error = None if problem is None else (f"[Errno {problem.errno}] {problem.strerror}"
                                          if problem.strerror else str(problem))
    return MediaState(str(media_dir), problem is None, media.free_bytes(media_dir), error)


def check_media(media_dir: Path, min_free_mb: float) -> tuple[str | None, str]:
    """(problem or None, fact) for the media dir: writable, and free space over the floor."""
    state = media_state(media_dir)
    free = "unknown" if state.free_bytes is None else f"{state.free_bytes / 2**20:,.1f} MiB"
    if not state.writable:
        return f"media storage at {media_dir} not writable: {state.error}", ""
    if state.free_bytes is not None and state.free_bytes < min_free_mb * 2**20:
        return (f"media storage at {media_dir}: {free} free, below the floor of {min_free_mb:g} MiB "
                "(health.media_min_free_mb)"), ""
    return None, f"media {free} free, writable"


def _check_queue(settings: Settings) -> str | None:
    q = settings.queue
    path = sqlite_queue_path(q.url)
    if path is not None and not path.is_file():
        return f"queue unreachable: no queue file at {path}"
    try:
        huey = make_huey(dataclasses.replace(q, busy_timeout_s=min(q.busy_timeout_s, 5.0)))
        queue_depth(huey)
    except Exception as exc:
        from jobs.queue import unreachable_queue

        down = unreachable_queue(exc, q.url)
        return f"queue unreachable: {down.where}: {down.reason}" if down else f"queue unreachable: {_one_line(exc)}"
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

"""Outages of a backend (the database, the queue, the media storage), logged quietly.

While a backend is down every caller in a process (claims, lease renewals,
the heartbeat, the reconciler, the queue reader) reports its failures here
instead of logging them, and waits the delay it is given. What the log then
holds for one outage, per process:

- one WARNING when the backend first fails (``PostgreSQL at db:5432
  unreachable: connection refused; retrying with backoff up to 30 s``);
- at most one summary WARNING per ``summary_interval_s`` while it stays down
  (how long, how many failures);
- one INFO when it answers again, with how long it was down.

The delay grows with each failure of the same outage (``backoff_s``,
doubling, capped at ``max_backoff_s``), so a hundred queued images do not
each hammer a dead server every two seconds.

>>> wait = OUTAGES.down("PostgreSQL at db:5432", "connection refused")   # doctest: +SKIP
>>> OUTAGES.up("PostgreSQL at db:5432")                                   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine

from jobs.backoff import Backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutageSettings:
    """``[outage]``: how a worker waits out an unreachable backend or unwritable storage."""

    backoff_s: float = 1.0  # first wait after a failure; doubles per failure of the same outage
    max_backoff_s: float = 30.0  # the cap: a backend that is back is noticed within this
    summary_interval_s: float = 60.0  # at most one "still down" line per backend this often

    @property
    def policy(self) -> Backoff:
        return Backoff(self.backoff_s, self.max_backoff_s)

    def check(self) -> None:
        if self.backoff_s <= 0:
            raise ValueError("backoff_s: expected a number > 0")
        if self.max_backoff_s < self.backoff_s:
            raise ValueError("max_backoff_s: expected a number >= outage.backoff_s")
        if self.summary_interval_s <= 0:
            raise ValueError("summary_interval_s: expected a number > 0")


@dataclass
class _State:
    error: str
    since: float  # monotonic
    failures: int = 0
    last_summary: float = 0.0


class Outages:
    """Per-process outage state of every backend, by name (see the module docstring)."""

    def __init__(self, settings: OutageSettings = OutageSettings(),
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger = log) -> None:
        self.settings, self.clock, self.log = settings, clock, logger
        self._down: dict[str, _State] = {}
        self._lock = threading.Lock()

    def configure(self, settings: OutageSettings) -> None:
        self.settings = settings

    def down(self, backend: str, error: str) -> float:
        """Record a failure of ``backend``; returns how long to wait before the next try."""
        s = self.settings
        now = self.clock()
        with self._lock:
            state = self._down.get(backend)
            first = state is None
            if state is None:
                state = self._down[backend] = _State(error=error, since=now, last_summary=now)
            state.failures += 1
            state.error = error
            delay = s.policy.delay(state.failures)
            summary = not first and now - state.last_summary >= s.summary_interval_s
            if summary:
                state.last_summary = now
            failures, since = state.failures, state.since
        if first:
            self.log.warning("%s unreachable: %s; retrying with backoff up to %s", backend, error,
                             say_seconds(s.max_backoff_s), extra={"backend": backend, "event": "outage_start"})
        elif summary:
            self.log.warning("%s still unreachable after %s (%d failed tries): %s", backend,
                             say_seconds(now - since), failures, error,
                             extra={"backend": backend, "event": "outage_summary"})
        return delay

    def up(self, backend: str) -> None:
        """``backend`` answered: if it was down, log once that it is back."""
        if backend not in self._down:  # the common case: no lock, nothing to do
            return
        with self._lock:
            state = self._down.pop(backend, None)
        if state is not None:
            self.log.info("%s is back after %s (%d failed tries)", backend, say_seconds(self.clock() - state.since),
                          state.failures, extra={"backend": backend, "event": "outage_end"})

    def is_down(self, backend: str) -> bool:
        return backend in self._down

    def delay(self, backend: str) -> float:
        """The wait the next failure of ``backend`` would get (0 when it is up)."""
        state = self._down.get(backend)
        if state is None:
            return 0.0
        return self.settings.policy.delay(state.failures)

    def current(self) -> dict[str, str]:
        """Backends down now, with their last error."""
        with self._lock:
            return {k: v.error for k, v in self._down.items()}


def say_seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 1 or seconds == 0 else f"{seconds:.1f} s"


OUTAGES = Outages()  # this process's; configured from [outage] by the composition root


F = TypeVar("F", bound=Callable[..., Any])


def quiet_when_database_down(engine_of: Callable[[], Engine], outages: Outages | None = None) -> Callable[[F], F]:
    """Decorate a periodic task: a database outage goes to the outage log, not a traceback per run.

    huey logs every exception of a task with its traceback; a periodic task
    fires every minute on every worker, so an outage of an hour would leave
    hundreds of them. An error that means the database does not answer is
    reported to :data:`OUTAGES` (one WARNING, a summary a minute, one INFO
    when it is back) and the run ends; any other error is raised as before.
    """
    from db.errors import describe_url, unreachable_from

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            log_ = outages or OUTAGES
            url = str(engine_of().url)
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                down = unreachable_from(exc, url)
                if down is None:
                    raise
                log_.down(down.where, down.reason)
                return None
            backend, address = describe_url(url)
            log_.up(f"{backend} at {address}")
            return result

        return run  # type: ignore[return-value]

    return decorate

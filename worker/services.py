"""The daemon's operating services: its heartbeat thread and metrics endpoint.

``run_daemon`` starts them before the consumer forks its workers and stops
them after the consumer has stopped, so a daemon is listed as live exactly
while it can take work.

>>> services = start(app, worker_id, concurrency=2)   # doctest: +SKIP
>>> services.stop()                                    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker import heartbeat
from worker.status import metrics

if TYPE_CHECKING:
    from worker.app import App

log = logging.getLogger(__name__)


@dataclass
class Services:
    beat: heartbeat.Heartbeat
    metrics: Any  # metrics.MetricsServer, or its no-op when no port is set

    def stop(self) -> None:
        self.beat.stop()
        self.metrics.stop()


def start(app: App, worker_id: str, concurrency: int) -> Services:
    """Register the daemon, start its heartbeat, and serve metrics if configured."""
    hb = app.settings.heartbeat
    heartbeat.escalate_worker_deaths()
    server = metrics.start(app)  # first: its multiprocess dir must exist before the fork
    beat = heartbeat.Heartbeat(app.engine, worker_id, concurrency, hb, ready=signal_handlers_changed())
    beat.start()
    return Services(beat=beat, metrics=server)


def signal_handlers_changed() -> Callable[[], bool]:
    """True once SIGTERM's handler differs from now: the consumer has started.

    huey sets its handlers after forking its workers; a worker listed as
    live before that would die from a SIGTERM instead of stopping cleanly.
    """
    before = signal.getsignal(signal.SIGTERM)
    return lambda: signal.getsignal(signal.SIGTERM) is not before

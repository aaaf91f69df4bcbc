"""Per-process collaborators of the tasks.

The composition root (``worker/app.py``) installs one :class:`JobContext`
before the consumer forks its workers; each process then makes its own
engine on first use (connections must not cross a fork).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from jobs.backoff import Backoff
from jobs.fetch import FetchLimits
from jobs.imaging import Limits, Recipe
from jobs.imaging.recipes import pick


@dataclass
class JobContext:
    engine_factory: Callable[[], Engine]
    media_dir: Path
    recipe: Recipe  # the recipe "default" ([variants])
    limits: Limits
    owner_prefix: str  # the consumer's id; leases are "<owner_prefix>/<pid>"
    lease_s: float = 300.0
    max_attempts: int = 5
    retry_delay_s: float = 2.0  # first retry delay, doubled per attempt ...
    max_retry_delay_s: float = 3_600.0  # ... and never longer, whatever a server's Retry-After says
    grace_s: float = 30.0  # how long the completion write (and release) retries through a blip
    # Set by jobs.queue: enqueue process_image(image_id) after `delay` seconds (optional priority).
    schedule: Callable[..., None] | None = None
    # Large lane (jobs/lanes.py): images over large_pixels run at most large_slots at a time.
    large_pixels: int = 40_000_000
    large_slots: int = 1
    lanes_dir: Path | None = None
    encode_threads: int = 0  # at most this many encode threads per job; 0 = the cores shared among running jobs
    recipes: dict[str, Recipe] = field(default_factory=dict)  # by name, "default" included
    fetch_limits: FetchLimits = field(default_factory=FetchLimits)  # rows with a source_url
    extras: dict[str, Any] = field(default_factory=dict)
    # Built by the composition root; each process calls these once (LanceDB
    # and model handles must not cross a fork).
    make_vector_store: Callable[[], Any] | None = None
    make_embedder: Callable[[], Any] | None = None
    _engine: Engine | None = field(default=None, repr=False)
    _engine_pid: int = field(default=0, repr=False)

    @property
    def engine(self) -> Engine:
        pid = os.getpid()
        if self._engine is None or self._engine_pid != pid:
            if self._engine is not None:
                self._engine.dispose(close=False)  # inherited pool: drop, do not close
            self._engine = self.engine_factory()
            self._engine_pid = pid
        return self._engine

    def close(self) -> None:
        """Close this process's engine (PostgreSQL connections warn if left to GC)."""
        if self._engine is not None and self._engine_pid == os.getpid():
            self._engine.dispose()
        self._engine = None

    def recipe_named(self, name: str | None) -> Recipe:
        """The recipe a row names (None: ``default``); raises ``UnknownRecipe``."""
        return pick(self.recipes or {self.recipe.name: self.recipe}, name)

    @property
    def retry_policy(self) -> Backoff:
        return Backoff(self.retry_delay_s, self.max_retry_delay_s)

    @property
    def owner(self) -> str:
        return f"{self.owner_prefix}/{os.getpid()}"


_current: JobContext | None = None
_lock = threading.Lock()


def install(ctx: JobContext) -> None:
    global _current
    with _lock:
        _current = ctx


def current() -> JobContext:
    if _current is None:
        raise RuntimeError("no JobContext installed: start tasks through worker.app")
    return _current

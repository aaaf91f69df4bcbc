"""The composition root: Settings -> engine, huey, tasks, job context.

Everything else receives what it needs as arguments; only this module reads
the settings tree as a whole.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from huey import Huey
from sqlalchemy import Engine

from db import migrate
from db.engine import SqliteTuning, is_sqlite, make_engine
from db.ids import uuid7
from jobs import context, tasks
from jobs.maintenance import duties
from jobs.context import JobContext
from jobs.fetch import FetchLimits
from jobs.imaging import EncoderSpec, Limits, Recipe
from jobs.queue import QueueConfig, make_huey, sqlite_queue_path
from worker.settings import Settings


@dataclass
class App:
    settings: Settings
    huey: Huey
    tasks: tasks.TaskSet
    duties: dict[str, Any] = field(default_factory=dict)  # maintenance periodic tasks by name
    _engine: Engine | None = field(default=None, repr=False)
    _context: JobContext | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_db_engine(self.settings)
        return self._engine

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def job_context(self, owner_prefix: str | None = None) -> JobContext:
        s = self.settings
        return JobContext(
            engine_factory=functools.partial(make_db_engine, s),
            media_dir=s.paths.media_dir,
            recipe=recipe_from(s),
            limits=limits_from(s),
            owner_prefix=owner_prefix or worker_id(),
            lease_s=s.jobs.lease_s,
            max_attempts=s.jobs.max_attempts,
            retry_delay_s=s.jobs.retry_delay_s,
            schedule=lambda image_id, delay, lane=None: self.tasks.enqueue_images([image_id], delay=delay,
                                                                                   lane=lane),
            large_pixels=s.imaging.large_pixels,
            large_slots=s.imaging.large_slots,
            lanes_dir=s.paths.data_dir / "lanes",
            fetch_limits=fetch_limits_from(s),
            extras={"embedding": s.embeddings, "search": s.search},
        )

    def install_context(self, owner_prefix: str | None = None) -> JobContext:
        ctx = self.job_context(owner_prefix)
        context.install(ctx)
        self._context = ctx
        return ctx

    @property
    def duty_env(self) -> duties.DutyEnv:
        return duty_env(self.settings)

    def close(self) -> None:
        if self._context is not None:
            self._context.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def make_db_engine(settings: Settings) -> Engine:
    db = settings.database
    if db.url.startswith("sqlite:///"):
        settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
        from pathlib import Path

        Path(db.url[len("sqlite:///"):].split("?")[0]).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(db.url, SqliteTuning(busy_timeout_ms=db.busy_timeout_ms,
                                            cache_size_kib=db.cache_size_kib))


def recipe_from(settings: Settings) -> Recipe:
    v = settings.variants
    encoders = tuple(EncoderSpec(f, getattr(v, f).quality, getattr(v, f).effort) for f in v.formats)
    return Recipe(widths=tuple(sorted(set(v.widths))), encoders=encoders,
                  keep_gps=settings.imaging.keep_gps, animated_webp=settings.imaging.animated_webp)


def lane_rule(settings: Settings) -> tuple[Limits, int]:
    """What intake needs to put an image in its lane: the limits and the large-lane threshold."""
    return limits_from(settings), settings.imaging.large_pixels


def limits_from(settings: Settings) -> Limits:
    lim = settings.limits
    return Limits(max_pixels=lim.max_pixels, max_side=lim.max_side,
                  max_frames=lim.max_frames, max_bytes=lim.max_bytes)


def fetch_limits_from(settings: Settings) -> FetchLimits:
    return FetchLimits(**dataclasses.asdict(settings.fetch))


def worker_id() -> str:
    """An id for this worker daemon: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid7()[-6:]}"


def duty_env(settings: Settings) -> duties.DutyEnv:
    from jobs.embeddings.step import optimize_vectors
    from jobs.embeddings.store import delete_vectors

    store = settings.embeddings.lancedb_dir
    return duties.DutyEnv(settings=settings.maintenance, media_dir=settings.paths.media_dir,
                          queue_db=sqlite_queue_path(settings.queue.url),
                          delete_embeddings=functools.partial(delete_vectors, store),
                          optimize_vectors=functools.partial(optimize_vectors, store),
                          sqlite_database=is_sqlite(settings.database.url))


def build(settings: Settings) -> App:
    q = settings.queue
    huey = make_huey(QueueConfig(url=q.url, name=q.name, busy_timeout_s=q.busy_timeout_s))
    periodic = duties.register(huey, duty_env(settings), lambda: context.current().engine)
    return App(settings=settings, huey=huey, tasks=tasks.register(huey), duties=periodic)

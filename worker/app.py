"""The composition root: Settings -> engine, huey, tasks, job context.

Everything else receives what it needs as arguments; only this module reads
the settings tree as a whole.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from db import migrate
from db.engine import SqliteTuning, is_sqlite, make_engine, sqlite_file
from db.ids import uuid7
from jobs import context, tasks
from jobs.context import JobContext
from jobs.embeddings.settings import EmbeddingSettings
from jobs.huey_import import Huey
from jobs.imaging.recipes import DEFAULT as DEFAULT_RECIPE
from jobs.imaging.recipes import to_recipe
from jobs.imaging.types import Limits, Recipe
from jobs.maintenance import duties
from jobs.maintenance.duties import DutyEnv
from jobs.outage import OUTAGES
from jobs.queue import make_huey, sqlite_queue_path
from worker.settings import Settings

if TYPE_CHECKING:
    from jobs.embeddings.embedders.base import Embedder
    from jobs.embeddings.store import VectorStore


@dataclass
class App:
    settings: Settings
    huey: Huey
    tasks: tasks.TaskSet
    duties: dict[str, Any] = field(default_factory=dict)  # maintenance periodic tasks by name
    _engine: Engine | None = field(default=None, repr=False)
    _context: JobContext | None = field(default=None, repr=False)
    _vectors: VectorStore | None = field(default=None, repr=False)
    _vectors_pid: int = field(default=0, repr=False)
    _embedder: Embedder | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_db_engine(self.settings)
        return self._engine

    @property
    def vector_store(self) -> VectorStore:
        """The LanceDB store of ``[embeddings]``, opened on first use in this process.

        Building the App does not import LanceDB (a slow import); a forked
        worker opens its own handle (LanceDB connections must not cross a fork).
        """
        if self._vectors is None or self._vectors_pid != os.getpid():
            self._vectors = make_vector_store(self.settings.embeddings)
            self._vectors_pid = os.getpid()
        return self._vectors

    @property
    def embedder(self) -> Embedder:
        """The configured embedder, built on first use (for searches from the CLI and API)."""
        if self._embedder is None:
            self._embedder = make_embedder(self.settings.embeddings, recipes_from(self.settings),
                                           self.settings.limits)
        return self._embedder

    def has_vector_store(self) -> bool:
        """True when the LanceDB directory exists (opening the store would create it)."""
        return self.settings.embeddings.lancedb_dir.is_dir()

    def delete_vectors(self, image_ids: Iterable[str]) -> None:
        """Delete the vectors of ``image_ids`` from every model (the TTL sweep's file hook)."""
        ids = list(image_ids)
        if ids and self.has_vector_store():
            self.vector_store.delete(ids)

    def optimize_vectors(self) -> dict[str, dict[str, int]]:
        """Compact and prune every vector table (the maintenance ``optimize`` duty)."""
        return self.vector_store.optimize() if self.has_vector_store() else {}

    def migrate(self) -> None:
        migrate.upgrade_if_needed(self.engine)  # imports Alembic only when behind the head
        self.settings.paths.media_dir.mkdir(parents=True, exist_ok=True)

    def job_context(self, owner_prefix: str | None = None) -> JobContext:
        s = self.settings
        return JobContext(
            engine_factory=functools.partial(make_db_engine, s),
            media_dir=s.paths.media_dir,
            recipe=recipe_from(s),
            recipes=recipes_from(s),
            limits=s.limits,
            owner_prefix=owner_prefix or worker_id(),
            lease_s=s.jobs.lease_s,
            max_attempts=s.jobs.max_attempts,
            retry_delay_s=s.jobs.retry_delay_s,
            max_retry_delay_s=s.jobs.max_retry_delay_s,
            grace_s=s.jobs.grace_s,
            schedule=lambda image_id, delay, lane=None: self.tasks.enqueue_images([image_id], delay=delay,
                                                                                   lane=lane),
            large_pixels=s.imaging.large_pixels,
            large_slots=s.imaging.large_slots,
            lanes_dir=s.paths.data_dir / "lanes",
            encode_threads=s.imaging.encode_threads,
            fetch_limits=s.fetch,
            extras={"embedding": s.embeddings, "search": s.search},
            make_vector_store=functools.partial(make_vector_store, s.embeddings),
            make_embedder=functools.partial(make_embedder, s.embeddings, recipes_from(s), s.limits),
        )

    def install_context(self, owner_prefix: str | None = None) -> JobContext:
        OUTAGES.configure(self.settings.outage)
        ctx = self.job_context(owner_prefix)
        context.install(ctx)
        self._context = ctx
        return ctx

    @property
    def duty_env(self) -> DutyEnv:
        s = self.settings
        return duties.DutyEnv(settings=s.maintenance, media_dir=s.paths.media_dir,
                              queue_db=sqlite_queue_path(s.queue.url),
                              delete_embeddings=self.delete_vectors,
                              optimize_vectors=self.optimize_vectors,
                              sqlite_database=is_sqlite(s.database.url))

    def close(self) -> None:
        if self._context is not None:
            self._context.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def make_db_engine(settings: Settings) -> Engine:
    db = settings.database
    path = sqlite_file(db.url)
    if path is not None:
        settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    return make_engine(db.url, SqliteTuning(busy_timeout_ms=db.busy_timeout_ms,
                                            cache_size_kib=db.cache_size_kib))


def make_vector_store(cfg: EmbeddingSettings) -> VectorStore:
    """The one place a VectorStore is built from the settings."""
    from jobs.embeddings.store import IndexSettings, VectorStore  # LanceDB is a slow import: only when used

    return VectorStore(
        cfg.lancedb_dir, read_consistency_s=cfg.read_consistency_s, keep_versions_s=cfg.keep_versions_s,
        index=IndexSettings(threshold_rows=cfg.index_threshold_rows, index_type=cfg.index_type),
    )


def make_embedder(cfg: EmbeddingSettings, recipes: Mapping[str, Recipe] | None = None,
                  limits: Limits | None = None) -> Embedder:
    """The configured embedder (``local`` or ``http``).

    ``local`` decodes a file as the image job did under the row's recipe (``recipes``, ``limits``),
    so a vector made from the file equals the one the job made inline.
    """
    if cfg.embedder == "local":
        from jobs.embeddings.embedders.local import LocalEmbedder, file_loader

        return LocalEmbedder(file_loader(recipes, limits))
    from jobs.embeddings.embedders import make_embedder as build_embedder

    return build_embedder(cfg.embedder, cfg.http)


def recipe_from(settings: Settings) -> Recipe:
    """The recipe ``default`` (``[variants]``)."""
    return recipes_from(settings)[DEFAULT_RECIPE]


def recipes_from(settings: Settings) -> dict[str, Recipe]:
    """Every recipe by name: ``default`` from ``[variants]``, then each ``[recipes.NAME]``."""
    im = settings.imaging
    tables = {DEFAULT_RECIPE: settings.variants, **settings.recipes}
    return {name: to_recipe(name, table, keep_gps=im.keep_gps, animated_webp=im.animated_webp)
            for name, table in tables.items()}


def lane_rule(settings: Settings) -> tuple[Limits, int]:
    """What intake needs to put an image in its lane: the limits and the large-lane threshold."""
    return settings.limits, settings.imaging.large_pixels


def worker_id() -> str:
    """An id for this worker daemon: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid7()[-6:]}"


def build(settings: Settings) -> App:
    huey = make_huey(settings.queue)
    app = App(settings=settings, huey=huey, tasks=tasks.register(huey, settings.queue.url))
    app.duties = duties.register(huey, app.duty_env, lambda: context.current().engine)
    return app

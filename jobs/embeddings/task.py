"""Per-process runtime of the embedding step for the huey tasks.

Each worker process builds its own embedder and LanceDB connection on first
use (they must not cross a fork) and reuses them afterwards. The trigger after
an image completes is debounced per process: one scheduled run covers every
image completed within ``delay_after_complete_s``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from jobs.context import JobContext
from jobs.embeddings.settings import EmbeddingSettings

log = logging.getLogger(__name__)

_runtime: dict[str, Any] = {}
_lock = threading.Lock()
_last_trigger = {"at": 0.0}


def settings_of(ctx: JobContext) -> EmbeddingSettings | None:
    cfg = ctx.extras.get("embedding")
    return cfg if isinstance(cfg, EmbeddingSettings) and cfg.enabled else None


def run(ctx: JobContext) -> Any:
    """Run the embedding step with this process's embedder and store."""
    from jobs.embeddings.step import StepResult, run_step

    cfg = settings_of(ctx)
    if cfg is None or ctx.make_vector_store is None or ctx.make_embedder is None:
        return StepResult("disabled")
    with _lock:
        fresh = _runtime.get("pid") != os.getpid() or _runtime.get("cfg") != cfg
    if fresh:
        # Making the store imports LanceDB (~0.9 s of CPU, ~150 MB): a process that finds the step held
        # by another one (the usual case with several workers) skips without it, as run_step would.
        from jobs.embeddings import lease
        from jobs.embeddings.step import LEASE_NAME, held_elsewhere

        current = lease.state(ctx.engine, LEASE_NAME)
        if not lease.is_free(current, time.time()):
            return held_elsewhere(current)
    with _lock:
        if _runtime.get("pid") != os.getpid() or _runtime.get("cfg") != cfg:
            _runtime.update(pid=os.getpid(), cfg=cfg, store=ctx.make_vector_store(), embedder=ctx.make_embedder())
        store, embedder = _runtime["store"], _runtime["embedder"]
    return run_step(ctx.engine, store, embedder, cfg, ctx.media_dir, ctx.owner, search=ctx.extras.get("search"))


def trigger_after_complete(ctx: JobContext, schedule: Callable[[float], None],
                           queue_idle: Callable[[], bool] | None = None) -> None:
    """Schedule a run shortly after an image completed, at most once per delay window.

    While images keep coming, one run ``delay_after_complete_s`` later covers
    every image completed in that window (few, larger LanceDB writes). When
    ``queue_idle`` says nothing more is queued, the batch is over: the run is
    asked for now (``schedule(0)``) instead of at the end of the window, so
    the last image of a batch does not wait the whole window for its vector.
    At most one such run per completion of the jobs still in hand, and a run
    that finds nothing to do costs one query.
    """
    cfg = settings_of(ctx)
    if cfg is None:
        return
    now = time.monotonic()
    idle = queue_idle is not None and queue_idle()
    with _lock:
        if not idle and now - _last_trigger["at"] < cfg.delay_after_complete_s:
            return
        _last_trigger["at"] = now
    schedule(0.0 if idle else cfg.delay_after_complete_s)

"""When the embedding step is asked for after an image completes.

While images keep coming, one run per ``delay_after_complete_s`` window covers
every image completed in it; once the queue is empty the batch is over and
the run is asked for at once (``schedule(0)``), so the last image of a batch
does not wait the window out for its vector. The queue here is the
installation's real huey queue (SQLite file), made busy by a real message.
"""

from __future__ import annotations

import dataclasses

import pytest

from jobs.embeddings import lease as embedding_lease
from jobs.embeddings import task as embedding_task
from jobs.embeddings.step import LEASE_NAME
from worker.app import App


@pytest.fixture
def fresh_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(embedding_task._last_trigger, "at", 0.0)


def _idle(app: App) -> bool:
    return app.huey.pending_count() == 0


@pytest.mark.usefixtures("fresh_window")
def test_busy_queue_batches_and_empty_queue_asks_for_the_run_at_once(app: App) -> None:
    ctx = app.job_context()
    window = embedding_task.settings_of(ctx).delay_after_complete_s
    asked: list[float] = []
    app.tasks.enqueue_images(["01-some-other-image"])  # another image still waits
    assert not _idle(app)

    embedding_task.trigger_after_complete(ctx, asked.append, queue_idle=lambda: _idle(app))
    embedding_task.trigger_after_complete(ctx, asked.append, queue_idle=lambda: _idle(app))
    assert asked == [window]  # one run covers both completions

    app.huey.flush()  # the queue drained: the next completion is the batch's last
    assert _idle(app)
    embedding_task.trigger_after_complete(ctx, asked.append, queue_idle=lambda: _idle(app))
    assert asked == [window, 0.0]


@pytest.mark.usefixtures("fresh_window")
def test_without_a_queue_check_the_window_is_kept(app: App) -> None:
    ctx = app.job_context()
    asked: list[float] = []
    embedding_task.trigger_after_complete(ctx, asked.append)
    embedding_task.trigger_after_complete(ctx, asked.append)
    assert asked == [embedding_task.settings_of(ctx).delay_after_complete_s]


def test_a_process_that_finds_the_step_held_elsewhere_skips_without_making_the_store(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Making the store imports LanceDB: a worker whose run finds the lease taken never pays for it."""
    monkeypatch.setattr(embedding_task, "_runtime", {})  # this process has built nothing yet
    base = app.job_context()
    made: list[str] = []

    def store() -> object:
        made.append("store")
        assert base.make_vector_store is not None
        return base.make_vector_store()

    def embedder() -> object:
        made.append("embedder")
        assert base.make_embedder is not None
        return base.make_embedder()

    ctx = dataclasses.replace(base, make_vector_store=store, make_embedder=embedder)
    assert embedding_lease.acquire(app.engine, LEASE_NAME, "another-worker/1", 60) is not None
    assert embedding_task.run(ctx).outcome == "skipped"
    assert made == []
    embedding_lease.release(app.engine, LEASE_NAME, "another-worker/1")
    assert embedding_task.run(ctx).outcome == "done"
    assert made == ["store", "embedder"]
    assert embedding_lease.acquire(app.engine, LEASE_NAME, "another-worker/1", 60) is not None
    assert embedding_task.run(ctx).outcome == "skipped"  # built once: run_step itself finds the lease taken
    assert made == ["store", "embedder"]

"""The embedding step: give every completed image a vector, in batches, one writer at a time.

:func:`run_step` is a plain function; ``jobs/tasks.py`` wraps it in a huey
task (enqueued a moment after images complete) and a periodic task. One run:

1. takes lease ``embedding`` (compare-and-set; a second run at the same time
   returns ``skipped`` and writes nothing);
2. repeatedly takes up to ``batch_size`` completed images lacking a vector
   for the configured model, embeds them (a row the image job already
   embedded with this model brings its vector: no file is opened for it,
   see :mod:`jobs.embeddings.inline`), and upserts the batch into LanceDB
   in ONE write, then records ``embedding_model``/``embedded_at`` and any
   near-duplicate (``duplicate_of``/``duplicate_score``) on the rows;
3. when the model covers every image, drops other models' tables (a model
   switch has finished: until then ``similar`` kept using the old vectors);
4. optimizes the vector tables every ``optimize_interval_s``.

Before step 2 it audits the store (:mod:`jobs.embeddings.audit`) every
``audit_interval_s``, and at once when the store holds fewer vectors of the
model than rows claim (a deleted directory) or the previous run's store
write failed: rows claiming a vector the store lacks are
embedded again by this very run, a store that cannot be read is started anew.

Embedder down (timeouts, 429/5xx): images stay ``completed`` without a
vector, the lease is held as an outage marker for an exponential backoff, and
one WARNING is logged per outage (plus one INFO when it ends). An image the
embedder refuses (unreadable, 400, NaN vector) is recorded as refused and
skipped; a refused *configuration* (401/403/404, wrong dimension) backs off
like an outage and logs one ERROR.

>>> result = run_step(engine, store, LocalEmbedder(), EmbeddingSettings(), media_dir, "me")  # doctest: +SKIP
>>> result.outcome, result.embedded  # doctest: +SKIP
('done', 64)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from jobs import media
from jobs.backoff import Backoff
from jobs.embeddings import audit, inline, lease, rows, search_index
from jobs.embeddings.embedders import (
    EmbedderError,
    EmbedderRejected,
    EmbedderUnavailable,
    EmbedInput,
    InputRejected,
)
from jobs.embeddings.embedders.base import Embedder
from jobs.embeddings.settings import EmbeddingSettings
from jobs.embeddings.store import VectorStore, VectorStoreError
from jobs.embeddings.text import SearchSettings

log = logging.getLogger(__name__)

LEASE_NAME = "embedding"
STORE_TROUBLE = "store"  # outage kind of a failed LanceDB write: the next run audits the store first


@dataclass(frozen=True)
class StepResult:
    outcome: str  # done | skipped | backoff | outage | misconfigured | disabled
    embedded: int = 0
    refused: int = 0
    duplicates: int = 0
    remaining: int = 0
    dropped_models: tuple[str, ...] = ()
    optimized: bool = False
    audited: audit.AuditResult | None = None  # the vector store audit, when this run made one


def held_elsewhere(current: lease.LeaseState | None) -> StepResult:
    """The result of a run that found the step's lease taken: an outage's backoff, or another process's run."""
    return StepResult("backoff" if current is not None and current.outages else "skipped")


def run_step(engine: Engine, store: VectorStore, embedder: Embedder, settings: EmbeddingSettings,
             media_dir: Path, owner: str, *, search: SearchSettings | None = None,
             audit_now: bool = False) -> StepResult:
    """One run of the embedding step (see the module docstring); ``search``: what rows make searchable.

    ``audit_now``: audit the vector store first whether or not it is due
    (``darkroom reprocess --vectors``).
    """
    started = time.perf_counter()
    search = search or SearchSettings()
    if not settings.enabled:
        return StepResult("disabled")
    before = lease.acquire(engine, LEASE_NAME, owner, settings.lease_s)
    if before is None:
        return held_elsewhere(lease.state(engine, LEASE_NAME))
    model = embedder.model
    embedded = refused = dups = 0
    last_run = before.last_run_at
    checked: audit.AuditResult | None = None
    try:
        if audit_now or before.outage_kind == STORE_TROUBLE or audit.due(engine, settings.audit_interval_s) \
                or audit.looks_short(engine, store, model):
            checked = audit.run_recorded(engine, store)
        for _ in range(settings.max_batches_per_run):
            batch = rows.candidates(engine, model, settings.batch_size)
            if not batch:
                break
            e, r, d = _embed_batch(engine, store, embedder, settings, media_dir, batch, search)
            embedded, refused, dups = embedded + e, refused + r, dups + d
            if not lease.renew(engine, LEASE_NAME, owner, settings.lease_s):
                log.warning("embedding: lease lost mid-run; stopping")
                return StepResult("skipped", embedded, refused, dups, audited=checked)
        table = store.lance_table(model)
        if table is not None:  # search columns, backfill of old tables, full-text and filter indexes
            search_index.upkeep(engine, table, search)
            store.indices_changed(model)  # this process's searches see new indexes at once
    except (EmbedderUnavailable, EmbedderRejected, VectorStoreError) as exc:
        partial = StepResult("", embedded, refused, dups, audited=checked)
        return _outage(engine, owner, before, exc, settings, partial)
    except BaseException:
        lease.release(engine, LEASE_NAME, owner)
        raise
    if before.outages:
        log.info("embedding: embedder is back after %d failed run(s)", before.outages)
    remaining = rows.lacking_count(engine, model)
    dropped: tuple[str, ...] = ()
    optimized = False
    try:
        if remaining == 0:
            dropped = finish_switch(store, model)
        if last_run is None or time.time() - last_run >= settings.optimize_interval_s or dropped:
            store.optimize()
            optimized, last_run = True, time.time()
    finally:
        lease.release(engine, LEASE_NAME, owner, last_run_at=last_run)
    if embedded or refused:
        seconds = time.perf_counter() - started
        log.info("embedding: %d embedded, %d refused, %d near-duplicates, %d waiting (model %s) in %.3f s",
                 embedded, refused, dups, remaining, model, seconds,
                 extra={"embedded": embedded, "refused": refused, "remaining": remaining, "model": model,
                        "seconds": round(seconds, 3)})
    return StepResult("done", embedded, refused, dups, remaining, dropped, optimized, checked)


def _embed_batch(engine: Engine, store: VectorStore, embedder: Embedder, settings: EmbeddingSettings,
                 media_dir: Path, batch: Sequence[rows.Candidate], search: SearchSettings) -> tuple[int, int, int]:
    vectors, refusals = vectors_for(embedder, media_dir, batch)
    refused = {batch[i].id: reason for i, reason in refusals.items()}
    ok = [i for i in range(len(batch)) if i not in refusals]
    ids = [batch[i].id for i in ok]
    matrix = np.stack([vectors[i] for i in ok]) if ok else np.empty((0, embedder.dim), np.float32)
    attributes = search_index.attributes_for(engine, ids, search)  # text and filter columns
    store.upsert(embedder.model, ids, matrix, attributes)  # ONE write for the whole batch
    done = near_duplicates(store, embedder.model, ids, matrix, settings.duplicate_threshold)
    lost = rows.record_embedded(engine, embedder.model, done)
    if lost:  # deleted (or reprocessed) while we embedded: do not keep orphan vectors
        store.delete(lost, model=embedder.model)
    if refused:
        for image_id, reason in refused.items():
            log.warning("embedding: image %s refused: %s", image_id, reason, extra={"image_id": image_id})
        rows.record_refused(engine, embedder.model, refused)
    return len(done) - len(lost), len(refused), sum(1 for d in done if d.duplicate_of)


def vectors_for(embedder: Embedder, media_dir: Path, batch: Sequence[rows.Candidate]
                ) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Vectors of ``batch`` by position (and refusals): a row's pending vector when the image job made
    it with this model, else the embedder's, from the file (see :func:`embed_isolating`)."""
    vectors: dict[int, np.ndarray] = {}
    todo: list[int] = []
    for i, c in enumerate(batch):
        ready = inline.stored(c.pending_vector, c.pending_vector_model, embedder.model, embedder.dim)
        if ready is None:
            todo.append(i)
        else:
            vectors[i] = ready
    if not todo:
        return vectors, {}
    inputs = [EmbedInput(media.resolve_original(media_dir, batch[i].original_path),
                         text=rows.caption_text(batch[i].filename, batch[i].metadata), recipe=batch[i].recipe)
              for i in todo]
    embedded, refusals = embed_isolating(embedder, inputs)
    vectors.update((todo[j], v) for j, v in embedded.items())
    return vectors, {todo[j]: reason for j, reason in refusals.items()}


def embed_isolating(embedder: Embedder, inputs: Sequence[EmbedInput]) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Embed ``inputs``; an input the embedder refuses is set aside, the rest still embedded.

    Returns (vectors by position, refusal reasons by position). Outages and
    configuration refusals propagate: they are not the input's fault.
    """
    vectors: dict[int, np.ndarray] = {}
    refusals: dict[int, str] = {}
    pending = [list(range(len(inputs)))]
    while pending:
        group = pending.pop()
        if not group:
            continue
        try:
            out = embedder.embed([inputs[i] for i in group])
        except InputRejected as exc:
            if exc.index is not None and 0 <= exc.index < len(group):
                refusals[group[exc.index]] = str(exc)
                pending.append(group[:exc.index] + group[exc.index + 1:])
            elif len(group) == 1:
                refusals[group[0]] = str(exc)
            else:  # the server refused the batch without saying which: halve it
                half = len(group) // 2
                pending += [group[:half], group[half:]]
            continue
        vectors.update(zip(group, out))
    return vectors, refusals


def near_duplicates(store: VectorStore, model: str, ids: Sequence[str], matrix: np.ndarray,
                    threshold: float) -> list[rows.Embedded]:
    """For each new vector, its nearest earlier image when at least ``threshold`` similar.

    "Earlier" keeps the relation one-way: within a batch an image can only be
    the duplicate of one that comes before it (batches are in completion order).
    """
    position = {image_id: i for i, image_id in enumerate(ids)}
    out = []
    for i, (image_id, vec) in enumerate(zip(ids, matrix)):
        best: tuple[str, float] | None = None
        for hit in store.search(model, vec, limit=5, exclude=image_id):
            if hit.similarity < threshold:
                break
            if position.get(hit.image_id, -1) > i:
                continue  # a later image of this batch: it will point at us instead
            best = (hit.image_id, round(hit.similarity, 6))
            break
        out.append(rows.Embedded(image_id, *(best or (None, None))))
    return out


def finish_switch(store: VectorStore, model: str) -> tuple[str, ...]:
    """``model`` covers every image: drop the tables of other models."""
    old = tuple(m for m in store.models() if m != model)
    for m in old:
        store.drop(m)
        log.info("embedding: model %s now covers every image; dropped vectors of %s", model, m)
    return old


def _outage(engine: Engine, owner: str, before: lease.LeaseState, exc: Exception,
            settings: EmbeddingSettings, partial: StepResult) -> StepResult:
    misconfigured = isinstance(exc, EmbedderRejected)
    kind = "misconfigured" if misconfigured else STORE_TROUBLE if isinstance(exc, VectorStoreError) else "outage"
    n = before.outages + 1
    wait = Backoff(settings.backoff_s, settings.max_backoff_s).delay(n, getattr(exc, "retry_after_s", None))
    if before.outages == 0 or before.outage_kind != kind:  # log once per outage, not per run or image
        if kind == STORE_TROUBLE:
            log.warning("embedding: the vector store failed (%s); images wait, the next run in %.0f s "
                        "audits the store first", exc, wait)
        elif misconfigured:
            log.error("embedding: the embedder refused our requests (%s); images wait, retrying in %.0f s",
                      exc, wait)
        else:
            log.warning("embedding: embedder unavailable (%s); images stay completed and wait, "
                        "retrying in %.0f s with backoff", exc, wait)
    else:
        log.debug("embedding: still failing (%d runs): %s", n, exc)
    lease.hold_for_outage(engine, LEASE_NAME, owner, n, kind, time.time() + wait)
    return StepResult(kind, partial.embedded, partial.refused, partial.duplicates, audited=partial.audited)


__all__ = [
    "EmbedderError",
    "EmbeddingSettings",
    "StepResult",
    "embed_isolating",
    "finish_switch",
    "near_duplicates",
    "run_step",
    "vectors_for",
]

"""What ``darkroom status`` reports, as one JSON-ready dict.

The keys are stable and documented in ``docs/status.md``; ``status_version``
changes only when a key is removed or changes meaning (new keys may appear).

>>> report = gather(app)                       # doctest: +SKIP
>>> report["images"]["failed"], report["queue"]["queued"]   # doctest: +SKIP
(2, 0)
>>> print(render_text(report))                 # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jobs.embeddings.rows import claim_counts, embedding_counts
from jobs.queue import queue_depth
from worker.app import App, make_vector_store
from worker.status import figures
from worker.status.health import media_state
from worker.status.vector_counts import CACHE_NAME, cached_rows
from worker.status.workers import live_workers, stale_count

STATUS_VERSION = 1


def vectors_dir(app: App) -> Path:
    """The LanceDB directory: ``embeddings.lancedb_dir``."""
    return app.settings.embeddings.lancedb_dir


def workers_report(app: App, now: float) -> dict[str, Any]:
    hb = app.settings.heartbeat
    live = live_workers(app.engine, hb.timeout_s, now)
    return {
        "timeout_s": hb.timeout_s,
        "live": [{
            "id": w.id, "host": w.host, "pid": w.pid, "version": w.version,
            "concurrency": w.concurrency, "started_at": w.started_at,
            "heartbeat_at": w.heartbeat_at, "heartbeat_age_s": round(now - w.heartbeat_at, 1),
            "processing": [{"image_id": i, "filename": f,
                            "for_s": None if t is None else round(now - t, 1)}
                           for i, f, t in w.processing],
        } for w in live],
        "stale": stale_count(app.engine, hb.timeout_s, now),
    }


def maintenance_report(app: App, now: float) -> list[dict[str, Any]]:
    return [{
        "name": r.name, "started_at": r.started_at, "finished_at": r.finished_at,
        "duration_s": None if r.duration_s is None else round(r.duration_s, 3),
        "age_s": round(now - r.started_at, 1), "outcome": r.outcome, "ok": r.ok,
        "figures": r.figures, "error": r.error, "host": r.host,
    } for r in figures.last_duty_runs(app.engine)]


def vector_claims(claimed: dict[str, int], vectors: dict[str, Any] | None) -> dict[str, dict[str, int | None]]:
    """Per model: rows claiming a vector, and vectors the store holds (None when it cannot be read)."""
    models = {} if vectors is None else vectors.get("models") or {}
    unreadable = vectors is not None and vectors.get("error") is not None
    return {m: {"claimed": n, "present": None if unreadable else int(models.get(m, 0))}
            for m, n in sorted(claimed.items())}


def gather(app: App, failure_groups: int = 10, examples: int = 3) -> dict[str, Any]:
    """Everything ``status`` shows; see docs/status.md for each key."""
    now = time.time()
    engine = app.engine
    recipes = figures.recipe_counts(engine)  # one scan; the totals are its sums
    totals = {k: sum(c[k] for c in recipes.values()) for k in recipes["default"]}
    out: dict[str, Any] = {"status_version": STATUS_VERSION, "generated_at": round(now, 3),
                           "images": totals, "recipes": recipes}
    try:
        out["queue"] = queue_depth(app.huey)
    except Exception as exc:  # the queue store being down is itself a status
        from jobs.queue import unreachable_queue

        out["queue"] = {"error": str(unreachable_queue(exc, app.settings.queue.url) or exc)}
    age = figures.oldest_pending_age_s(engine, now)
    out["oldest_pending_age_s"] = None if age is None else round(age, 1)
    out["throughput"] = figures.throughput(engine, now)
    out["failures"] = [{k: v for k, v in g.items() if k != "last_at"}
                       for g in figures.failure_groups(engine, failure_groups, examples)]
    out["workers"] = workers_report(app, now)
    out["maintenance"] = maintenance_report(app, now)
    out["storage"] = {"database": figures.database_storage(engine),
                      "queue": figures.queue_storage(app.settings.queue.url)}
    media = media_state(app.settings.paths.media_dir)
    out["media"] = {"path": media.path, "free_bytes": media.free_bytes, "writable": media.writable,
                    "error": media.error, "min_free_bytes": int(app.settings.health.media_min_free_mb * 2**20)}
    # Through a cache: LanceDB is imported only when a table changed. A new handle for each read
    # (a long-lived one may lag by read_consistency_s, and its count would be kept as current).
    directory = vectors_dir(app)
    out["vectors"] = cached_rows(directory, app.settings.paths.data_dir / CACHE_NAME, lambda: figures.vector_rows(
        directory, lambda: make_vector_store(app.settings.embeddings)))
    out["vector_claims"] = vector_claims(claim_counts(engine), out["vectors"])
    if app.settings.embeddings.enabled:
        model = app.settings.embeddings.model_name()
        out["embeddings"] = {"model": model, **embedding_counts(engine, model)}
    return out


# --- text -----------------------------------------------------------------------


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def render_text(report: dict[str, Any]) -> str:
    c = report["images"]
    lines = [
        "images: " + "  ".join(f"{k} {c[k]}" for k in ("pending", "processing", "completed", "failed")),
    ]
    for name, rc in (report.get("recipes") or {}).items():
        lines.append(f"  recipe {name}: " + "  ".join(
            f"{k} {rc.get(k, 0)}" for k in ("pending", "processing", "completed", "failed")))
    q = report.get("queue", {})
    if "error" in q:
        lines.append(f"queue: {q['error']}" if " unreachable: " in q["error"]
                     else f"queue: unreachable ({q['error']})")
    else:
        lines.append(f"queue: {q.get('queued', 0)} queued, {q.get('scheduled', 0)} scheduled"
                     + (f"; oldest pending {human_age(report['oldest_pending_age_s'])}"
                        if report.get("oldest_pending_age_s") is not None else ""))
    if report.get("throughput"):
        lines.append("throughput: " + "  ".join(
            f"{t['completed']} in {t['window_s'] // 60}m ({t['per_minute']}/min)" for t in report["throughput"]))
    workers = report.get("workers")
    if workers is not None:
        lines.append(f"workers: {len(workers['live'])} live"
                     + (f", {workers['stale']} stopped heartbeating" if workers["stale"] else ""))
        for w in workers["live"]:
            lines.append(f"  {w['id']}  {w['host']} pid {w['pid']}  x{w['concurrency']}  "
                         f"v{w['version']}  up {human_age(w['heartbeat_at'] - w['started_at'])}  "
                         f"beat {human_age(w['heartbeat_age_s'])} ago")
            for p in w["processing"]:
                lines.append(f"      processing {p['image_id']} ({p['filename']}) for {human_age(p['for_s'])}")
    if "embeddings" in report:
        e = report["embeddings"]
        lines.append(f"embeddings ({e['model']}): {e['embedded']} embedded, {e['waiting']} waiting, "
                     f"{e['refused']} refused, {e['duplicates']} near-duplicates")
    for model, c in (report.get("vector_claims") or {}).items():
        present = "the store cannot be read" if c["present"] is None else f"{c['present']} in the store"
        short = c["present"] is None or c["present"] < c["claimed"]
        lines.append(f"vectors claimed ({model}): {c['claimed']} rows, {present}"
                     + ("; refill: darkroom reprocess --vectors (the worker's audit also does)" if short else ""))
    if report.get("failures"):
        lines.append("failures:")
        for f in report["failures"]:
            lines.append(f"  {f['count']:>5} x {f['error']}")
            lines.append(f"        e.g. {', '.join(f['example_ids'])}")
    if report.get("maintenance"):
        lines.append("maintenance (last run of each duty):")
        for m in report["maintenance"]:
            figs = ", ".join(f"{k}={v}" for k, v in (m["figures"] or {}).items())
            took = "" if m["duration_s"] is None else f" in {m['duration_s']:.2f}s"
            lines.append(f"  {m['name']:<12} {m['outcome']:<8} {human_age(m['age_s'])} ago{took}"
                         + (f"  {figs}" if figs else "") + (f"  error: {m['error']}" if m["error"] else ""))
    storage = report.get("storage")
    if storage:
        db, qs = storage["database"], storage["queue"]
        lines.append(f"database: {db['backend']} {human_bytes(db['db_bytes'])}"
                     + (f", WAL {human_bytes(db['wal_bytes'])}" if db.get("wal_bytes") is not None else "")
                     + f"; queue: {qs['backend']} {human_bytes(qs['db_bytes'])}"
                     + (f", WAL {human_bytes(qs['wal_bytes'])}" if qs.get("wal_bytes") is not None else ""))
    m = report.get("media")
    if m:
        low = m["free_bytes"] is not None and m["free_bytes"] < m["min_free_bytes"]
        lines.append(f"media: {m['path']}: {human_bytes(m['free_bytes'])} free"
                     + (" (below health.media_min_free_mb)" if low else "")
                     + (", writable" if m["writable"] else f", NOT writable: {m['error']}"))
    vec = report.get("vectors")
    if vec:
        lines.append(f"vectors: {vec['rows']} rows" + "".join(
            f"  {m}={n}" for m, n in sorted(vec["models"].items())))
    return "\n".join(lines)

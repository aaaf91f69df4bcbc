"""The status page as HTML: a pure function of the figures.

Every value that reaches the page goes through :func:`esc`: file names,
errors and worker ids are data written by users and other programs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from worker.status.report import human_age, human_bytes
from worker.status.web.parts import esc, search_form


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str, css_id: str) -> str:
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted" id="{css_id}">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f'<table id="{css_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _td(value: Any, cls: str = "") -> str:
    return f'<td class="{cls}">{esc(value)}</td>' if cls else f"<td>{esc(value)}</td>"


def render(report: dict[str, Any], failures: list[dict[str, Any]], completed: list[dict[str, Any]],
           refresh_s: int = 0) -> str:
    """The whole page. ``report`` is ``worker.status.report.gather``; the lists come from ``figures``."""
    now = report.get("generated_at", time.time())
    counts = report["images"]
    q = report.get("queue", {})
    cards = [(k, counts[k]) for k in ("pending", "processing", "completed", "failed")]
    queue_text = (f"unreachable: {q['error']}" if "error" in q
                  else f"{q.get('queued', 0)} queued, {q.get('scheduled', 0)} scheduled")
    thr = " · ".join(f"{t['completed']} in {t['window_s'] // 60} min" for t in report.get("throughput", []))
    card_html = "".join(
        f'<div class="card {esc(k)}" id="count-{esc(k)}"><div class="n">{esc(n)}</div>'
        f'<div class="k">{esc(k)}</div></div>' for k, n in cards)

    statuses = ("pending", "processing", "completed", "failed")
    recipe_rows = [[_td(name, "id"), *(_td(rc.get(k, 0)) for k in statuses)]
                   for name, rc in (report.get("recipes") or {}).items()]
    workers = report.get("workers", {"live": [], "stale": 0, "timeout_s": 0})
    stale_text = f", {workers['stale']} stopped heartbeating" if workers["stale"] else ""
    worker_rows = []
    for w in workers["live"]:
        doing = "; ".join(f"{p['image_id']} ({p['filename']})" for p in w["processing"]) or "idle"
        worker_rows.append([
            f'<td class="id">{esc(w["id"])}</td>', _td(w["host"]), _td(w["pid"]), _td(w["concurrency"]),
            _td(w["version"]), _td(human_age(w["heartbeat_age_s"]) + " ago"), _td(doing)])

    failure_rows = [[
        f'<td class="id">{esc(f["id"])}</td>', _td(f["filename"]), _td(f["error"], "error"),
        _td(f["attempts"]), _td(_when(f["failed_at"]))] for f in failures]
    group_rows = [[_td(g["count"]), _td(g["error"], "error"),
                   f'<td class="id">{esc(", ".join(g["example_ids"]))}</td>']
                  for g in report.get("failures", [])]

    figures_html = []
    for c in completed:
        v = c.get("variant")
        if v is None:
            img = '<div class="muted">no variant</div>'
        else:
            src = "/variants/" + quote(str(v["id"]), safe="")
            img = (f'<img src="{esc(src)}" alt="{esc(c["filename"])}" loading="eager" '
                   f'data-image-id="{esc(c["id"])}">')
        figures_html.append(
            f'<figure>{img}<figcaption>{esc(c["filename"])}<br><span class="muted">'
            f'{esc(c["width"])}x{esc(c["height"])} · {esc(_when(c["completed_at"]))}</span>'
            f'</figcaption></figure>')
    grid = (f'<div class="grid" id="completed">{"".join(figures_html)}</div>' if figures_html
            else '<p class="muted" id="completed">nothing completed yet</p>')

    maint_rows = [[
        _td(m["name"]), _td(m["outcome"], "" if m["ok"] else "error"), _td(_when(m["started_at"])),
        _td("-" if m["duration_s"] is None else f"{m['duration_s']:.2f}s"),
        _td(", ".join(f"{k}={v}" for k, v in (m["figures"] or {}).items())),
        _td(m["error"] or "", "error")] for m in report.get("maintenance", [])]

    st = report.get("storage", {})
    storage_rows = [[_td(name), _td(info.get("backend")), _td(human_bytes(info.get("db_bytes"))),
                     _td(human_bytes(info.get("wal_bytes")))] for name, info in st.items()]
    vec = report.get("vectors")
    vec_html = "" if not vec else f'<p>vectors: {esc(vec.get("rows"))} rows</p>'
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s > 0 else ""
    oldest = report.get("oldest_pending_age_s")

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}<title>Darkroom status</title>
<link rel="stylesheet" href="/static/style.css">
</head><body>
<header><h1>Darkroom</h1>{search_form()}<span class="stamp">status at {esc(_when(now))} · read-only</span></header>
<main>
<section><div class="cards">{card_html}</div>
<p>queue: {esc(queue_text)}{esc(f"; oldest pending {human_age(oldest)}" if oldest is not None else "")}
<br>throughput: {esc(thr)}</p></section>
<section><h2>Per recipe</h2>
{_table(["recipe", *statuses], recipe_rows, "no images yet", "recipes")}</section>
<section><h2>Workers ({len(workers["live"])} live{esc(stale_text)})</h2>
{_table(["id", "host", "pid", "processes", "version", "heartbeat", "processing now"], worker_rows,
        "no live worker", "workers")}</section>
<section><h2>Recent failures</h2>
{_table(["id", "file", "error", "attempts", "failed at"], failure_rows, "no failures", "failures")}</section>
<section><h2>Failures by error</h2>
{_table(["count", "error", "examples"], group_rows, "no failures", "failure-groups")}</section>
<section><h2>Recently completed</h2>{grid}</section>
<section><h2>Maintenance (last run of each duty)</h2>
{_table(["duty", "outcome", "started", "took", "figures", "error"], maint_rows,
        "no maintenance run recorded yet", "maintenance")}</section>
<section><h2>Storage</h2>
{_table(["store", "backend", "size", "WAL"], storage_rows, "-", "storage")}{vec_html}</section>
</main></body></html>
"""

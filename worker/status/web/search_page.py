"""The search page and the page of one image, as HTML: pure functions of the facts.

Like the status page (:mod:`worker.status.web.page`), every value goes
through :func:`esc`: file names, captions, errors and ids are data written by
users and other programs. Links to images quote the id (``/images/<id>``).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

from worker.status.report import human_bytes
from worker.status.web.parts import esc, search_form

CAPTION_KEYS = ("caption", "alt", "title", "description")


def frame(title: str, body: str, query: str = "", mode: str = "auto") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="stylesheet" href="/static/style.css">
</head><body>
<header><h1><a href="/">Darkroom</a></h1>{search_form(query, mode)}<span class="stamp">read-only</span></header>
<main>
{body}
</main></body></html>
"""


def image_link(image_id: str) -> str:
    return "/images/" + quote(str(image_id), safe="")


def thumb(variant_id: str | None, image_id: str, alt: str) -> str:
    if variant_id is None:
        return '<div class="muted noimg">no variant</div>'
    src = "/variants/" + quote(str(variant_id), safe="")
    return f'<img src="{esc(src)}" alt="{esc(alt)}" loading="lazy" data-image-id="{esc(image_id)}">'


def _caption(metadata: dict[str, Any]) -> str:
    for key in CAPTION_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value
    tags = metadata.get("tags")
    return ", ".join(str(t) for t in tags) if isinstance(tags, list) else str(tags or "")


def render_search(query: str, mode: str, result: dict[str, Any] | None, message: str) -> str:
    """The results page: the hits as a grid of thumbnails, or the message (an empty query, a mode refused)."""
    if message:
        body = f'<p class="error" id="search-message">{esc(message)}</p>'
    elif result is None:
        body = '<p class="muted" id="search-message">type words to search the images by</p>'
    elif not result["hits"]:
        body = (f'<p class="muted" id="search-message">no images match {esc(repr(result["query"]))} '
                f'({esc(result["mode"])})</p>')
    else:
        figures = []
        for rank, h in enumerate(result["hits"], 1):
            score = f"{h['score']:.4f}"
            figures.append(
                f'<figure class="hit" data-rank="{rank}"><a href="{esc(image_link(h["id"]))}">'
                f'{thumb(h["variant"], h["id"], h["filename"])}</a>'
                f'<figcaption><a href="{esc(image_link(h["id"]))}">{esc(h["filename"])}</a>'
                f'<br><span class="caption">{esc(_caption(h["metadata"]))}</span>'
                f'<br><span class="muted">score {esc(score)}</span></figcaption></figure>')
        body = (f'<p class="muted" id="search-summary">{len(result["hits"])} hits for '
                f'{esc(repr(result["query"]))} ({esc(result["mode"])})</p>'
                f'<div class="grid" id="results">{"".join(figures)}</div>')
    title = f"{query} - Darkroom search" if query else "Darkroom search"
    return frame(title, f"<section><h2>Search</h2>{body}</section>", query, mode)


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)


def render_image(f: dict[str, Any]) -> str:
    """The page of one image (``worker.status.image_facts.image_facts``)."""
    took = (f"{f['completed_at'] - f['started_at']:.2f} s"
            if f["completed_at"] is not None and f["started_at"] is not None else "-")
    facts = _rows([
        ("id", f["id"]), ("status", f["status"]), ("recipe", f["recipe"]), ("type", f["mime_type"]),
        ("original", f"{f['width'] or '?'}x{f['height'] or '?'}, {human_bytes(f['size'])}"),
        ("created", _when(f["created_at"])), ("completed", _when(f["completed_at"])), ("took", took),
        ("attempts", f["attempts"]), ("taken at", f["taken_at"] or "-"),
        ("embedding", f["embedding_model"] or "-"),
        ("duplicate of", f"{f['duplicate_of']} ({f['duplicate_score']:.3f})" if f["duplicate_of"] else "-"),
    ])
    error = (f'<section><h2>Error</h2><p class="error" id="image-error">{esc(f["error"])}</p></section>'
             if f["error"] else "")
    variant_rows = "".join(
        f'<tr><td>{esc(v["format"])}</td><td>{esc(v["width"])}x{esc(v["height"] or "?")}</td>'
        f'<td>{esc(human_bytes(v["size"]))}</td><td>{thumb(v["id"], f["id"], v["format"] + " " + str(v["width"]))}'
        f"</td></tr>" for v in f["variants"])
    variants = (f'<table id="variants"><thead><tr><th>format</th><th>size</th><th>bytes</th><th>variant</th>'
                f"</tr></thead><tbody>{variant_rows}</tbody></table>" if variant_rows
                else '<p class="muted" id="variants">no variants</p>')
    timings = (f'<table id="timings"><tbody>{_rows(f["timings"])}</tbody></table>' if f["timings"]
               else '<p class="muted" id="timings">no timings recorded</p>')
    if f["placeholder"]:
        placeholder = (f'<img class="placeholder" id="placeholder" src="{esc(image_link(f["id"]))}/placeholder.png" '
                       f'alt="placeholder of {esc(f["filename"])}"><p class="muted">ThumbHash '
                       f'<code>{esc(f["placeholder"])}</code>; dominant colour <code>{esc(f["dominant_color"] or "-")}'
                       f"</code></p>")
    else:
        placeholder = '<p class="muted" id="placeholder">no placeholder</p>'
    near = "".join(
        f'<figure class="near"><a href="{esc(image_link(n["id"]))}">{thumb(n["variant"], n["id"], n["filename"] or "")}'
        f'</a><figcaption><a href="{esc(image_link(n["id"]))}">{esc(n["filename"] or n["id"])}</a><br>'
        f'<span class="muted">similarity {n["similarity"]:.3f}</span></figcaption></figure>'
        for n in f["nearest"])
    nearest = (f'<div class="grid" id="nearest">{near}</div>' if near
               else f'<p class="muted" id="nearest">{esc(f["nearest_note"])}</p>')
    meta = json.dumps(f["metadata"], indent=2, ensure_ascii=False, default=str) if f["metadata"] else "-"
    body = f"""<section><h2 id="image-title">{esc(f["filename"])}</h2>
<table id="facts"><tbody>{facts}</tbody></table></section>
{error}<section><h2>Variants</h2>{variants}</section>
<section><h2>Timings</h2>{timings}</section>
<section><h2>Placeholder</h2>{placeholder}</section>
<section><h2>Metadata</h2><pre id="metadata">{esc(meta)}</pre></section>
<section><h2>Nearest images</h2>{nearest}</section>"""
    return frame(f"{f['filename']} - Darkroom", body)


def render_missing(image_id: str) -> str:
    return frame("no such image - Darkroom",
                 f'<p class="error" id="image-error">no image with id {esc(repr(image_id))}</p>')

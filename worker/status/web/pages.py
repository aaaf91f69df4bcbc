"""The routes of the status server that show single images: ``/search`` and ``/images/<id>``.

:func:`answer` turns a path and query string into ``(status, body, content
type)``; the server (:mod:`worker.status.web.server`) sends it with its
security headers. Ids in paths are percent-decoded and looked up as they are
(an id is text another program may have chosen); nothing here writes.
"""

from __future__ import annotations

import io
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from worker.status import image_facts
from worker.status.web import search_page
from worker.status.web.parts import MODES

if TYPE_CHECKING:
    from worker.app import App

HTML = "text/html; charset=utf-8"
MAX_ID_CHARS = 200
PAGE_LIMIT = 24  # hits on the search page


def answer(app: App, path: str, query_string: str) -> tuple[int, bytes, str]:
    if path == "/search":
        return _search(app, query_string)
    rest = path[len("/images/"):]
    if rest.endswith("/placeholder.png"):
        return _placeholder(app, unquote(rest[: -len("/placeholder.png")]))
    return _image(app, unquote(rest))


def _search(app: App, query_string: str) -> tuple[int, bytes, str]:
    params = parse_qs(query_string, keep_blank_values=True, max_num_fields=10)
    query = params.get("q", [""])[0]
    mode = params.get("mode", ["auto"])[0]
    if mode not in MODES:
        mode = "auto"
    if not query.strip():
        return 200, search_page.render_search(query, mode, None, "").encode(), HTML
    result, message = image_facts.search_hits(app, query, mode, PAGE_LIMIT)
    status = HTTPStatus.BAD_REQUEST if message else HTTPStatus.OK
    return status, search_page.render_search(query, mode, result, message).encode(), HTML


def _image(app: App, image_id: str) -> tuple[int, bytes, str]:
    facts = image_facts.image_facts(app, image_id) if 0 < len(image_id) <= MAX_ID_CHARS else None
    if facts is None:
        return HTTPStatus.NOT_FOUND, search_page.render_missing(image_id[:MAX_ID_CHARS]).encode(), HTML
    return 200, search_page.render_image(facts).encode(), HTML


def _placeholder(app: App, image_id: str) -> tuple[int, bytes, str]:
    from jobs.imaging.placeholder import thumbhash_image

    placeholder = image_facts.placeholder_of(app, image_id) if 0 < len(image_id) <= MAX_ID_CHARS else None
    if not placeholder:
        return HTTPStatus.NOT_FOUND, b"no placeholder\n", "text/plain; charset=utf-8"
    try:
        im = thumbhash_image(placeholder)
    except (ValueError, IndexError):  # binascii.Error is a ValueError: a placeholder written badly
        return HTTPStatus.NOT_FOUND, b"unreadable placeholder\n", "text/plain; charset=utf-8"
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return 200, buf.getvalue(), "image/png"

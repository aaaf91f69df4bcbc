"""Pieces every page of the status server shares: escaping and the search form.

Every value that reaches a page goes through :func:`esc`: file names,
captions, errors and ids are data written by users and other programs.
"""

from __future__ import annotations

import html
from typing import Any

MODES = ("auto", "text", "vector", "hybrid")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def search_form(query: str = "", mode: str = "auto") -> str:
    """The GET form every page carries in its header (the CSP allows ``form-action 'self'``)."""
    options = "".join(f'<option value="{m}"{" selected" if m == mode else ""}>{m}</option>' for m in MODES)
    return (f'<form class="search" id="search-form" action="/search" method="get" role="search">'
            f'<input type="search" name="q" value="{esc(query)}" placeholder="search captions, tags, meaning" '
            f'aria-label="search words" maxlength="1000">'
            f'<select name="mode" aria-label="mode">{options}</select>'
            f'<button type="submit">Search</button></form>')

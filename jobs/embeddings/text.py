"""What search reads from an image: ``[search]`` settings and the searchable text of a row.

A leaf module (it imports nothing of the project): the settings loader, the
embedding step (the one writer of LanceDB) and the query side all use it.

The searchable text of an image is its filename without the extension (with
``_``/``-`` turned into spaces) followed by the metadata keys named in
``[search] fields`` (``tags`` may be a list or a comma string). Metadata
equality filters (``--where key=value``) match ``key=value`` strings the
writer stores with each vector: every top-level scalar value, and every item
of a top-level list.

>>> searchable_text("red_kite-01.jpg", '{"caption": "A kite", "tags": ["bird", "sky"]}')
'red kite 01. A kite. bird, sky'
>>> metadata_pairs('{"user": 42, "tags": "bird, sky", "ok": true}')
['user=42', 'tags=bird', 'tags=sky', 'ok=true']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DEFAULT_FIELDS = ("alt", "caption", "title", "description", "tags")
TEXT_MAX_CHARS = 8_000  # of one image's searchable text
PAIR_MAX_CHARS = 200  # of one stored key=value pair (longer values are not filterable)
LANGUAGES = ("Arabic", "Danish", "Dutch", "English", "Finnish", "French", "German", "Greek", "Hungarian",
             "Italian", "Norwegian", "Portuguese", "Romanian", "Russian", "Spanish", "Swedish", "Tamil",
             "Turkish")


@dataclass(frozen=True)
class SearchSettings:
    """``[search]`` in config.toml."""

    fields: tuple[str, ...] = DEFAULT_FIELDS  # metadata keys whose values are searchable text
    include_filename: bool = True  # the filename without its extension is searchable too
    language: str = "English"  # stemming and stop words of the full-text index
    stem: bool = True  # "kites" finds "kite"
    remove_stop_words: bool = True
    max_query_chars: int = 1_000  # longer queries are cut here (a 10 KB paste is not an error)
    default_limit: int = 10

    def check(self) -> None:
        if any(not f or not isinstance(f, str) for f in self.fields):
            raise ValueError("fields: expected a list of metadata key names")
        if self.language not in LANGUAGES:
            raise ValueError(f"language: expected one of {', '.join(LANGUAGES)}")
        if self.max_query_chars < 1:
            raise ValueError("max_query_chars: expected an integer >= 1")
        if not 1 <= self.default_limit <= 1000:
            raise ValueError("default_limit: expected an integer from 1 to 1000")


def parse_metadata(metadata: str | None) -> dict[str, Any]:
    """The row's metadata JSON as a dict (anything else, or broken JSON, is ``{}``)."""
    if not metadata:
        return {}
    try:
        meta = json.loads(metadata)
    except (json.JSONDecodeError, TypeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def searchable_text(filename: str | None, metadata: str | None,
                    fields: tuple[str, ...] = DEFAULT_FIELDS, include_filename: bool = True) -> str:
    """The full-text of one image (see the module docstring); ``''`` when it has none."""
    meta = parse_metadata(metadata)
    parts: list[str] = []
    if include_filename and filename:
        stem = filename.rsplit(".", 1)[0] if "." in filename.lstrip(".") else filename
        parts.append(stem.replace("_", " ").replace("-", " ").strip())
    for key in fields:
        value = meta.get(key)
        if isinstance(value, (list, tuple)):
            text = ", ".join(str(v) for v in value if isinstance(v, (str, int, float)))
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
        else:
            continue
        if text.strip():
            parts.append(text.strip())
    return ". ".join(p for p in parts if p).replace("\x00", " ")[:TEXT_MAX_CHARS]


def scalar_text(value: Any) -> str | None:
    """How a metadata value is written in a ``key=value`` pair (None: not filterable)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    return None


def metadata_pairs(metadata: str | None) -> list[str]:
    """The ``key=value`` strings a ``--where key=value`` filter matches (see the module docstring)."""
    out: list[str] = []
    for key, value in parse_metadata(metadata).items():
        if isinstance(value, str) and key == "tags" and "," in value:
            items: list[Any] = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        for item in items:
            text = scalar_text(item)
            if text is not None:
                pair = f"{key}={text}"
                if len(pair) <= PAIR_MAX_CHARS and pair not in out:
                    out.append(pair)
    return out


def clean_query(query: str, max_chars: int) -> str:
    """The query as the index sees it: NULs and control characters become spaces, cut at ``max_chars``."""
    text = "".join(" " if (ord(c) < 32 or c == "\x7f") else c for c in query)
    return " ".join(text[:max_chars].split())

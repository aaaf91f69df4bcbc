"""Embedders behind one interface: ``local`` (offline) and ``http`` (OpenAI-compatible).

The names below are loaded on first use (PEP 562): importing a leaf such as
:mod:`.names` (the config loader does) must not import numpy, Pillow or httpx.

>>> from jobs.embeddings.embedders import LocalEmbedder, EmbedInput
>>> LocalEmbedder().model
'local-v2'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.lazy import exports

if TYPE_CHECKING:
    from .base import (
        Embedder,
        EmbedderError,
        EmbedderRejected,
        EmbedderUnavailable,
        EmbedInput,
        InputRejected,
        check_vectors,
    )
    from .http import HttpEmbedder
    from .local import LocalEmbedder
    from .names import HttpEmbedderSettings

_HOME = {
    "Embedder": "base", "EmbedderError": "base", "EmbedderRejected": "base", "EmbedderUnavailable": "base",
    "EmbedInput": "base", "InputRejected": "base", "check_vectors": "base",
    "HttpEmbedder": "http", "HttpEmbedderSettings": "names", "LocalEmbedder": "local",
}

__all__ = [
    "EmbedInput",
    "Embedder",
    "EmbedderError",
    "EmbedderRejected",
    "EmbedderUnavailable",
    "HttpEmbedder",
    "HttpEmbedderSettings",
    "InputRejected",
    "LocalEmbedder",
    "check_vectors",
    "make_embedder",
]


__getattr__ = exports(__name__, _HOME)


def make_embedder(kind: str, http: HttpEmbedderSettings | None = None, **kwargs: object) -> Embedder:
    """Build the embedder named in config: ``local`` or ``http``.

    >>> make_embedder("local").model
    'local-v2'
    """
    if kind == "local":
        from .local import LocalEmbedder

        return LocalEmbedder()
    if kind == "http":
        from .http import HttpEmbedder
        from .names import HttpEmbedderSettings

        return HttpEmbedder(http or HttpEmbedderSettings(), **kwargs)  # type: ignore[arg-type]
    raise ValueError(f"unknown embedder {kind!r}: expected 'local' or 'http'")

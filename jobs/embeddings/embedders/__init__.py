"""Embedders behind one interface: ``local`` (offline) and ``http`` (OpenAI-compatible).

>>> from jobs.embeddings.embedders import LocalEmbedder, EmbedInput
>>> LocalEmbedder().model
'local-v2'
"""

from .base import (
    Embedder,
    EmbedderError,
    EmbedderRejected,
    EmbedderUnavailable,
    EmbedInput,
    InputRejected,
    check_vectors,
)
from .http import HttpEmbedder, HttpEmbedderSettings
from .local import LocalEmbedder

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


def make_embedder(kind: str, http: HttpEmbedderSettings | None = None, **kwargs: object) -> Embedder:
    """Build the embedder named in config: ``local`` or ``http``.

    >>> make_embedder("local").model
    'local-v2'
    """
    if kind == "local":
        return LocalEmbedder()
    if kind == "http":
        return HttpEmbedder(http or HttpEmbedderSettings(), **kwargs)  # type: ignore[arg-type]
    raise ValueError(f"unknown embedder {kind!r}: expected 'local' or 'http'")

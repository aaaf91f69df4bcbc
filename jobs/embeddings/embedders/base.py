"""The embedder interface, its input value and its errors.

An embedder turns a batch of images into a float32 matrix of shape
``(n, dim)`` whose rows are L2-normalised, so cosine distance is meaningful.

Errors::

    EmbedderError
     +-- EmbedderUnavailable   retryable: timeouts, 408/409/429/5xx, connection refused
     +-- EmbedderRejected      permanent: 401/402/403/404, a wrong dimension (configuration)
          +-- InputRejected    permanent for one input: unreadable image, 400, missing text,
                               a NaN/inf vector; ``index`` says which input when known

This package imports nothing of the project (the local embedder: only the pure
jobs.imaging, to decode as the image job does); tasks translate these errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


class EmbedderError(Exception):
    """The embedder failed."""


class EmbedderUnavailable(EmbedderError):
    """The embedder is unreachable or overloaded; try again later.

    ``retry_after_s`` is the server's hint (``Retry-After``) when it gave one.
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EmbedderRejected(EmbedderError):
    """The embedder refused the request; repeating it will not help."""


class InputRejected(EmbedderRejected):
    """One input cannot be embedded (``index`` is its position in the batch, if known)."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class EmbedInput:
    """One image to embed.

    ``text`` is the caption or metadata text that text-only models embed
    instead of the pixels; image models ignore it. ``recipe`` names the recipe
    the image job rendered it with (``local`` decodes the file as that job did).
    """

    path: Path
    text: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    recipe: str | None = None


@runtime_checkable
class Embedder(Protocol):
    """A batch of images in, a float32 ``(n, dim)`` matrix of unit rows out.

    >>> emb = LocalEmbedder()                       # doctest: +SKIP
    >>> emb.embed([EmbedInput(Path("cat.jpg"))]).shape  # doctest: +SKIP
    (1, 280)
    """

    @property
    def model(self) -> str:
        """A name that changes whenever the vectors would (e.g. ``local-v2``)."""
        ...

    @property
    def dim(self) -> int:
        ...

    def embed(self, images: Sequence[EmbedInput]) -> np.ndarray:
        ...


def bad_rows(vectors: np.ndarray) -> list[int]:
    """Indices of rows holding NaN or infinity (or an all-zero row, which has no direction)."""
    finite = np.isfinite(vectors).all(axis=1)
    nonzero = np.abs(np.nan_to_num(vectors)).sum(axis=1) > 0
    return [int(i) for i in np.flatnonzero(~(finite & nonzero))]


def check_vectors(vectors: object, n: int, dim: int) -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 ``(n, dim)`` array, or raise.

    A wrong shape is a configuration problem (:class:`EmbedderRejected`); a
    non-finite or zero row is the input's (:class:`InputRejected` with its index).

    >>> check_vectors(np.ones((2, 3)), 2, 3).dtype
    dtype('float32')
    """
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape != (n, dim):
        raise EmbedderRejected(f"expected vectors of shape ({n}, {dim}), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise EmbedderRejected(f"expected numeric vectors, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = bad_rows(arr)
    if bad:
        raise InputRejected(f"vector {bad[0]} holds NaN, infinity or only zeros", index=bad[0])
    return arr


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row (rows of zeros are left as they are, for check_vectors to refuse)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)

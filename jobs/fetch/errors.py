"""Errors raised by the fetcher. Pure: no project imports.

::

    FetchError                  anything that stopped a fetch
    ├── FetchRefused            permanent: retrying cannot help
    │                           (refused address, too big, not an image,
    │                           too many redirects, HTTP 4xx, bad URL)
    └── FetchFailed             retryable: timeouts, connection errors,
                                HTTP 408/429/5xx; carries ``retry_after``

Tasks translate them into ``jobs.errors`` at the boundary: ``FetchRefused`` ->
``PermanentError``, ``FetchFailed`` -> ``RetryableError``.
"""

from __future__ import annotations


class FetchError(Exception):
    """The URL could not be fetched."""

    def __init__(self, message: str, url: str = "") -> None:
        self.url = url
        super().__init__(message)


class FetchRefused(FetchError):
    """The URL was refused for good: retrying the same request cannot succeed."""


class FetchFailed(FetchError):
    """The fetch failed for a reason that may pass; ``retry_after`` is the
    server's requested delay in seconds, when it sent one."""

    def __init__(self, message: str, url: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, url)
        self.retry_after = retry_after

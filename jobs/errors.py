"""The error tree of Darkroom jobs.

::

    DarkroomError               something went wrong with an image job
    ├── RetryableError          transient: database busy, timeouts, HTTP 429/5xx
    └── PermanentError          retrying cannot help: not an image, bomb, missing file,
                                refused URL

Third-party errors are translated at the boundary with ``raise ... from``.
A retryable error is retried with backoff until ``jobs.max_attempts`` is
spent, then the image is ``failed`` with a message naming the attempts.
"""

from __future__ import annotations


class DarkroomError(Exception):
    """Something went wrong with an image job."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip().splitlines()[0])


class RetryableError(DarkroomError):
    """A transient problem; the job will be tried again."""

    retry_after_s: float | None = None

    def __init__(self, message: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(DarkroomError):
    """The input cannot be processed; retrying cannot help."""


class MissingOriginal(PermanentError):
    """The original file is missing."""

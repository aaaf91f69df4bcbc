"""The error tree of Darkroom jobs.

::

    DarkroomError               something went wrong with an image job
    ├── RetryableError          transient: database busy, timeouts, HTTP 429/5xx
    │   └── StorageUnavailable  the media dir cannot be written or read (disk full,
    │                           read-only, I/O error, mount gone): an outage that
    │                           waits with backoff and spends no attempt
    └── PermanentError          retrying cannot help: not an image, bomb, missing file,
                                refused URL

Third-party errors are translated at the boundary with ``raise ... from``.
A retryable error is retried with backoff until ``jobs.max_attempts`` is
spent, then the image is ``failed`` with a message naming the attempts.
"""

from __future__ import annotations

import errno


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


class StorageUnavailable(RetryableError):
    """The media storage cannot be written or read right now; the image waits and keeps its attempts."""


# errno values that say "the storage", not "this image": full, quota, read-only,
# I/O error, device or network mount gone, permissions changed under us.
STORAGE_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.ENODEV, errno.ENXIO,
    errno.ESTALE, errno.ENOTCONN, errno.EACCES, errno.EPERM, errno.ENOENT,
})


def is_storage_trouble(exc: BaseException) -> bool:
    """True for an ``OSError`` whose errno is one of :data:`STORAGE_ERRNOS`."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


class PermanentError(DarkroomError):
    """The input cannot be processed; retrying cannot help."""


class MissingOriginal(PermanentError):
    """The original file is missing."""

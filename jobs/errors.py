"""The errors of image jobs, on the one tree drawn in :mod:`db.errors`.

::

    DarkroomError               (db/errors.py, re-exported here)
    ├── RetryableError          transient: database busy, timeouts, HTTP 429/5xx
    │   └── StorageUnavailable  the media dir cannot be written or read (disk full,
    │                           read-only, I/O error, mount gone): an outage that
    │                           waits with backoff and spends no attempt
    └── PermanentError          retrying cannot help: not an image, bomb, missing file,
        │                       refused URL
        └── MissingOriginal     the original file is missing

Third-party errors are translated at the boundary with ``raise ... from``.
A retryable error is retried with backoff until ``jobs.max_attempts`` is
spent, then the image is ``failed`` with a message naming the attempts.
"""

from __future__ import annotations

import errno

from db.errors import DarkroomError, PermanentError, RetryableError

__all__ = ["STORAGE_ERRNOS", "DarkroomError", "MissingOriginal", "PermanentError", "RetryableError",
           "StorageUnavailable", "is_storage_trouble"]


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


class MissingOriginal(PermanentError):
    """The original file is missing."""

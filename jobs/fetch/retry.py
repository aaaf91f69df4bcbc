"""In-line retries of retryable fetch failures, with the one backoff policy (:mod:`jobs.backoff`).

The worker retries through the queue (the task turns ``FetchFailed`` into a
retryable error carrying the server's ``Retry-After``, and the image job waits
``Backoff(jobs.retry_delay_s, jobs.max_retry_delay_s)``); :func:`with_retries`
is the same policy for callers that fetch in-line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from jobs.backoff import Backoff, parse_retry_after
from jobs.fetch.errors import FetchFailed

__all__ = ["parse_retry_after", "with_retries"]

log = logging.getLogger(__name__)
T = TypeVar("T")

def with_retries(call: Callable[[], T], attempts: int = 4, base_s: float = 1.0, cap_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``call`` until it succeeds, retrying ``FetchFailed`` with backoff.

    ``FetchRefused`` and any other error propagate at once; after ``attempts``
    tries the last ``FetchFailed`` propagates. A server's ``Retry-After`` is
    honoured up to ``cap_s``.

    >>> with_retries(lambda: fetch(url, dest, limits))  # doctest: +SKIP
    """
    policy = Backoff(base_s, cap_s, jitter=0.1)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except FetchFailed as exc:
            if attempt == attempts:
                raise
            delay = policy.delay(attempt, exc.retry_after)
            log.info("fetch failed (%s); retry %d/%d in %.1f s", exc, attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover

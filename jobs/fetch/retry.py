"""Retry-After parsing and backoff for retryable fetch failures.

The worker retries through the queue (the task turns ``FetchFailed`` into a
retryable error whose delay is :func:`backoff_delay`); :func:`with_retries`
is the same policy for callers that fetch in-line.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from jobs.fetch.errors import FetchFailed

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RETRY_AFTER_S = 3600.0  # a server asking for more than an hour is not waited for in-line


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    >>> parse_retry_after("120")
    120.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT",
    ...                   now=datetime(2015, 10, 21, 7, 27, 30, tzinfo=timezone.utc))
    30.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, retry_after: float | None = None, base_s: float = 1.0,
                  cap_s: float = 300.0, jitter: float = 0.1) -> float:
    """Delay before retry number ``attempt`` (1 = first retry).

    Exponential (``base_s * 2**(attempt-1)``, capped at ``cap_s``) with a little
    jitter; a server's ``Retry-After`` wins when it asks for longer, so the
    server is never hit before it said it would be ready.

    >>> backoff_delay(1, retry_after=7.0, jitter=0)
    7.0
    >>> backoff_delay(3, base_s=1.0, jitter=0)
    4.0
    """
    delay = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    delay *= 1 + random.uniform(0, jitter) if jitter else 1
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
    return delay


def with_retries(call: Callable[[], T], attempts: int = 4, base_s: float = 1.0, cap_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``call`` until it succeeds, retrying ``FetchFailed`` with backoff.

    ``FetchRefused`` and any other error propagate at once; after ``attempts``
    tries the last ``FetchFailed`` propagates.

    >>> with_retries(lambda: fetch(url, dest, limits))  # doctest: +SKIP
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except FetchFailed as exc:
            if attempt == attempts:
                raise
            delay = backoff_delay(attempt, exc.retry_after, base_s, cap_s)
            log.info("fetch failed (%s); retry %d/%d in %.1f s", exc, attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover

"""One backoff policy and one ``Retry-After`` parser, for every retry in Darkroom.

Every wait before another try (an image job's retry, a fetch retried in-line,
the HTTP embedder, the embedding step's outage, a backend outage, the API's
busy database) is :meth:`Backoff.delay`: ``first_s`` doubling per failure,
with optional jitter, **never longer than ``cap_s``**, and never shorter than
what a server asked for in ``Retry-After`` (up to the same cap). The cap is a
setting everywhere it matters (``jobs.max_retry_delay_s``,
``outage.max_backoff_s``, ``embeddings.max_backoff_s``, ...), so a server
answering ``Retry-After: 999999`` cannot park an image for 11 days.

Pure: no project imports.

>>> Backoff(first_s=2.0, cap_s=60.0).delay(3)
8.0
>>> Backoff(first_s=2.0, cap_s=3600.0).delay(1, retry_after_s=999_999)
3600.0
>>> parse_retry_after("120")
120.0
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``first_s * 2**(failures-1)``, times ``1 + uniform(0, jitter)``, capped at ``cap_s``."""

    first_s: float
    cap_s: float
    jitter: float = 0.0  # 0.1: up to 10 % longer, so retries of many callers spread out

    def uncapped(self, failures: int, retry_after_s: float | None = None) -> float:
        """The wait before any cap: the formula, or the server's hint when it asks for longer."""
        wait = self.first_s * 2.0 ** min(max(failures - 1, 0), 64)
        return max(wait, retry_after_s) if retry_after_s is not None else wait

    def delay(self, failures: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1 = the first).

        >>> [Backoff(1.0, 5.0).delay(n) for n in (1, 2, 3, 4)]
        [1.0, 2.0, 4.0, 5.0]
        >>> Backoff(1.0, 30.0).delay(4, retry_after_s=1.0)   # never sooner than the backoff
        8.0
        """
        wait = min(self.first_s * 2.0 ** min(max(failures - 1, 0), 64), self.cap_s)
        if self.jitter:
            wait = min(wait * (1 + random.uniform(0, self.jitter)), self.cap_s)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.cap_s))
        return wait

    def over_cap(self, failures: int, retry_after_s: float | None = None) -> bool:
        """True when the wait wanted (formula or hint) is longer than ``cap_s``: callers that
        wait in-line give up instead of sleeping that long."""
        return self.uncapped(failures, retry_after_s) > self.cap_s


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date; None if absent or unreadable.

    RFC 9110: delta-seconds are digits only ("-5" and "1.5" are unreadable); a
    date in the past is 0; what to do with a huge value is :meth:`Backoff.delay`'s cap.

    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC))
    30.0
    >>> parse_retry_after("soon") is None, parse_retry_after("") is None, parse_retry_after("-3") is None
    (True, True, True)
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())

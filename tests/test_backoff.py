"""The one backoff policy and Retry-After parser (jobs/backoff.py)."""

from __future__ import annotations

import email.utils
import time

import pytest

from jobs.backoff import Backoff, parse_retry_after
from jobs.outage import OutageSettings


def test_doubles_is_capped_and_yields_to_retry_after() -> None:
    policy = Backoff(first_s=2.0, cap_s=60.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert policy.delay(20) == 60 and policy.delay(10_000) == 60  # no overflow far past the cap
    assert policy.delay(1, retry_after_s=30) == 30  # the server asked for longer
    assert policy.delay(4, retry_after_s=1) == 16  # never sooner than the backoff
    assert policy.delay(1, retry_after_s=999_999) == 60  # a huge Retry-After is capped
    assert policy.over_cap(1, retry_after_s=999_999) and not policy.over_cap(3)
    jittered = [Backoff(2.0, 60.0, jitter=0.5).delay(1) for _ in range(50)]
    assert all(2 <= d <= 3 for d in jittered) and len(set(jittered)) > 1
    assert Backoff(2.0, 2.5, jitter=0.5).delay(1) <= 2.5  # jitter never passes the cap


def test_outage_settings_use_the_policy() -> None:
    s = OutageSettings(backoff_s=1.0, max_backoff_s=5.0)
    assert [s.policy.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


@pytest.mark.parametrize("value, expected", [
    ("3", 3.0), (" 42 ", 42.0), ("0", 0.0), (None, None), ("", None), ("soon", None), ("-5", None), ("1.5", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_date_in_the_future() -> None:
    header = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 50 < (parse_retry_after(header) or 0) <= 60

"""Safe URL fetching with httpx. Pure: imports nothing of the project outside
this package. The names below load on first use (:mod:`jobs.lazy`), so the
config loader reads ``jobs.fetch.limits`` without importing httpx.

>>> from jobs.fetch import FetchLimits, fetch
>>> got = fetch("https://example.com/cat.jpg", "data/incoming", FetchLimits())  # doctest: +SKIP

See ``docs/fetch.md`` for the rules (addresses, limits, errors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.lazy import exports

if TYPE_CHECKING:
    from jobs.fetch.addresses import AllowList, parse_allow, refusal_reason, system_resolver
    from jobs.fetch.errors import FetchError, FetchFailed, FetchRefused
    from jobs.fetch.fetcher import Fetched, fetch, new_client
    from jobs.fetch.limits import IMAGE_TYPES, FetchLimits
    from jobs.fetch.retry import parse_retry_after, with_retries
    from jobs.fetch.signatures import extension_for, sniff

__all__ = [
    "IMAGE_TYPES", "AllowList", "FetchError", "FetchFailed", "FetchLimits", "FetchRefused",
    "Fetched", "extension_for", "fetch", "new_client", "parse_allow",
    "parse_retry_after", "refusal_reason", "sniff", "system_resolver", "with_retries",
]

__getattr__ = exports(__name__, {
    "AllowList": "addresses", "parse_allow": "addresses", "refusal_reason": "addresses",
    "system_resolver": "addresses", "FetchError": "errors", "FetchFailed": "errors", "FetchRefused": "errors",
    "Fetched": "fetcher", "fetch": "fetcher", "new_client": "fetcher", "IMAGE_TYPES": "limits",
    "FetchLimits": "limits", "parse_retry_after": "retry", "with_retries": "retry",
    "extension_for": "signatures", "sniff": "signatures",
})

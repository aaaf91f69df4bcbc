"""The fetcher's limits: one frozen value, defaults safe for the open internet."""

from __future__ import annotations

from dataclasses import dataclass

#: MIME types the sniffer can recognise; by default every one is accepted.
IMAGE_TYPES: tuple[str, ...] = (
    "image/jpeg", "image/png", "image/gif", "image/webp",
    "image/avif", "image/heic", "image/tiff", "image/bmp",
)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024  # 50 MiB
DEFAULT_USER_AGENT = "Darkroom/0.1 (image fetcher)"


@dataclass(frozen=True)
class FetchLimits:
    """What a fetch may do (``[fetch]`` in config.toml).

    ``allow`` lists CIDRs (``"10.0.0.0/8"``, ``"::1/128"``) and host names
    (``"images.internal"``, or ``"*.internal"`` for any subdomain) that are let
    through although their addresses are private, loopback, link-local or
    otherwise not public. Empty means only public addresses are reachable.

    >>> FetchLimits(max_bytes=1_000_000, allow=("127.0.0.1/32",)).max_redirects
    5
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0  # longest wait for any one chunk
    total_timeout_s: float = 60.0  # the whole fetch, redirects included
    max_redirects: int = 5
    allow: tuple[str, ...] = ()
    user_agent: str = DEFAULT_USER_AGENT
    accept_types: tuple[str, ...] = IMAGE_TYPES

    def check(self) -> None:
        """Raise ``ValueError("field: expected ...")`` for a value that cannot work."""
        from jobs.fetch.addresses import parse_allow  # local: keeps this module a leaf

        if self.max_bytes < 1:
            raise ValueError("max_bytes: expected an integer >= 1")
        for name in ("connect_timeout_s", "read_timeout_s", "total_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected a number > 0")
        if self.max_redirects < 0:
            raise ValueError("max_redirects: expected an integer >= 0")
        if not self.user_agent.strip():
            raise ValueError("user_agent: expected a non-empty string")
        unknown = [t for t in self.accept_types if t not in IMAGE_TYPES]
        if unknown or not self.accept_types:
            raise ValueError(f"accept_types: expected a non-empty list drawn from {', '.join(IMAGE_TYPES)}")
        try:
            parse_allow(self.allow)
        except ValueError as exc:
            raise ValueError(f"allow: expected CIDRs or host names ({exc})") from None

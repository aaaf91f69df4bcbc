"""The config sections of the worker and its status readers: frozen dataclasses.

A leaf module: it imports no project module but value types from other leaf
modules, so :mod:`worker.settings` (the loader) can import it and nothing here
imports the settings back. Sections owned by a feature live with it, in its
own leaf module (``jobs/maintenance/settings.py``, ``jobs/embeddings/settings.py``);
where a domain type already says what a section holds (``jobs.queue.QueueConfig``,
``jobs.imaging.Limits``, ``jobs.fetch.FetchLimits``, ``jobs.imaging.recipes.RecipeSettings``
for ``[variants]`` and every ``[recipes.NAME]``)
the config uses it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from worker.markup import DEFAULT_MEDIA_URL, check_media_url


@dataclass(frozen=True)
class PathsSettings:
    data_dir: Path = Path("data")
    media_dir: Path = Path("data/media")  # originals/ and variants/ live below
    # Where your web server (or CDN) serves media_dir: "/media/" or "https://cdn.example.com/m/".
    media_url: str = DEFAULT_MEDIA_URL

    def check(self) -> None:
        try:
            check_media_url(self.media_url)
        except ValueError as exc:
            raise ValueError(f"media_url: {exc}") from None


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///data/app.db"
    busy_timeout_ms: int = 15_000
    cache_size_kib: int = 32_768

    def check(self) -> None:
        try:
            make_url(self.url)
        except Exception as exc:
            raise ValueError("url: expected an SQLAlchemy URL such as sqlite:///data/app.db") from exc
        if self.busy_timeout_ms < 0:
            raise ValueError("busy_timeout_ms: expected a number >= 0")


@dataclass(frozen=True)
class ImagingSettings:
    """Metadata policy and the large lane (docs/imaging.md)."""

    keep_gps: bool = False  # store the camera's GPS position on the row (private by default)
    animated_webp: bool = False  # animated GIF/WebP -> animated WebP variants (else the first frame)
    large_pixels: int = 40_000_000  # images over this many pixels go to the large lane
    large_slots: int = 1  # large images processed at once per data directory
    encode_threads: int = 0  # threads one job encodes with, at most; 0 = the cores shared among running jobs

    def check(self) -> None:
        if self.large_pixels < 1:
            raise ValueError("large_pixels: expected an integer >= 1")
        if self.large_slots < 1:
            raise ValueError("large_slots: expected an integer >= 1")
        if self.encode_threads < 0:
            raise ValueError("encode_threads: expected 0 (automatic) or an integer >= 1")


@dataclass(frozen=True)
class JobSettings:
    max_attempts: int = 5
    lease_s: float = 60.0  # a claim's lifetime; renewed every lease_s/3 while a job runs
    grace_s: float = 30.0  # how long shutdown waits for the task in hand
    retry_delay_s: float = 2.0  # first retry delay; doubles each attempt
    max_retry_delay_s: float = 3_600.0  # the cap, also on a server's Retry-After
    reconcile_interval_s: float = 30.0
    requeue_after_s: float = 60.0  # a pending row enqueued longer ago is re-enqueued

    def check(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts: expected an integer >= 1")
        for name in ("lease_s", "grace_s", "reconcile_interval_s", "requeue_after_s", "max_retry_delay_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected a number > 0")
        if self.max_retry_delay_s < self.retry_delay_s:
            raise ValueError("max_retry_delay_s: expected a number >= jobs.retry_delay_s")


@dataclass(frozen=True)
class HeartbeatSettings:
    interval_s: float = 5.0  # how often a daemon refreshes its heartbeat
    timeout_s: float = 30.0  # no heartbeat for this long: the worker is dead
    prune_after_s: float = 86_400.0  # stopped/dead rows are deleted after this

    def check(self) -> None:
        if self.interval_s <= 0:
            raise ValueError("interval_s: expected a number > 0")
        if self.timeout_s <= self.interval_s:
            raise ValueError("timeout_s: expected a number greater than heartbeat.interval_s")
        if self.prune_after_s < self.timeout_s:
            raise ValueError("prune_after_s: expected a number >= heartbeat.timeout_s")


@dataclass(frozen=True)
class MetricsSettings:
    port: int = 0  # 0 = no metrics endpoint
    host: str = "127.0.0.1"  # 0.0.0.0 to let a Prometheus on another host scrape

    def check(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("port: expected 0 (off) or a TCP port 1-65535")
        if not self.host:
            raise ValueError("host: expected an address to bind, such as 127.0.0.1")


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"  # loopback only; put a reverse proxy with auth in front to share it
    port: int = 8470
    refresh_s: int = 10  # the page reloads itself; 0 = never
    recent: int = 12  # completed images (thumbnails) and failures shown

    def check(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("port: expected a TCP port 0-65535 (0 = any free port)")
        if self.refresh_s < 0:
            raise ValueError("refresh_s: expected an integer >= 0")
        if not 1 <= self.recent <= 500:
            raise ValueError("recent: expected an integer from 1 to 500")


@dataclass(frozen=True)
class HealthSettings:
    # duty name (as recorded in maintenance_runs) -> the longest acceptable
    # time since its last successful run, seconds. Empty: duties not checked.
    duty_max_age_s: dict[str, float] = field(default_factory=dict)
    connect_timeout_s: float = 5.0  # PostgreSQL connect timeout for the probe
    media_min_free_mb: float = 256.0  # less free space than this on the media dir is unhealthy

    def check(self) -> None:
        for name, limit in self.duty_max_age_s.items():
            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0:
                raise ValueError(f"duty_max_age_s: expected a number of seconds > 0 for {name!r}")
        if self.connect_timeout_s <= 0:
            raise ValueError("connect_timeout_s: expected a number > 0")
        if self.media_min_free_mb < 0:
            raise ValueError("media_min_free_mb: expected a number >= 0")

"""The ``[maintenance]`` section: a leaf module (the config loader imports it;
:mod:`jobs.maintenance.duties` schedules what it says)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from db.maintenance.rules import TtlRule

DUTIES = ("sweep", "optimize", "checkpoint", "backup", "check")
DAY_S = 86_400.0


def default_ttl() -> tuple[TtlRule, ...]:
    return (
        TtlRule(table="maintenance_runs", column="started_at", max_age_s=90 * DAY_S, name="old run records"),
        TtlRule(table="workers", column="heartbeat_at", max_age_s=7 * DAY_S, name="dead workers"),
    )


@dataclass(frozen=True)
class MaintenanceSettings:
    """The ``[maintenance]`` section of ``config.toml`` (see the commented defaults there)."""

    enabled: bool = True  # periodic tasks in `darkroom worker`
    sweep_cron: str = "17 * * * *"
    optimize_cron: str = "7 * * * *"
    checkpoint_cron: str = "*/5 * * * *"
    backup_cron: str = "30 3 * * *"
    check_cron: str = "45 4 * * *"
    ttl: tuple[TtlRule, ...] = field(default_factory=default_ttl)
    batch_size: int = 500
    batch_pause_s: float = 0.02
    orphans_every_s: float = 6 * 3_600.0
    orphan_grace_s: float = 3_600.0
    tmp_max_age_s: float = 3_600.0
    analyze_every_s: float = DAY_S
    free_pages_threshold: int = 1_000
    vacuum_chunk_pages: int = 256
    wal_threshold_mib: float = 32.0
    wal_truncate_factor: float = 4.0
    checkpoint_busy_ms: int = 2_000
    backup_dir: Path = Path("data/backups")
    backup_keep: int = 7
    lease_s: float = 3_600.0

    def check(self) -> None:
        for duty in DUTIES:
            key = f"{duty}_cron"
            try:
                parse_cron(getattr(self, key))
            except ValueError as exc:
                raise ValueError(f"{key}: expected a 5-field crontab such as '*/5 * * * *' ({exc})") from None
        positive = ("batch_size", "orphans_every_s", "analyze_every_s", "vacuum_chunk_pages",
                    "wal_threshold_mib", "backup_keep", "lease_s")
        for key in positive:
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}: expected a number > 0")
        if self.wal_truncate_factor < 1:
            raise ValueError("wal_truncate_factor: expected a number >= 1")
        for key in ("batch_pause_s", "orphan_grace_s", "tmp_max_age_s", "free_pages_threshold",
                    "checkpoint_busy_ms"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}: expected a number >= 0")


_CRON_FIELD = re.compile(r"[0-9*/,\-]+\Z")


def parse_cron(text: str) -> Callable[[datetime], bool]:
    """``"*/5 * * * *"`` (minute hour day month weekday) -> huey's crontab test."""
    parts = text.split()
    if len(parts) != 5 or not all(_CRON_FIELD.match(p) for p in parts):
        raise ValueError(f"{text!r} is not five fields of digits, '*', '/', ',' and '-'")
    minute, hour, day, month, weekday = parts
    from jobs.huey_import import crontab

    return crontab(minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, strict=True)

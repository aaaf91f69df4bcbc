"""The TTL rule value type: a leaf module, so the config loader can import it
without SQLAlchemy (``db/maintenance/ttl.py`` checks and applies the rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TtlRule:
    """One ``[[maintenance.ttl]]`` table of ``config.toml``.

    >>> TtlRule(table="images", column="created_at", max_age_s=30 * 86_400,
    ...         where={"status": "failed"}, name="failed images").where
    {'status': 'failed'}
    """

    table: str = ""
    column: str = ""
    max_age_s: float = 0.0
    where: dict[str, Any] = field(default_factory=dict)  # column -> value or list of values
    format: str = "auto"  # auto | unix | unix_ms | iso
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.table}.{self.column}"

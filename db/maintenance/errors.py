"""Errors raised by the maintenance duties.

::

    MaintenanceError            a duty could not do its work
    +-- TargetError             the database file is missing, unreadable or not SQLite
    +-- TtlRuleError            a TTL rule names something the schema does not have
    +-- DutyFailed              the duty ran and found a problem (corrupt copy, failed check)

``db`` knows nothing of the queue: tasks in ``jobs/maintenance/files.py`` decide
whether an error is retryable. All of these are permanent for a given run.
"""

from __future__ import annotations

from typing import Any

from db.errors import PermanentError


class MaintenanceError(PermanentError):
    """A maintenance duty could not do its work."""


class TargetError(MaintenanceError):
    """The database a duty works on is missing, unreadable or not an SQLite file."""


class TtlRuleError(MaintenanceError):
    """A TTL rule is invalid; the message names the rule."""


class DutyFailed(MaintenanceError):
    """The duty ran to the end and found a problem; ``figures`` says what it saw."""

    def __init__(self, message: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.figures: dict[str, Any] = dict(figures or {})

"""Maintenance primitives of the shared database: plain functions on an Engine.

| module | duty |
| --- | --- |
| ``ttl`` | TTL sweep: rules checked against the live schema, batched deletes |
| ``optimize`` | ``PRAGMA optimize``, ``ANALYZE``, incremental vacuum (PostgreSQL: ``VACUUM (ANALYZE)``) |
| ``checkpoint`` | WAL size of the shared and queue databases, ``wal_checkpoint`` |
| ``backup`` | online backup with ``integrity_check`` of the copy and retention |
| ``check`` | ``quick_check`` / ``integrity_check`` and ``foreign_key_check`` |
| ``runs`` | duty leases (one run at a time), run records, missed-run catch-up |

Each returns a dict of figures that :func:`runs.run_duty` records.
Import the duties from their modules (``from db.maintenance.backup import
backup``); the package re-exports only the names other parts of Darkroom use.
"""

from db.maintenance.checkpoint import checkpoint_on_shutdown
from db.maintenance.errors import DutyFailed, MaintenanceError, TargetError, TtlRuleError
from db.maintenance.runs import RunResult, due, last_runs, run_duty
from db.maintenance.ttl import DeletedImages, TtlRule, check_rules

__all__ = [
    "DeletedImages", "DutyFailed", "MaintenanceError", "RunResult", "TargetError", "TtlRule",
    "TtlRuleError", "check_rules", "checkpoint_on_shutdown", "due", "last_runs", "run_duty",
]

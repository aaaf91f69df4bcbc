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
Import from the modules (``from db.maintenance.backup import backup``); the
package itself imports nothing, so ``worker/cli.py`` can import the errors
without loading SQLAlchemy.
"""

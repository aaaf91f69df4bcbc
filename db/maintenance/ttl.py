"""TTL sweep: delete rows older than a rule's maximum age, in small batches.

A rule names a table, a timestamp column and a maximum age, and may narrow
the rows with equality filters (``where = {status = "failed"}``). Rules come
from ``config.toml``, so before any SQL is built every name is checked twice:
it must be a plain identifier (letters, digits, underscore) and it must exist
in the live schema. Nothing from the config is ever spliced into SQL text;
SQLAlchemy quotes the checked names and binds the values.

Each batch (``batch_size`` rows, 500 by default) is its own short write
transaction, with a short pause between batches so a writer waiting on the
busy timeout gets the lock (SQLite's busy handler sleeps between retries; a
sweep that re-took the lock at once could starve it).

Timestamps may be integer or float Unix seconds (``images.created_at``),
Unix milliseconds, or ISO 8601 text (another app's ``sessions.expires_at``);
``format = "auto"`` picks seconds for numeric columns and ISO for text and
date-time columns. ISO text without an offset is taken as UTC. Rows whose
timestamp is NULL are never deleted.

Deleting ``images`` rows also deletes their ``image_variants`` rows; the
caller's ``on_delete`` hook receives the ids and the file paths, after the
batch commits, to remove variant files, owned originals and embeddings.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    Float,
    Integer,
    Numeric,
    String,
    Text,
    cast,
    column,
    delete,
    func,
    inspect,
    literal_column,
    select,
    table,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from db.engine import write_session
from db.maintenance.errors import TtlRuleError
from db.maintenance.rules import TtlRule as TtlRule  # re-exported: callers import it from here

log = logging.getLogger(__name__)

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
FORMATS = ("auto", "unix", "unix_ms", "iso")


@dataclass(frozen=True)
class DeletedImages:
    """What one committed batch of an ``images`` rule removed (for the file hook)."""

    image_ids: tuple[str, ...]
    variant_paths: tuple[str, ...]  # as stored: relative to the media dir
    owned_originals: tuple[str, ...]  # original_path of rows with owns_original


OnDelete = Callable[[DeletedImages], None]


@dataclass(frozen=True)
class CheckedRule:
    """A rule whose names exist; holds SQLAlchemy constructs, never SQL text."""

    rule: TtlRule
    time_format: str
    keys: tuple[str, ...]  # primary key columns, or ("rowid",)
    column_types: Mapping[str, Any]


def _fail(rule: TtlRule, problem: str) -> TtlRuleError:
    return TtlRuleError(f"TTL rule {rule.label!r} (table={rule.table!r}, column={rule.column!r}): {problem}")


def check_rules(engine: Engine, rules: tuple[TtlRule, ...] | list[TtlRule]) -> tuple[CheckedRule, ...]:
    """Check every rule against the live schema; raise :class:`TtlRuleError` naming the first bad one.

    Called at worker start (a bad rule stops start-up) and again by each sweep.

    >>> check_rules(engine, [TtlRule(table="nope", column="created_at", max_age_s=60)])  # doctest: +SKIP
    Traceback (most recent call last):
    TtlRuleError: TTL rule 'nope.created_at' (table='nope', column='created_at'): table 'nope' does not exist ...
    """
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    checked = []
    for rule in rules:
        for what, name in [("table", rule.table), ("column", rule.column),
                           *(("where column", k) for k in rule.where)]:
            if not isinstance(name, str) or not IDENTIFIER.match(name):
                raise _fail(rule, f"{what} {name!r} is not a plain identifier (letters, digits, _)")
        if rule.table not in tables:
            raise _fail(rule, f"table {rule.table!r} does not exist in the database "
                              f"(tables: {', '.join(sorted(tables))})")
        types = {c["name"]: c["type"] for c in insp.get_columns(rule.table)}
        for name in (rule.column, *rule.where):
            if name not in types:
                raise _fail(rule, f"column {name!r} does not exist in table {rule.table!r} "
                                  f"(columns: {', '.join(types)})")
        if not isinstance(rule.max_age_s, (int, float)) or rule.max_age_s < 0:
            raise _fail(rule, f"max_age_s {rule.max_age_s!r} must be a number >= 0")
        for key, value in rule.where.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            if not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
                raise _fail(rule, f"where.{key} = {value!r}: expected a string, number, boolean "
                                  "or a non-empty list of them")
        checked.append(CheckedRule(rule, _time_format(rule, types[rule.column]),
                                   _keys(engine, rule, insp), types))
    return tuple(checked)


def _time_format(rule: TtlRule, col_type: Any) -> str:
    if rule.format not in FORMATS:
        raise _fail(rule, f"format {rule.format!r} must be one of {', '.join(FORMATS)}")
    if rule.format != "auto":
        return rule.format
    if isinstance(col_type, (Integer, Float, Numeric)):
        return "unix"
    if isinstance(col_type, (DateTime, String, Text)):
        return "iso"
    raise _fail(rule, f"cannot tell how column {rule.column!r} ({col_type}) stores time; "
                      "set format = unix | unix_ms | iso")


def _keys(engine: Engine, rule: TtlRule, insp: Any) -> tuple[str, ...]:
    pk = tuple(insp.get_pk_constraint(rule.table).get("constrained_columns") or ())
    if pk:
        return pk
    if engine.dialect.name == "sqlite":
        return ("rowid",)
    raise _fail(rule, "the table has no primary key, so it cannot be deleted from in batches")


def _cutoff(checked: CheckedRule, col: ColumnElement[Any], dialect: str, now: float) -> ColumnElement[bool]:
    rule = checked.rule
    limit = now - float(rule.max_age_s)
    if checked.time_format == "unix":
        return col < limit
    if checked.time_format == "unix_ms":
        return col < limit * 1000
    when = datetime.fromtimestamp(limit, UTC)
    if dialect == "sqlite":
        # julianday() reads 'T' or ' ' separators, fractions and +HH:MM / Z
        # offsets alike, where a text comparison would not.
        return func.julianday(col) < func.julianday(when.strftime("%Y-%m-%d %H:%M:%S.%f"))
    col_type = checked.column_types[rule.column]
    if isinstance(col_type, DateTime):
        return col < (when if col_type.timezone else when.replace(tzinfo=None))
    return cast(col, DateTime(timezone=True)) < when


def _where(checked: CheckedRule, t: Any) -> list[ColumnElement[bool]]:
    out = []
    for key, value in checked.rule.where.items():
        if isinstance(value, (list, tuple)):
            out.append(t.c[key].in_(list(value)))
        else:
            out.append(t.c[key] == value)
    return out


def sweep_rule(engine: Engine, checked: CheckedRule, *, batch_size: int = 500, pause_s: float = 0.02,
               on_delete: OnDelete | None = None, now: float | None = None) -> dict[str, Any]:
    """Delete the rows ``checked`` selects, ``batch_size`` per transaction.

    >>> sweep_rule(engine, check_rules(engine, [rule])[0])  # doctest: +SKIP
    {'deleted': 1200, 'batches': 3, 'longest_batch_ms': 4.1}
    """
    rule = checked.rule
    now = time.time() if now is None else now
    names = dict.fromkeys([rule.column, *(k for k in checked.keys if k != "rowid"), *rule.where])
    t = table(rule.table, *(column(n) for n in names))
    keys = [literal_column("rowid") if k == "rowid" else t.c[k] for k in checked.keys]
    condition = [_cutoff(checked, t.c[rule.column], engine.dialect.name, now), *_where(checked, t)]
    single = len(keys) == 1
    deleted = batches = 0
    longest = 0.0
    last: Any = None
    failures: list[str] = []
    while True:
        began = time.perf_counter()
        query = select(*keys).select_from(t).where(*condition).order_by(*keys).limit(batch_size)
        if single and last is not None:
            # Keyset: each batch starts where the last stopped instead of
            # rescanning rows the filter already rejected.
            query = query.where(keys[0] > last)
        gone: DeletedImages | None = None
        with write_session(engine) as s:
            rows = s.execute(query).all()
            if not rows:
                break
            ids = [r[0] for r in rows] if single else [tuple(r) for r in rows]
            if rule.table == "images" and checked.keys == ("id",):
                gone = _images_batch(s, ids)
            match = keys[0].in_(ids) if single else tuple_(*keys).in_(ids)
            s.execute(delete(t).where(match))
        longest = max(longest, time.perf_counter() - began)
        deleted += len(rows)
        batches += 1
        last = ids[-1] if single else None
        if gone is not None and on_delete is not None:
            try:
                on_delete(gone)
            except Exception as exc:  # the rows are gone; the orphan sweep finds leftover files
                log.error("TTL rule %r: on_delete hook failed for %d images: %s", rule.label, len(ids), exc)
                failures.append(f"on_delete: {exc}")
        if len(rows) < batch_size:
            break
        if pause_s > 0:
            time.sleep(pause_s)
    if deleted:
        log.info("TTL rule %r deleted %d rows in %d batches", rule.label, deleted, batches)
    figures: dict[str, Any] = {"deleted": deleted, "batches": batches,
                               "longest_batch_ms": round(longest * 1000, 1)}
    if failures:
        figures["warnings"] = failures[:5]
    return figures


def _images_batch(session: Any, ids: list[Any]) -> DeletedImages:
    images = table("images", column("id"), column("original_path"), column("owns_original"))
    variants = table("image_variants", column("image_id"), column("path"))
    paths = session.execute(select(variants.c.path).where(variants.c.image_id.in_(ids))).scalars().all()
    owned = session.execute(select(images.c.original_path).where(
        images.c.id.in_(ids), images.c.owns_original.is_(True))).scalars().all()
    # Explicit, so it holds even where foreign keys are off (another app's connection).
    session.execute(delete(variants).where(variants.c.image_id.in_(ids)))
    return DeletedImages(tuple(ids), tuple(paths), tuple(owned))


def sweep(engine: Engine, rules: tuple[TtlRule, ...] | list[TtlRule], *, batch_size: int = 500,
          pause_s: float = 0.02, on_delete: OnDelete | None = None,
          now: float | None = None) -> dict[str, Any]:
    """Run every rule once; figures per rule plus the total.

    >>> sweep(engine, [TtlRule(table="sessions", column="expires_at", max_age_s=0)])  # doctest: +SKIP
    {'rules': {'sessions.expires_at': {'deleted': 3, ...}}, 'deleted': 3}
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    per_rule: dict[str, Any] = {}
    warnings: list[str] = []
    for checked in check_rules(engine, rules):
        figures = sweep_rule(engine, checked, batch_size=batch_size, pause_s=pause_s,
                             on_delete=on_delete, now=now)
        warnings += [f"{checked.rule.label}: {w}" for w in figures.pop("warnings", [])]
        per_rule[checked.rule.label] = figures
    out: dict[str, Any] = {"rules": per_rule, "deleted": sum(f["deleted"] for f in per_rule.values())}
    if warnings:
        out["warnings"] = warnings
    return out

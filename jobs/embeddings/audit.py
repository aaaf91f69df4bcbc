"""The vector store audit: every row that claims a vector has one, or is embedded again.

A row *claims* a vector when it is completed with ``embedding_model`` and
``embedded_at`` set (:mod:`jobs.embeddings.rows`). LanceDB can lose vectors
behind the database's back (its directory deleted, restored from an older
copy, corrupted); without an audit those rows would never be embedded again.
:func:`audit` compares, per model, the ids the rows claim with the ids the
store holds (the ``image_id`` column only), and clears the claim of every
missing one, so the embedding step embeds them again in its usual batches.

A store that cannot be read (a table whose files are gone or garbage) is
moved aside to ``<dir>.broken-<time>`` and started empty
(:meth:`VectorStore.recreate`); every claim is then missing and the store is
refilled. A deleted directory is simply made again.

The embedding step runs the audit under its lease (the one writer) every
``embeddings.audit_interval_s``, at once when the store holds fewer vectors
than rows claim (:func:`looks_short`: a deleted directory) or a store write
failed, and records each run as maintenance run ``vectors``;
``darkroom reprocess --vectors [--dry-run]`` runs it by hand.

Claims are read before the store's ids: a vector is written before its row
claims it, so a claim seen first has its vector by the time the ids are
read, and a concurrent embedding run is never mistaken for a loss.

>>> audit(engine, store).missing                                # doctest: +SKIP
{'local-v1': 7}
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine

from db.maintenance import runs
from jobs.embeddings import rows
from jobs.embeddings.store import VectorStore

log = logging.getLogger(__name__)

RUN_NAME = "vectors"  # the maintenance run each audit is recorded as


@dataclass(frozen=True)
class AuditResult:
    claimed: dict[str, int] = field(default_factory=dict)  # rows claiming a vector, by model
    present: dict[str, int] = field(default_factory=dict)  # of those, vectors found in the store
    missing: dict[str, int] = field(default_factory=dict)  # claims with no vector (cleared unless dry run)
    extra: dict[str, int] = field(default_factory=dict)  # vectors no row claims (left alone)
    unreadable: str | None = None  # why the store could not be read, when it could not
    moved_to: str | None = None  # where the unreadable directory went
    cleared: int = 0  # claims cleared: images the embedding step embeds again

    @property
    def total_missing(self) -> int:
        return sum(self.missing.values())

    def figures(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, 0) or k == "cleared"}


def audit(engine: Engine, store: VectorStore | None, *, dry_run: bool = False) -> AuditResult:
    """Compare claims with the store's ids; clear missing claims unless ``dry_run`` (see the module docstring).

    The caller holds the embedding lease (the store may be recreated) unless
    ``dry_run``. ``store`` None: there is none on disk (a dry run need not make one).
    """
    claims = rows.claimed_ids(engine)  # first: see the module docstring
    unreadable: str | None = None
    held: dict[str, set[str]] = {}
    if store is None:
        unreadable = "the vector store does not exist"
    elif not store.directory.is_dir():
        unreadable = f"{store.directory} does not exist"
    else:
        try:
            store.reconnect()  # handles opened before a loss would read what is gone
            store.models()  # opens every table: a garbled one fails here
            held = {m: set(store.ids(m)) for m in claims}
        except (OSError, RuntimeError, ValueError) as exc:  # lance reports I/O and format errors as these
            unreadable = f"{store.directory} cannot be read: {exc}".splitlines()[0][:300]
    moved: str | None = None
    if unreadable is not None:
        held = {}
        if not dry_run:
            assert store is not None, "only a dry run may audit without a store"
            where = store.recreate()
            moved = None if where is None else str(where)
            log.error("vector store %s; started it empty%s, %d rows will be embedded again", unreadable,
                      f" (the old directory is kept at {where})" if where else "",
                      sum(len(v) for v in claims.values()))
    missing = {m: sorted(ids - held.get(m, set())) for m, ids in claims.items()}
    cleared = 0
    if not dry_run:
        for model, ids in missing.items():
            cleared += rows.clear_claims(engine, model, ids)
    result = AuditResult(
        claimed={m: len(ids) for m, ids in claims.items()},
        present={m: len(ids & held.get(m, set())) for m, ids in claims.items()},
        missing={m: len(ids) for m, ids in missing.items() if ids},
        extra={m: n for m in held if (n := len(held[m] - claims.get(m, set())))},
        unreadable=unreadable, moved_to=moved, cleared=cleared)
    if cleared and unreadable is None:
        log.warning("vector store audit: %d row(s) claimed a vector the store does not have (%s); "
                    "embedding them again", cleared,
                    ", ".join(f"{m}: {n}" for m, n in result.missing.items()))
    return result


def run_recorded(engine: Engine, store: VectorStore) -> AuditResult:
    """:func:`audit`, recorded as maintenance run ``vectors`` (the caller holds the embedding lease)."""
    out: list[AuditResult] = []

    def body() -> dict[str, Any]:
        out.append(audit(engine, store))
        return out[0].figures()

    runs.run_duty(engine, RUN_NAME, body, lease_s=600.0)
    return out[0] if out else AuditResult()


def due(engine: Engine, interval_s: float) -> bool:
    return runs.due(engine, RUN_NAME, interval_s)


def looks_short(engine: Engine, store: VectorStore, model: str) -> bool:
    """The cheap check of every embedding run: fewer ``model`` vectors than rows claim, or unreadable.

    Two counts (LanceDB's from its metadata); it catches a deleted or
    replaced directory at once, the full :func:`audit` catches the rest.
    """
    try:
        if not store.directory.is_dir():
            return True
        have = store.count(model)
    except (OSError, RuntimeError, ValueError):
        return True
    return have < rows.claim_counts(engine, model).get(model, 0)

"""TTL sweep against real SQLite files: batches, formats, and rules that must be refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select, text

from db.engine import write_session
from db.maintenance.errors import TtlRuleError
from db.maintenance.ttl import DeletedImages, TtlRule, check_rules, sweep
from db.models import Image, ImageVariant

DAY = 86_400


def count(engine: Engine, where: str = "1=1", table: str = "images") -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()


def test_old_rows_go_young_rows_stay_across_batch_boundary(engine: Engine,
                                                           add_images: Callable[..., list[str]]) -> None:
    old_failed = add_images(engine, 1_203, age_s=31 * DAY, status="failed", prefix="old-failed")
    add_images(engine, 40, age_s=29 * DAY, status="failed", prefix="young-failed")
    add_images(engine, 30, age_s=90 * DAY, status="completed", prefix="old-completed")
    rule = TtlRule(table="images", column="created_at", max_age_s=30 * DAY,
                   where={"status": "failed"}, name="failed images")

    figures = sweep(engine, [rule], batch_size=500, pause_s=0)

    assert figures["deleted"] == len(old_failed) == 1_203
    assert figures["rules"]["failed images"]["batches"] == 3
    assert count(engine, "id LIKE 'old-failed-%'") == 0
    assert count(engine, "id LIKE 'young-failed-%'") == 40
    assert count(engine, "id LIKE 'old-completed-%'") == 30  # the filter held
    assert sweep(engine, [rule], batch_size=500)["deleted"] == 0


def test_exactly_one_batch_of_rows(engine: Engine, add_images: Callable[..., list[str]]) -> None:
    add_images(engine, 500, age_s=2 * DAY)
    figures = sweep(engine, [TtlRule(table="images", column="created_at", max_age_s=DAY)], batch_size=500)
    assert figures["deleted"] == 500 and count(engine) == 0


def test_where_list_is_in(engine: Engine, add_images: Callable[..., list[str]]) -> None:
    add_images(engine, 5, age_s=2 * DAY, status="failed", prefix="f")
    add_images(engine, 5, age_s=2 * DAY, status="completed", prefix="c")
    add_images(engine, 5, age_s=2 * DAY, status="pending", prefix="p")
    rule = TtlRule(table="images", column="created_at", max_age_s=DAY, where={"status": ["failed", "completed"]})
    assert sweep(engine, [rule])["deleted"] == 10
    assert count(engine, "status = 'pending'") == 5


def test_iso_text_and_float_and_millisecond_columns(engine: Engine, add_images: Callable[..., list[str]]) -> None:
    # Tables another app owns in the shared database.
    now = datetime.now(UTC)
    with write_session(engine) as s:
        s.execute(text("CREATE TABLE sessions (id TEXT PRIMARY KEY, expires_at TEXT)"))
        s.execute(text("CREATE TABLE events (ts REAL, ms INTEGER)"))  # no primary key: rowid
        expired = [now - timedelta(minutes=5), now - timedelta(days=3)]
        live = [now + timedelta(hours=1), now + timedelta(days=3)]
        forms = [lambda d: d.isoformat(), lambda d: d.strftime("%Y-%m-%d %H:%M:%S"),
                 lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                 lambda d: d.astimezone(timezone(timedelta(hours=-7))).isoformat()]
        rows = [{"id": f"{kind}-{n}-{i}", "e": form(d)}
                for kind, dates in (("expired", expired), ("live", live))
                for n, d in enumerate(dates) for i, form in enumerate(forms)]
        s.execute(text("INSERT INTO sessions VALUES (:id, :e)"), rows)
        s.execute(text("INSERT INTO sessions VALUES ('never', NULL)"))
        t = time.time()
        s.execute(text("INSERT INTO events VALUES (:ts, :ms)"),
                  [{"ts": t - age, "ms": int((t - age) * 1000)} for age in (10.5, 100.5, 1000.5)])

    figures = sweep(engine, [
        TtlRule(table="sessions", column="expires_at", max_age_s=0),
        TtlRule(table="events", column="ts", max_age_s=50, name="events by seconds"),
    ])
    assert figures["rules"]["sessions.expires_at"]["deleted"] == 8
    assert count(engine, "id LIKE 'expired-%'", "sessions") == 0
    assert count(engine, "id LIKE 'live-%'", "sessions") == 8
    assert count(engine, "id = 'never'", "sessions") == 1  # NULL never expires
    assert figures["rules"]["events by seconds"]["deleted"] == 2
    sweep(engine, [TtlRule(table="events", column="ms", max_age_s=5, format="unix_ms")])
    assert count(engine, table="events") == 0


@pytest.mark.parametrize("rule, expected", [
    (TtlRule(table="imagez", column="created_at", max_age_s=1, name="typo table"),
     "TTL rule 'typo table' (table='imagez', column='created_at'): table 'imagez' does not exist"),
    (TtlRule(table="images", column="created", max_age_s=1),
     "TTL rule 'images.created' (table='images', column='created'): column 'created' does not exist"),
    (TtlRule(table="images", column="created_at", max_age_s=1, where={"stat": "failed"}, name="bad filter"),
     "TTL rule 'bad filter'"),
    (TtlRule(table="images; DROP TABLE images", column="created_at", max_age_s=1, name="injection"),
     ("TTL rule 'injection' (table='images; DROP TABLE images', column='created_at'): table "
     "'images; DROP TABLE images' is not a plain identifier")),
    (TtlRule(table="images", column="created_at) OR 1=1 --", max_age_s=1),
     "is not a plain identifier"),
    (TtlRule(table="images", column="created_at", max_age_s=1,
             where={"status = 'x' OR 1=1 OR status": "failed"}, name="injection in where"),
     "TTL rule 'injection in where'"),
    (TtlRule(table="images", column="created_at", max_age_s=1, where={"status": {"$ne": 1}}, name="odd value"),
     "where.status"),
    (TtlRule(table="images", column="created_at", max_age_s=-5, name="negative"), "max_age_s -5"),
    (TtlRule(table="images", column="created_at", max_age_s=1, format="epoch", name="fmt"), "format 'epoch'"),
    (TtlRule(table="sqlite_master", column="name", max_age_s=1), "does not exist"),
])
def test_bad_rules_are_refused_with_the_rule_named(engine: Engine, add_images: Callable[..., list[str]],
                                                   rule: TtlRule, expected: str) -> None:
    ids = add_images(engine, 3, age_s=10 * DAY)
    good = TtlRule(table="images", column="created_at", max_age_s=DAY, name="good")
    with pytest.raises(TtlRuleError) as err:
        check_rules(engine, [good, rule])
    assert expected in str(err.value)
    with pytest.raises(TtlRuleError):
        sweep(engine, [good, rule])  # checked before anything is deleted
    assert count(engine) == len(ids)
    assert count(engine, "name = 'images'", "sqlite_schema") == 1


def test_images_batch_reports_variant_paths_and_owned_originals(engine: Engine,
                                                                add_images: Callable[..., list[str]]) -> None:
    owned = add_images(engine, 3, age_s=5 * DAY, prefix="owned", owns_original=True)
    foreign = add_images(engine, 2, age_s=5 * DAY, prefix="foreign", owns_original=False)
    with write_session(engine) as s:
        for image_id in owned + foreign:
            for w in (320, 640):
                s.add(ImageVariant(id=f"{image_id}-{w}", image_id=image_id, width=w, format="webp",
                                   path=f"variants/{image_id}/{w}.webp", size=1))
    seen: list[DeletedImages] = []
    sweep(engine, [TtlRule(table="images", column="created_at", max_age_s=DAY)], batch_size=2,
          on_delete=seen.append)
    assert sorted(i for d in seen for i in d.image_ids) == sorted(owned + foreign)
    assert len({p for d in seen for p in d.variant_paths}) == 10
    assert sorted(p for d in seen for p in d.owned_originals) == sorted(f"originals/{i}.jpg" for i in owned)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ImageVariant)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(Image)).scalar_one() == 0


def test_hook_failure_is_a_warning_not_a_lost_sweep(engine: Engine, add_images: Callable[..., list[str]]) -> None:
    add_images(engine, 4, age_s=5 * DAY)

    def broken(_: DeletedImages) -> None:
        raise OSError("disk gone")

    figures = sweep(engine, [TtlRule(table="images", column="created_at", max_age_s=DAY)], on_delete=broken)
    assert figures["deleted"] == 4
    assert "disk gone" in figures["warnings"][0]

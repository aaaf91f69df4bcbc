"""Search by words with the default config (local embedder): full-text over captions, tags, filenames."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from db.engine import write_session
from db.maintenance.ttl import TtlRule, sweep
from db.models import Image as ImageRow
from jobs.embeddings.search import Filters, SearchError, search
from jobs.maintenance.files import image_file_remover
from tests.embeddings.search_helpers import add_completed, embed
from worker.api import Darkroom
from worker.app import App
from worker.cli import main


def find(app: App, query: str, limit: int = 10, mode: str = "auto", **filters: object) -> list[str]:
    cfg = app.settings
    result = search(app.engine, app.vector_store, app.embedder, cfg.search, query,
                    limit, mode, Filters(**filters))  # type: ignore[arg-type]
    return [h.filename for h in result.hits]


@pytest.fixture
def captioned(app: App, tmp_path: Path) -> dict[str, str]:
    rows: dict[str, dict[str, Any]] = {
        "kite.jpg": {"caption": "A red kite over the dunes", "tags": ["bird", "sky"], "user": 42},
        "dog.jpg": {"alt": "A dog asleep on the beach", "tags": "pet, sand", "user": 7},
        "city.jpg": {"title": "Night lights", "description": "The city after rain", "user": 42},
        "harbour_at_dawn.jpg": {"camera": "x100"},
    }
    ids = {name: add_completed(app, tmp_path, name, meta) for name, meta in rows.items()}
    embed(app)
    return ids


def test_found_by_caption_word_tag_stem_and_filename(app: App, captioned: dict[str, str]) -> None:
    assert find(app, "dunes") == ["kite.jpg"]
    assert find(app, "bird") == ["kite.jpg"]  # a tag of a list
    assert find(app, "sand") == ["dog.jpg"]  # a tag of a comma string
    assert find(app, "kites") == ["kite.jpg"]  # stemming: kites -> kite
    assert find(app, "sleeping dogs")[0] == "dog.jpg"  # asleep/sleeping differ, dogs -> dog
    assert find(app, "harbour") == ["harbour_at_dawn.jpg"]  # the filename without its extension
    assert find(app, "x100") == []  # a metadata key outside [search] fields is not text
    assert find(app, "rain city")[0] == "city.jpg"
    # The best hit is the one matching more of the words.
    assert find(app, "red kite night lights")[:1] in (["kite.jpg"], ["city.jpg"])
    assert find(app, "kite over the dunes")[0] == "kite.jpg"
    assert find(app, "zebra") == []  # no match: no hits, not an error


def test_ttl_sweep_and_metadata_change_update_what_finds_an_image(app: App, captioned: dict[str, str]) -> None:
    # The TTL sweep deletes the kite's row; the duty's hook deletes its vector row, text and all.
    with write_session(app.engine) as s:
        s.execute(update(ImageRow).where(ImageRow.id == captioned["kite.jpg"]).values(created_at=1))
    remover = image_file_remover(app.settings.paths.media_dir, app.delete_vectors)
    out = sweep(app.engine, [TtlRule(table="images", column="created_at", max_age_s=86_400)], on_delete=remover)
    assert out["deleted"] == 1
    assert find(app, "kite") == [] and find(app, "bird") == []
    # New metadata, re-embedded (embedding_model cleared, as reprocessing does): the old words stop
    # finding the dog, the new ones find it.
    with write_session(app.engine) as s:
        s.execute(update(ImageRow).where(ImageRow.id == captioned["dog.jpg"]).values(
            metadata_=json.dumps({"caption": "A cat on a windowsill"}), embedding_model=None))
    assert embed(app).embedded == 1
    assert find(app, "beach") == [] and find(app, "sand") == []
    assert find(app, "cats") == ["dog.jpg"]
    assert app.vector_store.count("local-v2") == 3  # replaced, not duplicated


def test_vector_and_hybrid_need_an_embedder_that_embeds_words(app: App, captioned: dict[str, str]) -> None:
    for mode in ("vector", "hybrid"):
        with pytest.raises(SearchError, match=r"cannot embed words.*\[embeddings\]"):
            find(app, "dog", mode=mode)
    assert find(app, "dog", mode="auto") == ["dog.jpg"]  # auto falls back to text


@pytest.mark.parametrize("query", [
    '"unbalanced quote', "title:kite", "(dunes", "kite)", "a AND OR NOT", "*", "~2", "+-^", "it's",
    "caption:\"x\" AND (y OR", "\\", "'; DROP TABLE images; --", "kite\x00dunes", "\x00", "k" * 10_240,
    "kite " * 2_048, "🪁 凧", "the of and",
])
def test_hostile_queries_give_hits_or_nothing_never_an_error(app: App, captioned: dict[str, str],
                                                             query: str) -> None:
    if not query.replace("\x00", "").strip():
        with pytest.raises(SearchError, match="empty query"):
            find(app, query)
        return
    hits = find(app, query)
    assert set(hits) <= set(captioned)
    if "kite" in query.replace("\x00", " ").split() or query.startswith("kite"):
        assert hits and hits[0] == "kite.jpg"


def test_filters_fill_the_limit_from_past_the_first_page(app: App, tmp_path: Path) -> None:
    # 40 images that rank HIGHER for "kite" than the 12 that match the filters.
    for i in range(40):
        add_completed(app, tmp_path, f"other{i}.jpg", {"caption": "kite kite", "user": 1}, created_at=1_000)
    wanted = set()
    for i in range(12):
        wanted.add(add_completed(app, tmp_path, f"wanted{i}.jpg",
                                 {"caption": "a kite far away over a long grey stretch of winter sand",
                                  "user": 42, "tags": ["keep", "x"]},
                                 created_at=1_767_225_600 + i, recipe="avatar"))
    embed(app)
    assert all(n.startswith("other") for n in find(app, "kite", limit=10))  # the raw first page
    for filters in ({"where": (("user", "42"),)}, {"where": (("tags", "keep"),)}, {"recipe": "avatar"},
                    {"since": 1_767_225_600}, {"recipe": "avatar", "since": 1_767_225_600,
                                               "where": (("user", "42"),), "status": "completed"}):
        hits = find(app, "kite", limit=10, **filters)  # type: ignore[arg-type]
        assert len(hits) == 10 and all(n.startswith("wanted") for n in hits), filters
    assert len(find(app, "kite", limit=50, where=(("user", "42"),))) == 12
    assert find(app, "kite", recipe="default", limit=50) and all(
        n.startswith("other") for n in find(app, "kite", recipe="default", limit=50))
    assert find(app, "kite", since=1_767_225_600 + 11) == ["wanted11.jpg"]
    assert find(app, "kite", status="failed") == []  # only completed images are indexed
    assert find(app, "kite", where=(("user", "it's a \\ 'quote'"),)) == []  # quoted, not spliced


def test_cli_search_json_messages_and_exit_codes(config_path: Path, app: App, captioned: dict[str, str]) -> None:
    runner = CliRunner()

    def cli(*args: str) -> tuple[int, str, str]:
        r = runner.invoke(main, ["--config", str(config_path), "search", *args])
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
        return r.exit_code, r.stdout, r.stderr

    code, out, _ = cli("kites", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["query"] == "kites" and doc["mode"] == "text"
    assert [h["id"] for h in doc["hits"]] == [captioned["kite.jpg"]]
    hit = doc["hits"][0]
    assert set(hit) == {"id", "score", "filename", "metadata", "variants"}
    assert hit["metadata"]["user"] == 42 and hit["variants"] == [] and hit["score"] > 0
    code, out, _ = cli("zebra", "--json")
    assert code == 0 and json.loads(out)["hits"] == []
    code, out, _ = cli("zebra")
    assert code == 0 and "no images match" in out
    code, out, _ = cli("kite", "--where", "user=42", "--since", "1970-01-02", "--recipe", "default")
    assert code == 0 and "kite.jpg" in out
    code, _, err = cli("   ")
    assert code == 1 and "empty query" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("dog", "--mode", "vector")
    assert code == 1 and "[embeddings]" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("dog", "--where", "novalue")
    assert code == 1 and "key=value" in err
    code, _, err = cli("dog", "--since", "yesterday")
    assert code == 1 and "2026-01-01" in err
    code, out, _ = cli('caption:"(x', "--json")
    assert code == 0 and json.loads(out)["hits"] == []


def test_python_api_search(config_path: Path, app: App, captioned: dict[str, str]) -> None:
    with Darkroom.from_config(config_path) as dr:
        hits = dr.search("dunes", limit=5)
        assert len(hits) == 1
        image_id, score, filename, metadata = hits[0]
        assert (image_id, filename) == (captioned["kite.jpg"], "kite.jpg") and score > 0
        assert metadata["tags"] == ["bird", "sky"]
        assert [h.filename for h in dr.search("night", where={"user": 42}, since="1970-01-02")] == ["city.jpg"]
        assert dr.search("night", where={"user": 7}) == []
        with pytest.raises(TypeError, match="colour"):
            dr.search("night", colour="red")
        with pytest.raises(ValueError, match="empty query"):
            dr.search("")


def test_search_settings_fields_and_language(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from worker.app import build
    from worker.settings import ConfigError, load

    path = make_config(search={"fields": ["caption", "credit"], "include_filename": False})
    app = build(load(path, env={}))
    app.migrate()
    try:
        add_completed(app, tmp_path, "harbour.jpg", {"caption": "boats", "credit": "Ansel", "alt": "water"})
        embed(app)
        assert find(app, "ansel") == ["harbour.jpg"] and find(app, "boats") == ["harbour.jpg"]
        assert find(app, "water") == [] and find(app, "harbour") == []
    finally:
        app.close()
    with pytest.raises(ConfigError, match="search.language"):
        load(make_config(search={"language": "Klingon"}), env={})


def test_old_vector_tables_get_search_columns_without_re_embedding(app: App, tmp_path: Path) -> None:
    """A table written before search existed: columns added, rows backfilled from the database."""
    import lancedb
    import numpy as np
    import pyarrow as pa

    from jobs.embeddings.embedders import LocalEmbedder
    from jobs.embeddings.store import META_DIM, META_MODEL, table_name

    ids = [add_completed(app, tmp_path, f"old{i}.jpg", {"caption": f"old harbour photo {i}"}) for i in range(3)]
    dim = LocalEmbedder().dim
    schema = pa.schema([pa.field("image_id", pa.string(), nullable=False),
                        pa.field("model", pa.string(), nullable=False),
                        pa.field("vector", pa.list_(pa.float32(), dim)), pa.field("embedded_at", pa.float64())],
                       metadata={META_MODEL: LocalEmbedder.model.encode(), META_DIM: str(dim).encode()})
    vecs = np.random.default_rng(1).normal(size=(3, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    db = lancedb.connect(app.settings.embeddings.lancedb_dir)
    db.create_table(table_name(LocalEmbedder.model), pa.table({
        "image_id": ids, "model": [LocalEmbedder.model] * 3,
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), dim),
        "embedded_at": [time.time()] * 3}, schema=schema))
    with write_session(app.engine) as s:
        s.execute(update(ImageRow).where(ImageRow.id.in_(ids)).values(embedding_model=LocalEmbedder.model,
                                                                       embedded_at=time.time()))
    with pytest.raises(SearchError, match="being added"):
        find(app, "harbour")
    result = embed(app)
    assert result.embedded == 0  # nothing re-embedded
    assert sorted(find(app, "harbour")) == ["old0.jpg", "old1.jpg", "old2.jpg"]
    store = app.vector_store
    assert store.count(LocalEmbedder.model) == 3
    got = store.get(LocalEmbedder.model, ids)
    assert all(np.allclose(got[i], v) for i, v in zip(ids, vecs))  # the vectors are untouched
    # New images still land in the migrated table, searchable at once.
    add_completed(app, tmp_path, "new.jpg", {"caption": "a new harbour"})
    assert embed(app).embedded == 1 and len(find(app, "harbour")) == 4

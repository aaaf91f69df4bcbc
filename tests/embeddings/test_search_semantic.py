"""Semantic and hybrid search with an ``http`` embedder against a real local model server.

The server (tests/embeddings/concept_space.py) embeds words and pictures into
one toy space: a picture points along the concept of its main colour, a word
along its concept ("scarlet" and "crimson" both along *red*). So a query can
find an image whose caption shares no word with it, by meaning alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jobs.embeddings.search import Filters, SearchError, search
from tests.embeddings.concept_space import concept_vector
from tests.embeddings.embed_server import EmbedServer
from tests.embeddings.search_helpers import add_completed, embed
from worker.api import Darkroom
from worker.app import App, build
from worker.cli import main
from worker.settings import load

DIM = 32
# The order of cosine similarity to "red" of the fixture's pictures.
RED_FIRST = ["harbour.jpg", "sails.jpg", "brick.jpg", "rust.jpg", "meadow.jpg", "flag.jpg"]


@pytest.fixture
def server() -> Iterator[EmbedServer]:
    srv = EmbedServer(DIM, embed=concept_vector)
    yield srv
    srv.close()


@pytest.fixture
def make_app(make_config: Callable[..., Path], server: EmbedServer) -> Iterator[Callable[..., tuple[App, Path]]]:
    """``make_app(input_kind=..., query_input=...)``: an App whose embedder is the test server."""
    made: list[App] = []

    def _make(**http: Any) -> tuple[App, Path]:
        path = make_config(embeddings={"embedder": "http", "http": {
            "base_url": server.base_url, "model": "toy-clip", "dimensions": DIM, "max_retries": 0, **http}})
        application = build(load(path, env={}))
        application.migrate()
        made.append(application)
        return application, path

    yield _make
    for application in made:
        application.close()


def find(app: App, query: str, mode: str = "auto", limit: int = 10, **filters: Any) -> tuple[str, list[str]]:
    result = search(app.engine, app.vector_store, app.embedder, app.settings.search, query, limit, mode,
                    Filters(**filters))
    return result.mode, [h.filename for h in result.hits]


@pytest.fixture
def multimodal(make_app: Callable[..., tuple[App, Path]], tmp_path: Path,
               server: EmbedServer) -> tuple[App, Path, dict[str, str]]:
    """Pictures embedded by their pixels (a CLIP-like model), queries sent as text."""
    app, path = make_app(input_kind="image", query_input="text", query_prefix="a photo of ")
    rows: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {
        # the purest red, a caption that shares no word with "scarlet": the best vector hit only
        "harbour.jpg": ((235, 5, 5), {"caption": "Boats in the harbour at dusk", "user": 1}),
        # red AND the query word: second in the vector list and in the text list
        "sails.jpg": ((200, 40, 40), {"caption": "Scarlet sails", "user": 2}),
        # redder than anything below, no word of the query
        "brick.jpg": ((170, 70, 60), {"caption": "An old wall", "user": 1}),
        "rust.jpg": ((150, 90, 60), {"caption": "A forgotten tractor", "user": 1}),
        "meadow.jpg": ((30, 170, 40), {"caption": "A quiet meadow", "user": 1}),
        # the query word three times over dark blue: the best text hit, far in vector space
        "flag.jpg": ((20, 30, 210), {"caption": "scarlet, scarlet and scarlet ribbons", "user": 2}),
    }
    ids = {name: add_completed(app, tmp_path, name, meta, colour=colour) for name, (colour, meta) in rows.items()}
    assert embed(app).embedded == len(rows)
    server.requests.clear()
    return app, path, ids


def test_vector_mode_finds_by_meaning_a_caption_without_the_word(
        multimodal: tuple[App, Path, dict[str, str]], server: EmbedServer) -> None:
    app, _, _ = multimodal
    assert find(app, "scarlet", "text") == ("text", ["flag.jpg", "sails.jpg"])  # by the word only
    assert find(app, "crimson", "text") == ("text", [])  # no caption has the word
    # By meaning: the reddest pictures first, whatever their captions say.
    assert find(app, "crimson", "vector") == ("vector", RED_FIRST)
    mode, hits = find(app, "emerald", "vector", limit=1)
    assert (mode, hits) == ("vector", ["meadow.jpg"])
    # query_input = "text": the query went to the server as one plain string, with the prefix.
    assert [r["input"] for r in server.requests] == [["a photo of crimson"], ["a photo of emerald"]]
    assert all(r["model"] == "toy-clip" for r in server.requests)


def test_hybrid_ranks_a_match_of_both_lists_first(multimodal: tuple[App, Path, dict[str, str]]) -> None:
    app, _, _ = multimodal
    assert find(app, "scarlet", "text")[1] == ["flag.jpg", "sails.jpg"]
    assert find(app, "scarlet", "vector")[1] == RED_FIRST
    # sails is second in both lists; fused (RRF, 1/(60 + rank)) it beats the best of each.
    assert find(app, "scarlet", "hybrid") == ("hybrid", ["sails.jpg", "flag.jpg", "harbour.jpg", "brick.jpg",
                                                         "rust.jpg", "meadow.jpg"])
    assert find(app, "scarlet", limit=1) == ("hybrid", ["sails.jpg"])  # auto: hybrid when words embed
    # A query no caption matches: hybrid still answers, from the vector list alone.
    assert find(app, "crimson", "hybrid") == ("hybrid", RED_FIRST)


def test_filters_apply_inside_vector_and_hybrid(multimodal: tuple[App, Path, dict[str, str]]) -> None:
    app, _, _ = multimodal
    for mode in ("vector", "hybrid"):
        _, hits = find(app, "crimson", mode, where=(("user", "2"),))
        assert hits[0] == "sails.jpg" and set(hits) <= {"sails.jpg", "flag.jpg"}, mode
        _, hits = find(app, "crimson", mode, limit=1, where=(("user", "1"),))
        assert hits == ["harbour.jpg"], mode
        assert find(app, "crimson", mode, recipe="avatar") == (mode, [])


def test_text_model_with_query_input_auto(make_app: Callable[..., tuple[App, Path]], tmp_path: Path,
                                          server: EmbedServer) -> None:
    """A text-only model embeds captions; ``query_input = "auto"`` sends queries as text too."""
    app, _ = make_app(input_kind="text")
    add_completed(app, tmp_path, "a.jpg", {"caption": "A dog asleep on the beach"})
    add_completed(app, tmp_path, "b.jpg", {"caption": "Downtown skyline at night"})
    add_completed(app, tmp_path, "c.jpg", {"caption": "A falcon in flight"})
    embed(app)
    assert find(app, "puppies", "text")[1] == []
    assert find(app, "puppies", "vector", limit=1) == ("vector", ["a.jpg"])
    assert find(app, "urban", "auto", limit=1) == ("hybrid", ["b.jpg"])
    assert find(app, "hawk", "hybrid", limit=1) == ("hybrid", ["c.jpg"])
    assert server.requests[-1]["input"] == ["hawk"]


def test_image_model_without_query_input_cannot_embed_words(make_app: Callable[..., tuple[App, Path]],
                                                            tmp_path: Path, server: EmbedServer) -> None:
    app, _ = make_app(input_kind="image")  # query_input = "auto": none for an image model
    add_completed(app, tmp_path, "sails.jpg", {"caption": "Scarlet sails"})
    embed(app)
    n = len(server.requests)
    with pytest.raises(SearchError, match=r"cannot embed words.*query_input"):
        find(app, "scarlet", "vector")
    assert find(app, "scarlet") == ("text", ["sails.jpg"])  # auto falls back to text
    assert len(server.requests) == n  # the query was never sent


def test_embedder_down_at_query_time(multimodal: tuple[App, Path, dict[str, str]], server: EmbedServer) -> None:
    app, _, _ = multimodal
    server.down = True
    with pytest.raises(SearchError, match="could not embed the query"):
        find(app, "scarlet", "vector")
    assert find(app, "scarlet") == ("text", ["flag.jpg", "sails.jpg"])  # auto: the text list alone


def test_cli_and_api_vector_and_hybrid(multimodal: tuple[App, Path, dict[str, str]]) -> None:
    _, path, ids = multimodal
    runner = CliRunner()
    r = runner.invoke(main, ["--config", str(path), "search", "crimson", "--mode", "vector", "--json",
                             "--limit", "2"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["mode"] == "vector" and {h["id"] for h in doc["hits"]} == {ids["harbour.jpg"], ids["sails.jpg"]}
    assert all(0 < h["score"] <= 1 for h in doc["hits"])  # cosine similarity
    r = runner.invoke(main, ["--config", str(path), "search", "scarlet"])
    assert r.exit_code == 0 and "(hybrid)" in r.stdout and r.stdout.index("sails.jpg") < r.stdout.index("flag.jpg")
    with Darkroom.from_config(path) as dr:
        hits = dr.search("scarlet", mode="hybrid", limit=3)
        assert hits[0].filename == "sails.jpg" and hits[0].score > hits[1].score > 0
        assert [h.filename for h in dr.search("crimson", mode="vector", where={"user": 1})][:1] == ["harbour.jpg"]


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
@pytest.mark.parametrize("query", ['"unbalanced', "caption:(x AND", "scarlet\x00sails", "s" * 10_240,
                                   "scarlet " * 2_048, "'; --", "🪁"])
def test_hostile_queries_in_vector_and_hybrid(multimodal: tuple[App, Path, dict[str, str]], mode: str,
                                              query: str) -> None:
    app, _, _ = multimodal
    got, hits = find(app, query, mode)
    assert got == mode and set(hits) <= set(RED_FIRST)


def test_cli_subprocess_prints_results_only(multimodal: tuple[App, Path, dict[str, str]]) -> None:
    """A one-shot command is quiet: no LanceDB warnings on stderr, in any mode."""
    from tests.conftest import run_cli

    _, path, _ = multimodal
    for mode in ("text", "vector", "hybrid"):
        proc = run_cli(path, "search", "scarlet", "--mode", mode)
        assert proc.stderr == "" and "sails.jpg" in proc.stdout, (mode, proc.stderr)


@pytest.mark.parametrize("query", ['title:"(x', "a AND (b OR", "s" * 10_240, "scarlet\x00sails", "*", "\\"])
def test_hostile_queries_through_the_cli_and_the_api(multimodal: tuple[App, Path, dict[str, str]],
                                                     query: str) -> None:
    """Every mode, from the CLI (one line, exit 0) and the API (hits or none): never a traceback."""
    _, path, _ = multimodal
    runner = CliRunner()
    with Darkroom.from_config(path) as dr:
        for mode in ("text", "vector", "hybrid", "auto"):
            r = runner.invoke(main, ["--config", str(path), "search", query, "--mode", mode, "--json"])
            assert r.exception is None and r.exit_code == 0, (mode, r.output)
            assert set(json.loads(r.stdout)) == {"query", "mode", "hits"}
            assert all(h.filename in RED_FIRST for h in dr.search(query, mode=mode))
    for empty in ("\x00", " \x00\t"):
        r = runner.invoke(main, ["--config", str(path), "search", empty, "--mode", "hybrid"])
        assert r.exit_code == 1 and "empty query" in r.stderr and "Traceback" not in r.output

"""The local embedder inside the image job: the job's vector is the step's, and the step opens no file for it.

Real SQLite, real LanceDB dir, real images through ``process_image``; the
HTTP embedder is a real local server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from sqlalchemy import select, text, update

from db import migrate
from db.engine import make_engine, read_sessions, write_session
from db.models import Image as ImageRow
from jobs import image_job, media
from jobs.embeddings import inline
from jobs.embeddings.embedders import EmbedInput, HttpEmbedder, HttpEmbedderSettings, LocalEmbedder
from jobs.embeddings.settings import EmbeddingSettings
from jobs.embeddings.step import run_step
from jobs.intake import submit_file
from tests.conftest import all_backends
from tests.embeddings.embed_server import EmbedServer
from tests.imagefiles import photo
from tests.imaging.cases import write_legit
from worker.app import App, build, make_vector_store
from worker.settings import load

AVATAR = {"widths": [64, 128], "aspect": "1:1", "fit": "cover"}
# Every kind of pixels the job decodes differently: draft-decoded JPEG, EXIF rotation, CMYK + ICC,
# 16-bit, alpha, palette with transparency, P3 profile, HEIF, animation (first frame).
KINDS = ("orient_6.jpg", "cmyk_adobe.jpg", "gray16.png", "rgb48.png", "alpha.png", "palette_transparent.gif",
         "p3.png", "photo.heic", "animated.gif", "gray_alpha.png")


@pytest.fixture(scope="module")
def legit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_legit(tmp_path_factory.mktemp("legit"))


@pytest.fixture
def app(make_config: Callable[..., Path]) -> Iterator[App]:
    application = build(load(make_config(**{"recipes.avatar": AVATAR}), env={}))
    application.migrate()
    application.install_context()
    yield application
    application.close()


def rendered(app: App, path: Path, recipe: str | None = None) -> str:
    """``path`` submitted and processed by the image job; returns the image id."""
    ctx = app._context
    assert ctx is not None
    image_id = submit_file(app.engine, app.tasks, app.settings.paths.media_dir, path, recipe=recipe).image_id
    assert image_job.process_image(ctx, image_id) == "completed"
    return image_id


def pending(app: App, image_id: str) -> tuple[bytes | None, str | None]:
    with read_sessions(app.engine)() as s:
        row = s.execute(select(ImageRow.pending_vector, ImageRow.pending_vector_model)
                        .where(ImageRow.id == image_id)).one()
    return row[0], row[1]


def job_vector(app: App, image_id: str) -> np.ndarray:
    blob, model = pending(app, image_id)
    assert blob is not None and model == LocalEmbedder.model
    vector = inline.stored(blob, model, LocalEmbedder.model, LocalEmbedder.dim)
    assert vector is not None
    return vector


def from_file(app: App, image_id: str) -> np.ndarray:
    """What the embedding step computes from the original (the app's embedder, the row's recipe)."""
    with read_sessions(app.engine)() as s:
        path, recipe = s.execute(select(ImageRow.original_path, ImageRow.recipe).where(ImageRow.id == image_id)).one()
    source = media.resolve_original(app.settings.paths.media_dir, path)
    return app.embedder.embed([EmbedInput(source, recipe=recipe)])[0]


def step(app: App, embedder: object, cfg: EmbeddingSettings | None = None) -> object:
    cfg = cfg or app.settings.embeddings
    return run_step(app.engine, make_vector_store(cfg), embedder, cfg, app.settings.paths.media_dir,  # type: ignore[arg-type]
                    "test")


class Counting:
    """The app's embedder, counting what it is asked to embed (it must be nothing for inline rows)."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner, self.asked = inner, 0
        self.model, self.dim = inner.model, inner.dim

    def embed(self, images: Sequence[EmbedInput]) -> np.ndarray:
        self.asked += len(images)
        return self.inner.embed(images)


@pytest.mark.parametrize("name", KINDS)
def test_the_job_vector_is_the_one_the_step_computes_from_the_file(app: App, legit: dict[str, Path],
                                                                    name: str) -> None:
    image_id = rendered(app, legit[name])
    np.testing.assert_allclose(job_vector(app, image_id), from_file(app, image_id), rtol=0, atol=1e-6)


def test_draft_decoded_photos_and_cover_recipes_match_too(app: App, tmp_path: Path) -> None:
    big = photo(tmp_path / "big.jpg", (1600, 1200))  # widths up to 256: the job decodes a 1/4 draft
    portrait = photo(tmp_path / "tall.jpg", (900, 1500), color=(20, 160, 90))
    for path, recipe in ((big, None), (big, "avatar"), (portrait, "avatar")):
        image_id = rendered(app, path, recipe)
        np.testing.assert_allclose(job_vector(app, image_id), from_file(app, image_id), rtol=0, atol=1e-6)
    # The whole picture is described, not the avatar's square crop: both recipes give near-equal vectors.
    default_id, avatar_id = rendered(app, big), rendered(app, big, "avatar")
    assert float(job_vector(app, default_id) @ job_vector(app, avatar_id)) > 0.99


@all_backends  # the vector travels through the completing UPDATE (a CASE on bytes): PostgreSQL too
def test_the_step_writes_inline_vectors_without_opening_any_original(app: App, tmp_path: Path) -> None:
    ids = [rendered(app, photo(tmp_path / f"p{i}.jpg", (640, 480), color=(40 * i, 90, 200 - 30 * i)))
           for i in range(5)]
    expected = {i: job_vector(app, i) for i in ids}
    for image_id in ids:  # the originals are gone: a step that opened one would refuse it
        with read_sessions(app.engine)() as s:
            rel = s.scalar(select(ImageRow.original_path).where(ImageRow.id == image_id))
        media.resolve_original(app.settings.paths.media_dir, str(rel)).unlink()
    counting = Counting(LocalEmbedder())
    result = step(app, counting)
    assert result.outcome == "done" and result.embedded == 5 and result.refused == 0  # type: ignore[attr-defined]
    assert counting.asked == 0
    stored = make_vector_store(app.settings.embeddings).get(LocalEmbedder.model, ids)
    for image_id in ids:
        np.testing.assert_allclose(stored[image_id], expected[image_id], rtol=0, atol=1e-6)
        assert pending(app, image_id) == (None, None)  # spent: cleared with the embedding record
    # Re-rendered after that (reprocessing): the row keeps its vector and gets no pending copy.
    again = rendered(app, photo(tmp_path / "again.jpg", (640, 480)))
    assert step(app, LocalEmbedder()).embedded == 1  # type: ignore[attr-defined]
    with write_session(app.engine) as s:
        s.execute(update(ImageRow).where(ImageRow.id == again).values(status="pending"))
    ctx = app._context
    assert ctx is not None
    assert image_job.process_image(ctx, again) == "completed" and pending(app, again) == (None, None)


def test_a_pending_vector_of_another_model_is_embedded_from_the_file(app: App, tmp_path: Path) -> None:
    ids = [rendered(app, photo(tmp_path / f"s{i}.jpg", (500, 400), color=(200, 30 * i, 60))) for i in range(3)]
    bogus = np.full(LocalEmbedder.dim, 1 / np.sqrt(LocalEmbedder.dim), dtype=np.float32)
    with write_session(app.engine) as s:  # as an older descriptor would have left them
        s.execute(update(ImageRow).where(ImageRow.id == ids[0]).values(
            pending_vector=bogus.tobytes(), pending_vector_model="local-v1"))
        s.execute(update(ImageRow).where(ImageRow.id == ids[1]).values(pending_vector=b"\x00" * 12))  # truncated
    counting = Counting(LocalEmbedder())
    assert step(app, counting).embedded == 3  # type: ignore[attr-defined]
    assert counting.asked == 2  # the two unusable ones, from their files; the third came from its row
    stored = make_vector_store(app.settings.embeddings).get(LocalEmbedder.model, ids)
    for image_id in ids:
        np.testing.assert_allclose(stored[image_id], from_file(app, image_id), rtol=0, atol=1e-6)
    assert float(stored[ids[0]] @ bogus) < 0.99


@pytest.fixture
def server() -> Iterator[EmbedServer]:
    srv = EmbedServer(16)
    yield srv
    srv.close()


def test_http_embedders_and_a_switch_to_them_go_through_the_step(make_config: Callable[..., Path],
                                                                 app: App, tmp_path: Path,
                                                                 server: EmbedServer) -> None:
    local_ids = [rendered(app, photo(tmp_path / f"l{i}.jpg", (400, 300))) for i in range(3)]
    http = HttpEmbedderSettings(base_url=server.base_url, model="clip", dimensions=16, image_max_side_px=32)
    cfg = dataclasses.replace(app.settings.embeddings, embedder="http", http=http)
    ctx = app._context
    assert ctx is not None
    ctx.extras["embedding"] = cfg  # the worker now runs with the http embedder
    http_id = rendered(app, photo(tmp_path / "h.jpg", (400, 300)))
    assert pending(app, http_id) == (None, None)  # the job embeds only with the local embedder
    result = step(app, HttpEmbedder(http), cfg)
    assert result.embedded == 4 and result.refused == 0  # type: ignore[attr-defined]
    assert len(server.requests) >= 1 and sum(len(r["input"]) for r in server.requests) == 4
    assert sorted(make_vector_store(cfg).ids("http:clip@16")) == sorted([*local_ids, http_id])
    assert all(pending(app, i) == (None, None) for i in local_ids)  # the local ones are spent too


def test_revision_0004_adds_two_nullable_columns_and_goes_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    migrate.upgrade(engine, "0003")
    with engine.begin() as conn:  # a contract-version-2 INSERT, before and after
        conn.execute(text("INSERT INTO images (id, filename, original_path, mime_type, size, status, recipe) "
                          "VALUES ('a', 'a.jpg', 'a.jpg', 'image/jpeg', 1, 'pending', NULL)"))
    migrate.upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO images (id, filename, original_path, mime_type, size, status) "
                          "VALUES ('b', 'b.jpg', 'b.jpg', 'image/jpeg', 1, 'pending')"))
        rows = conn.execute(text("SELECT id, pending_vector, pending_vector_model FROM images ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("a", None, None), ("b", None, None)]
    command.downgrade(migrate.alembic_config(engine), "0003")
    with engine.connect() as conn:
        columns = {r[1] for r in conn.execute(text("PRAGMA table_info(images)"))}
    assert "pending_vector" not in columns and "pending_vector_model" not in columns and "recipe" in columns
    engine.dispose()

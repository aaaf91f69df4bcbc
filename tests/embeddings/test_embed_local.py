"""The local descriptor finds transformed copies of a photo among distractors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.embeddings.embedders import EmbedInput, InputRejected, LocalEmbedder, make_embedder
from jobs.embeddings.store import VectorStore
from tests.embeddings.embed_photos import TRANSFORMS, make_photo


def test_vectors_are_unit_float32_of_the_declared_dim(corpus: list[Path]) -> None:
    emb = LocalEmbedder()
    out = emb.embed([EmbedInput(p) for p in corpus[:5]])
    assert out.dtype == np.float32 and out.shape == (5, emb.dim)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    # Deterministic: the same file gives the same vector.
    again = emb.embed([EmbedInput(corpus[0])])
    assert np.array_equal(out[0], again[0])
    assert emb.model == "local-v2"


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_transformed_copies_find_their_original_first(
    transform: str, corpus: list[Path], store: VectorStore, tmp_path: Path
) -> None:
    emb = LocalEmbedder()
    ids = [p.stem for p in corpus]
    store.upsert(emb.model, ids, emb.embed([EmbedInput(p) for p in corpus]))
    queries = corpus[:20]
    copies = []
    for p in queries:
        copy = tmp_path / f"{p.stem}-{transform}.jpg"
        with Image.open(p) as im:
            TRANSFORMS[transform](im.convert("RGB")).save(copy, quality=92)
        copies.append(copy)
    vectors = emb.embed([EmbedInput(c) for c in copies])
    for original, vec in zip(queries, vectors):
        hits = store.search(emb.model, vec, limit=3)
        assert hits[0].image_id == original.stem, (transform, original.stem, hits)


def test_unrelated_photos_stay_apart(corpus: list[Path]) -> None:
    out = LocalEmbedder().embed([EmbedInput(p) for p in corpus])
    sims = out @ out.T
    np.fill_diagonal(sims, 0.0)
    assert sims.max() < 0.9


def test_unreadable_input_is_rejected_with_its_index(corpus: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "not-an-image.jpg"
    bad.write_bytes(b"this is text, not pixels")
    with pytest.raises(InputRejected, match="not a readable image") as info:
        LocalEmbedder().embed([EmbedInput(corpus[0]), EmbedInput(bad)])
    assert info.value.index == 1
    with pytest.raises(InputRejected, match="file not found") as info:
        LocalEmbedder().embed([EmbedInput(tmp_path / "missing.png")])
    assert info.value.index == 0


def test_describe_handles_odd_modes_and_sizes(tmp_path: Path) -> None:
    emb = make_embedder("local")
    paths = []
    for i, img in enumerate([
        make_photo(1, (30, 500)).convert("L"),
        make_photo(2, (700, 20)).convert("RGBA"),
        make_photo(3, (8, 8)).convert("P"),
        Image.new("RGB", (50, 50), "white"),  # flat: no gradients, still a valid vector
    ]):
        p = tmp_path / f"odd-{i}.png"
        img.save(p)
        paths.append(p)
    out = emb.embed([EmbedInput(p) for p in paths])
    assert np.isfinite(out).all() and np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_unknown_embedder_name_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 'local' or 'http'"):
        make_embedder("clip")

"""A toy multimodal embedding space for the test server: words and pictures share concepts.

Each concept is one axis. A text's vector is the sum of the axes of the
concepts its words name (``puppy`` and ``dog`` both point along *dog*), plus
a small per-word component so texts differ; a picture's vector points
along the colour concepts in proportion to its mean red, green and blue (a
red picture sits next to "crimson", a purer red one nearer still). Two texts
that share no word but share meaning are near; unrelated ones are not.
"""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from tests.embeddings.embed_server import expected_vector

CONCEPTS: dict[str, tuple[str, ...]] = {
    "dog": ("dog", "dogs", "puppy", "puppies", "hound", "pup", "canine"),
    "coast": ("beach", "seaside", "shore", "sea", "coast", "sand", "dunes", "surf"),
    "bird": ("bird", "kite", "kites", "hawk", "raptor", "falcon", "eagle"),
    "city": ("city", "urban", "street", "downtown", "skyline"),
    "red": ("red", "crimson", "scarlet"),
    "blue": ("blue", "azure", "navy"),
    "green": ("green", "emerald", "forest"),
}
AXIS = {name: i for i, name in enumerate(CONCEPTS)}
WORD = {w: name for name, words in CONCEPTS.items() for w in words}
WORD_WEIGHT = 0.15


def concept_vector(text: str, dim: int) -> np.ndarray:
    assert dim > len(AXIS) + 8
    if text.startswith("data:image/"):
        return _picture(text, dim)
    v = np.zeros(dim, np.float64)
    words = re.findall(r"[a-z]+", text.lower())
    for w in words:
        if w in WORD:
            v[AXIS[WORD[w]]] += 1.0
        tail = expected_vector(w, dim - len(AXIS)).astype(np.float64)
        v[len(AXIS):] += WORD_WEIGHT * tail
    if not v.any():
        v = expected_vector(text, dim).astype(np.float64)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _picture(url: str, dim: int) -> np.ndarray:
    data = base64.b64decode(url.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as im:
        r, g, b = np.asarray(im.convert("RGB"), np.float64).reshape(-1, 3).mean(axis=0)
    v = np.zeros(dim, np.float64)
    for name, amount in zip(("red", "green", "blue"), (r, g, b)):
        v[AXIS[name]] = amount / 255.0
    v[len(AXIS):] += 0.02 * expected_vector(url[-64:], dim - len(AXIS)).astype(np.float64)
    return (v / np.linalg.norm(v)).astype(np.float32)

"""``http``: any OpenAI-compatible ``POST {base_url}/embeddings`` endpoint, via httpx.

Images travel as ``data:image/jpeg;base64,...`` URLs of a copy at most
``image_max_side_px`` wide (multimodal models); with ``input_kind = "text"``
the input's caption/metadata text is sent instead (text-only models).

Retries (inside one :meth:`HttpEmbedder.embed` call) on timeouts, connection
errors and 408/409/429/5xx, with exponential backoff that honours
``Retry-After``; a wait longer than ``max_backoff_s`` is not slept but raised
as :class:`EmbedderUnavailable` so the caller can back off without blocking a
worker. 400 is :class:`InputRejected`; 401/402/403/404 and other 4xx are
:class:`EmbedderRejected`, never retried.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jobs.backoff import Backoff, parse_retry_after

from .base import EmbedderRejected, EmbedderUnavailable, EmbedInput, InputRejected, check_vectors, normalise_rows
from .names import HttpEmbedderSettings, model_name

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


class HttpEmbedder:
    """Embed through an OpenAI-compatible ``/embeddings`` endpoint.

    >>> emb = HttpEmbedder(HttpEmbedderSettings(base_url="http://127.0.0.1:8080/v1",
    ...                                         model="clip", dimensions=512))
    >>> emb.model
    'http:clip@512'
    >>> emb.embed([EmbedInput(Path("cat.jpg"))]).shape          # doctest: +SKIP
    (1, 512)
    """

    def __init__(
        self,
        settings: HttpEmbedderSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        env: dict[str, str] | None = None,
    ) -> None:
        settings.check()
        self.settings = settings
        self._sleep = sleep
        headers = {"Accept": "application/json"}
        if settings.api_key_env:
            key = (os.environ if env is None else env).get(settings.api_key_env)
            if not key:
                raise EmbedderRejected(f"environment variable {settings.api_key_env} (api_key_env) is not set")
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            transport=transport,
            follow_redirects=False,
        )

    @property
    def model(self) -> str:
        return model_name(self.settings)

    @property
    def dim(self) -> int:
        return self.settings.dimensions

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def embed(self, images: Sequence[EmbedInput]) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        step = self.settings.batch_size
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            payloads = []
            for i, item in enumerate(chunk):
                try:
                    payloads.append(self._payload(item))
                except InputRejected as exc:
                    raise InputRejected(str(exc), index=start + i) from exc
            try:
                out[start:start + len(chunk)] = self._post(payloads)
            except InputRejected as exc:
                index = None if exc.index is None else start + exc.index
                raise InputRejected(str(exc), index=index) from exc
        return check_vectors(out, len(images), self.dim)

    @property
    def embeds_text(self) -> bool:
        """Whether a search query can be embedded into the space of the stored vectors."""
        kind = self.settings.query_input
        return kind == "text" or (kind == "auto" and self.settings.input_kind == "text")

    def embed_query(self, text: str) -> np.ndarray:
        """The unit vector of a search query (see ``query_input``), shape ``(dim,)``.

        >>> emb.embed_query("red kite over the dunes").shape      # doctest: +SKIP
        (512,)
        """
        if not self.embeds_text:
            raise EmbedderRejected("this embedder is set up for images only (query_input = 'none')")
        try:
            return check_vectors(self._post([self.settings.query_prefix + text]), 1, self.dim)[0]
        except InputRejected as exc:
            raise InputRejected(f"the embedder refused the query: {exc}") from exc

    # --- request building ---------------------------------------------------

    def _payload(self, item: EmbedInput) -> str:
        if self.settings.input_kind == "text":
            if not item.text:
                raise InputRejected(f"{item.path.name}: no caption or metadata text to embed")
            return item.text
        return image_data_url(item.path, self.settings.image_max_side_px)

    def _post(self, inputs: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"model": self.settings.model, "input": inputs, "encoding_format": "float"}
        if self.settings.send_dimensions:
            body["dimensions"] = self.settings.dimensions
        attempt = 0
        while True:
            try:
                response = self._client.post("/embeddings", json=body)
            except httpx.TimeoutException as exc:
                failure: EmbedderUnavailable = EmbedderUnavailable(f"embedder timed out: {exc!r}")
            except httpx.TransportError as exc:
                failure = EmbedderUnavailable(f"embedder unreachable: {exc!r}")
            else:
                if response.status_code == 200:
                    return self._parse(response, len(inputs))
                if response.status_code not in RETRY_STATUSES:
                    raise _rejection(response)
                failure = EmbedderUnavailable(
                    f"embedder answered {response.status_code}: {_snippet(response)}",
                    retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
                )
            if attempt >= self.settings.max_retries:
                raise failure
            policy = Backoff(self.settings.backoff_s, self.settings.max_backoff_s)
            if policy.over_cap(attempt + 1, failure.retry_after_s):
                raise failure  # the embedding step's outage backoff waits that long, not this call
            wait = policy.delay(attempt + 1, failure.retry_after_s)
            attempt += 1
            log.debug("embedder: %s; retry %d in %.2f s", failure, attempt, wait)
            self._sleep(wait)

    def _parse(self, response: httpx.Response, n: int) -> np.ndarray:
        try:
            doc = response.json()
            rows = doc["data"]
            ordered: list[Any] = [None] * n
            for row in rows:
                ordered[int(row["index"])] = row["embedding"]
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise EmbedderRejected(f"embedder answered with an unexpected body: {_snippet(response)}") from exc
        missing = [i for i, v in enumerate(ordered) if v is None]
        if missing or len(rows) != n:
            raise EmbedderRejected(f"embedder returned {len(rows)} embeddings for {n} inputs")
        try:
            matrix = np.asarray(ordered, dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise EmbedderRejected("embedder returned ragged or non-numeric embeddings") from exc
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise EmbedderRejected(
                f"embedder returned vectors of dimension {matrix.shape[-1] if matrix.ndim else '?'}, "
                f"configured dimensions = {self.dim}"
            )
        # Validate before normalising so a NaN is reported as the input's fault.
        check_vectors(matrix, n, self.dim)
        return normalise_rows(matrix)


def image_data_url(path: Path, max_side_px: int) -> str:
    """A JPEG ``data:`` URL of ``path``, at most ``max_side_px`` on its longer side."""
    try:
        with Image.open(path) as im:
            im.draft("RGB", (max_side_px, max_side_px))
            upright = ImageOps.exif_transpose(im)
            upright.thumbnail((max_side_px, max_side_px), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            upright.convert("RGB").save(buf, "JPEG", quality=90)
    except FileNotFoundError as exc:
        raise InputRejected(f"{path}: file not found") from exc
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputRejected(f"{path.name}: not a readable image ({exc})") from exc
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _rejection(response: httpx.Response) -> EmbedderRejected:
    status = response.status_code
    text = f"embedder refused the request ({status}): {_snippet(response)}"
    if status == 400:
        return InputRejected(text)
    if status in (401, 403):
        text += " - check the API key (api_key_env)"
    elif status == 404:
        text += " - check base_url and model"
    return EmbedderRejected(text)


def _snippet(response: httpx.Response, limit: int = 200) -> str:
    try:
        return response.text[:limit].strip() or response.reason_phrase
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return response.reason_phrase

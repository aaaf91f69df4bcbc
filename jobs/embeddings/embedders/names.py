"""What the config loader needs of the embedders, without numpy, Pillow or httpx.

A leaf: :mod:`jobs.embeddings.settings` (read by every command) imports it;
the embedders themselves (:mod:`.local`, :mod:`.http`) import it too, so the
settings type and the model names are defined once.

>>> local_model_name()
'local-v2'
>>> model_name(HttpEmbedderSettings(model="clip", dimensions=512))
'http:clip@512'
"""

from __future__ import annotations

from dataclasses import dataclass

# The local descriptor's version: change it whenever its vectors would change
# (jobs/embeddings/embedders/local.py); it is in the model name, so a change
# re-embeds everything.
LOCAL_VERSION = 2  # 2: the copy comes from the image job's decode (jobs/imaging/embed_copy.py)


def local_model_name() -> str:
    return f"local-v{LOCAL_VERSION}"


@dataclass(frozen=True)
class HttpEmbedderSettings:
    """Settings of the ``http`` embedder (``[embeddings.http]`` in config.toml)."""

    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "clip-vit-b-32"
    dimensions: int = 512
    send_dimensions: bool = False  # send "dimensions" in the request (models that can shorten)
    api_key_env: str = ""  # name of the environment variable holding the API key
    input_kind: str = "image"  # image | text
    # How a search query reaches the endpoint: "text" sends it as a plain string input
    # (a text model, or a multimodal model such as CLIP that embeds text and images in
    # one space); "none": the model cannot embed words; "auto": "text" when
    # input_kind = "text", else "none".
    query_input: str = "auto"
    query_prefix: str = ""  # put before each query (models trained with e.g. "search_query: ")
    batch_size: int = 16
    image_max_side_px: int = 512
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 0.5  # first retry delay; doubles each attempt
    max_backoff_s: float = 30.0  # longer waits are raised, not slept

    def check(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url: expected an http:// or https:// URL")
        if self.dimensions < 1:
            raise ValueError("dimensions: expected an integer >= 1")
        if self.input_kind not in ("image", "text"):
            raise ValueError("input_kind: expected 'image' or 'text'")
        if self.query_input not in ("auto", "text", "none"):
            raise ValueError("query_input: expected 'auto', 'text' or 'none'")
        if self.batch_size < 1:
            raise ValueError("batch_size: expected an integer >= 1")
        if self.max_retries < 0:
            raise ValueError("max_retries: expected an integer >= 0")
        for name in ("connect_timeout_s", "read_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected a number > 0")


def model_name(settings: HttpEmbedderSettings) -> str:
    """The endpoint's model and its dimension both change the vectors: both are in the name."""
    return f"http:{settings.model}@{settings.dimensions}"

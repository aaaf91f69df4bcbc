"""The http embedder against a real local server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.embeddings.embedders import (
    EmbedderRejected,
    EmbedderUnavailable,
    EmbedInput,
    HttpEmbedder,
    HttpEmbedderSettings,
    InputRejected,
)
from tests.embeddings.embed_server import EmbedServer, Reply, expected_vector

DIM = 16


@pytest.fixture
def server() -> Iterator[EmbedServer]:
    srv = EmbedServer(DIM)
    yield srv
    srv.close()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(server: EmbedServer, sleeps: Sleeps | None = None, **kw: object) -> HttpEmbedder:
    settings = HttpEmbedderSettings(base_url=server.base_url, model="test-clip", dimensions=DIM,
                                    **kw)  # type: ignore[arg-type]
    return HttpEmbedder(settings, sleep=sleeps if sleeps is not None else Sleeps(), env={"EMB_KEY": "s3cret"})


def test_batches_and_reorders_by_index(server: EmbedServer, corpus: list[Path]) -> None:
    inputs = [EmbedInput(p) for p in corpus[:7]]
    with make(server, batch_size=3, api_key_env="EMB_KEY", image_max_side_px=64) as emb:
        out = emb.embed(inputs)
    assert [len(r["input"]) for r in server.requests] == [3, 3, 1]
    sent = [x for r in server.requests for x in r["input"]]
    assert all(s.startswith("data:image/jpeg;base64,") for s in sent)
    thumb = Image.open(io.BytesIO(base64.b64decode(sent[0].split(",", 1)[1])))
    assert max(thumb.size) == 64
    # Row i is the vector of input i although the server listed rows reversed.
    expected = np.stack([expected_vector(s, DIM) for s in sent])
    assert np.allclose(out, expected, atol=1e-6)
    assert server.headers[0]["Authorization"] == "Bearer s3cret"
    assert server.requests[0]["model"] == "test-clip" and "dimensions" not in server.requests[0]
    assert emb.model == "http:test-clip@16"


def test_text_models_get_the_caption(server: EmbedServer, corpus: list[Path]) -> None:
    emb = make(server, input_kind="text", send_dimensions=True)
    out = emb.embed([EmbedInput(corpus[0], text="a red kite"), EmbedInput(corpus[1], text="sea")])
    assert server.requests[0]["input"] == ["a red kite", "sea"] and server.requests[0]["dimensions"] == DIM
    assert np.allclose(out[0], expected_vector("a red kite", DIM), atol=1e-6)
    with pytest.raises(InputRejected, match="no caption") as info:
        emb.embed([EmbedInput(corpus[0], text="x"), EmbedInput(corpus[1])])
    assert info.value.index == 1


def test_429_with_retry_after_then_success(server: EmbedServer, corpus: list[Path]) -> None:
    server.script = [Reply(429, {"Retry-After": "2"}, {"error": "slow down"})]
    sleeps = Sleeps()
    out = make(server, sleeps).embed([EmbedInput(corpus[0])])
    assert len(server.requests) == 2
    assert sleeps == [2.0]  # honoured the header rather than the 0.5 s backoff
    assert np.allclose(out[0], expected_vector(server.requests[1]["input"][0], DIM), atol=1e-6)


def test_503_outage_retries_with_backoff_then_gives_up(server: EmbedServer, corpus: list[Path]) -> None:
    server.down = True
    sleeps = Sleeps()
    with pytest.raises(EmbedderUnavailable, match="503"):
        make(server, sleeps, max_retries=3, backoff_s=0.5).embed([EmbedInput(corpus[0])])
    assert len(server.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    # The outage ends: the same embedder works again.
    server.down = False
    assert make(server).embed([EmbedInput(corpus[0])]).shape == (1, DIM)


def test_long_retry_after_is_raised_not_slept(server: EmbedServer, corpus: list[Path]) -> None:
    server.script = [Reply(503, {"Retry-After": "120"}, {"error": "maintenance"})]
    sleeps = Sleeps()
    with pytest.raises(EmbedderUnavailable) as info:
        make(server, sleeps, max_backoff_s=30.0).embed([EmbedInput(corpus[0])])
    assert info.value.retry_after_s == 120.0 and sleeps == [] and len(server.requests) == 1


@pytest.mark.parametrize("status", [401, 402, 403, 404])
def test_auth_and_missing_routes_are_not_retried(server: EmbedServer, corpus: list[Path], status: int) -> None:
    server.script = [Reply(status, body={"error": "nope"})]
    with pytest.raises(EmbedderRejected) as info:
        make(server).embed([EmbedInput(corpus[0])])
    assert not isinstance(info.value, InputRejected)
    assert len(server.requests) == 1


def test_400_is_the_inputs_fault(server: EmbedServer, corpus: list[Path]) -> None:
    server.script = [Reply(400, body={"error": "cannot decode image"})]
    with pytest.raises(InputRejected, match="cannot decode image"):
        make(server).embed([EmbedInput(corpus[0])])
    assert len(server.requests) == 1


def test_broken_vectors_are_refused(server: EmbedServer, corpus: list[Path]) -> None:
    nan_row = [0.1] * DIM
    nan_row[3] = float("nan")
    server.script = [
        Reply(body={"data": [{"index": 0, "embedding": [0.1] * DIM}, {"index": 1, "embedding": nan_row}]}),
        Reply(body={"data": [{"index": 0, "embedding": [0.1] * (DIM + 1)}]}),
        Reply(body={"data": []}),
    ]
    emb = make(server)
    with pytest.raises(InputRejected) as info:
        emb.embed([EmbedInput(corpus[0]), EmbedInput(corpus[1])])
    assert info.value.index == 1
    with pytest.raises(EmbedderRejected, match="dimension 17"):
        emb.embed([EmbedInput(corpus[0])])
    with pytest.raises(EmbedderRejected, match="0 embeddings for 1 inputs"):
        emb.embed([EmbedInput(corpus[0])])


def test_read_timeout_is_unavailable(server: EmbedServer, corpus: list[Path]) -> None:
    server.script = [Reply(delay_s=1.0)]
    with pytest.raises(EmbedderUnavailable, match="timed out"):
        make(server, max_retries=0, read_timeout_s=0.2).embed([EmbedInput(corpus[0])])


def test_connection_refused_is_unavailable(corpus: list[Path]) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = HttpEmbedderSettings(base_url=f"http://127.0.0.1:{port}/v1", dimensions=DIM, max_retries=1)
    sleeps = Sleeps()
    with pytest.raises(EmbedderUnavailable, match="unreachable"):
        HttpEmbedder(settings, sleep=sleeps).embed([EmbedInput(corpus[0])])
    assert sleeps == [0.5]


def test_missing_api_key_env_is_a_clear_error() -> None:
    settings = HttpEmbedderSettings(api_key_env="NO_SUCH_KEY_VAR", dimensions=DIM)
    with pytest.raises(EmbedderRejected, match="NO_SUCH_KEY_VAR"):
        HttpEmbedder(settings, env={})

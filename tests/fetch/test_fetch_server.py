"""fetch() against a real HTTP server on 127.0.0.1 (loopback allowed by the test's limits)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from jobs.fetch import FetchFailed, FetchLimits, FetchRefused, fetch, with_retries

from .conftest import LocalServer, RecordingTransport, image_bytes, send

LOOPBACK = FetchLimits(allow=("127.0.0.1/32",), connect_timeout_s=2, read_timeout_s=2, total_timeout_s=10)


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_fetches_an_image_to_a_file_named_by_its_hash(server: LocalServer, client: httpx.Client,
                                                       recorder: RecordingTransport, jpeg: bytes,
                                                       tmp_path: Path) -> None:
    server.routes["/cat.jpg"] = lambda h: send(h, 200, jpeg, "image/jpeg")
    got = fetch(server.url("/cat.jpg"), tmp_path, LOOPBACK, client=client)
    digest = hashlib.sha256(jpeg).hexdigest()
    assert got.path == tmp_path / f"{digest}.jpg"
    assert got.path.read_bytes() == jpeg
    assert (got.size, got.sha256, got.mime_type) == (len(jpeg), digest, "image/jpeg")
    assert got.final_url == server.url("/cat.jpg")
    assert leftovers(tmp_path) == [got.path.name]  # no .part file left behind
    # The request went to the checked IP, and the server saw the original Host.
    [request] = recorder.requests
    assert request.url.host == "127.0.0.1"
    assert server.hits[0].host_header == f"127.0.0.1:{server.port}"
    assert request.headers["user-agent"] == LOOPBACK.user_agent


def test_trusts_the_bytes_not_the_content_type(server: LocalServer, client: httpx.Client, tmp_path: Path) -> None:
    png = image_bytes("PNG")
    server.routes["/file"] = lambda h: send(h, 200, png, "text/plain")
    got = fetch(server.url("/file"), tmp_path, LOOPBACK, client=client)
    assert got.mime_type == "image/png" and got.path.suffix == ".png"


def test_html_served_as_jpeg_is_refused(server: LocalServer, client: httpx.Client, tmp_path: Path) -> None:
    html = b"<!DOCTYPE html><html><body>" + b"x" * 5000 + b"</body></html>"
    server.routes["/photo.jpg"] = lambda h: send(h, 200, html, "image/jpeg")
    with pytest.raises(FetchRefused, match=r"not an image \(the server said image/jpeg, the bytes are HTML\)"):
        fetch(server.url("/photo.jpg"), tmp_path, LOOPBACK, client=client)
    assert leftovers(tmp_path) == []


def test_type_outside_accept_types_is_refused(server: LocalServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/a.gif"] = lambda h: send(h, 200, image_bytes("GIF"), "image/gif")
    limits = FetchLimits(allow=LOOPBACK.allow, accept_types=("image/jpeg", "image/png"))
    with pytest.raises(FetchRefused, match="image/gif images are not accepted"):
        fetch(server.url("/a.gif"), tmp_path, limits, client=client)


def test_size_limit_enforced_mid_stream_without_content_length(server: LocalServer, client: httpx.Client,
                                                               jpeg: bytes, tmp_path: Path) -> None:
    sent: list[int] = []

    def endless(h: BaseHTTPRequestHandler) -> None:
        send(h, 200, jpeg, "image/jpeg", length=False)  # no Content-Length: the header cannot warn us
        try:
            for _ in range(200):  # would be ~6 MB; the client must hang up long before
                h.wfile.write(b"\0" * 32_768)
                h.wfile.flush()
                sent.append(32_768)
        except OSError:
            pass

    server.routes["/huge.jpg"] = endless
    limits = FetchLimits(allow=LOOPBACK.allow, max_bytes=100_000)
    with pytest.raises(FetchRefused, match="more than the limit of 100,000 bytes"):
        fetch(server.url("/huge.jpg"), tmp_path, limits, client=client)
    assert leftovers(tmp_path) == []
    assert sum(sent) < 200 * 32_768


def test_size_limit_checked_from_content_length_first(server: LocalServer, client: httpx.Client,
                                                      tmp_path: Path) -> None:
    body = image_bytes("PNG", (400, 400))
    server.routes["/big.png"] = lambda h: send(h, 200, body, "image/png")
    limits = FetchLimits(allow=LOOPBACK.allow, max_bytes=len(body) - 1)
    with pytest.raises(FetchRefused, match=f"{len(body):,} bytes is more than the limit"):
        fetch(server.url("/big.png"), tmp_path, limits, client=client)


def test_slow_server_times_out_as_retryable(server: LocalServer, client: httpx.Client, jpeg: bytes,
                                            tmp_path: Path) -> None:
    def stalls(h: BaseHTTPRequestHandler) -> None:
        time.sleep(5)
        send(h, 200, jpeg, "image/jpeg")

    server.routes["/slow.jpg"] = stalls
    limits = FetchLimits(allow=LOOPBACK.allow, read_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="timed out"):
        fetch(server.url("/slow.jpg"), tmp_path, limits, client=client)
    assert time.monotonic() - started < 5  # gave up without waiting for the server


def test_dripping_server_hits_the_total_timeout(server: LocalServer, client: httpx.Client, jpeg: bytes,
                                                tmp_path: Path) -> None:
    def drips(h: BaseHTTPRequestHandler) -> None:
        send(h, 200, jpeg, "image/jpeg", length=False)
        try:
            for _ in range(100):  # a byte every 0.1 s: never a read timeout, ~10 s in all
                time.sleep(0.1)
                h.wfile.write(b"\0")
                h.wfile.flush()
        except OSError:
            pass

    server.routes["/drip.jpg"] = drips
    limits = FetchLimits(allow=LOOPBACK.allow, read_timeout_s=1, total_timeout_s=0.6)
    with pytest.raises(FetchFailed, match="took longer than 0.6 s in all"):
        fetch(server.url("/drip.jpg"), tmp_path, limits, client=client)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("retry_after, expected", [
    ("1", 1.0),
    ("http-date in 120 s", 120.0),
    ("999999", 300.0),  # honoured up to the cap only
])
def test_503_then_success_waits_for_retry_after(server: LocalServer, client: httpx.Client, jpeg: bytes,
                                                tmp_path: Path, retry_after: str, expected: float) -> None:
    calls: list[int] = []

    def flaky(h: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        if len(calls) == 1:
            value = retry_after
            if value.startswith("http-date"):  # made now, not at collection: dates have 1 s resolution
                value = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
            send(h, 503, b"busy", "text/plain", {"Retry-After": value})
        else:
            send(h, 200, jpeg, "image/jpeg")

    server.routes["/flaky.jpg"] = flaky
    slept: list[float] = []
    got = with_retries(lambda: fetch(server.url("/flaky.jpg"), tmp_path, LOOPBACK, client=client),
                       attempts=3, base_s=0.01, cap_s=300.0, sleep=slept.append)
    assert got.path.read_bytes() == jpeg
    assert len(calls) == 2
    assert len(slept) == 1 and slept[0] == pytest.approx(expected, abs=2.0)


def test_retry_gives_up_after_attempts(server: LocalServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/down"] = lambda h: send(h, 500, b"oops", "text/plain")
    slept: list[float] = []
    with pytest.raises(FetchFailed, match="HTTP 500") as info:
        with_retries(lambda: fetch(server.url("/down"), tmp_path, LOOPBACK, client=client),
                     attempts=3, base_s=0.01, sleep=slept.append)
    assert info.value.retry_after is None
    assert len(slept) == 2 and len(server.hits) == 3


@pytest.mark.parametrize("status, error", [(429, FetchFailed), (502, FetchFailed), (404, FetchRefused),
                                           (403, FetchRefused)])
def test_status_codes_split_into_retryable_and_permanent(server: LocalServer, client: httpx.Client,
                                                         tmp_path: Path, status: int,
                                                         error: type[Exception]) -> None:
    server.routes["/x"] = lambda h: send(h, status, b"no", "text/plain", {"Retry-After": "30"})
    with pytest.raises(error, match=f"HTTP {status}") as info:
        fetch(server.url("/x"), tmp_path, LOOPBACK, client=client)
    if error is FetchFailed:
        assert info.value.retry_after == 30.0  # type: ignore[attr-defined]


def test_refused_errors_are_not_retried(server: LocalServer, client: httpx.Client, tmp_path: Path) -> None:
    slept: list[float] = []
    with pytest.raises(FetchRefused, match="HTTP 404"):
        with_retries(lambda: fetch(server.url("/missing"), tmp_path, LOOPBACK, client=client),
                     sleep=slept.append)
    assert slept == [] and len(server.hits) == 1


def test_redirects_are_followed_hop_by_hop(server: LocalServer, client: httpx.Client,
                                           recorder: RecordingTransport, jpeg: bytes, tmp_path: Path) -> None:
    server.routes["/old"] = lambda h: send(h, 301, b"", "text/plain", {"Location": "/newer"})
    server.routes["/newer"] = lambda h: send(h, 302, b"", "text/plain", {"Location": server.url("/cat.jpg")})
    server.routes["/cat.jpg"] = lambda h: send(h, 200, jpeg, "image/jpeg")
    got = fetch(server.url("/old"), tmp_path, LOOPBACK, client=client)
    assert got.final_url == server.url("/cat.jpg")
    assert [r.url.path for r in recorder.requests] == ["/old", "/newer", "/cat.jpg"]


def test_too_many_redirects_is_refused(server: LocalServer, client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/loop"] = lambda h: send(h, 302, b"", "text/plain", {"Location": "/loop"})
    limits = FetchLimits(allow=LOOPBACK.allow, max_redirects=3)
    with pytest.raises(FetchRefused, match="more than 3 redirects"):
        fetch(server.url("/loop"), tmp_path, limits, client=client)
    assert len(server.hits) == 4  # the first request and three redirects, no more


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: bind, note it, close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchFailed, match="connection failed"):
        fetch(f"http://127.0.0.1:{port}/a.jpg", tmp_path, LOOPBACK)

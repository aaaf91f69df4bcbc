"""Fixtures for the fetcher: a real HTTP server on 127.0.0.1 and a transport
that records every request it is asked to send."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from PIL import Image

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Hit:
    path: str
    host_header: str


@dataclass
class LocalServer:
    """A threaded HTTP server; tests put handlers in ``routes`` by path."""

    port: int
    routes: dict[str, Route] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up on purpose (limits, timeouts) are expected here


@pytest.fixture
def server() -> Iterator[LocalServer]:
    state = LocalServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            state.hits.append(Hit(path, self.headers.get("Host", "")))
            route = state.routes.get(path)
            if route is None:
                send(self, 404, b"not found", "text/plain")
            else:
                route(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = _Server(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
         headers: dict[str, str] | None = None, length: bool = True) -> None:
    """Answer a request; ``length=False`` omits Content-Length and closes to end the body."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    else:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    handler.wfile.write(body)


class RecordingTransport(httpx.BaseTransport):
    """Passes requests on to ``inner`` and keeps every one it was asked to send."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def recorder() -> Iterator[RecordingTransport]:
    """Records requests that go to the real network (only 127.0.0.1 servers of ours)."""
    transport = RecordingTransport(httpx.HTTPTransport())
    yield transport
    transport.close()


@pytest.fixture
def client(recorder: RecordingTransport) -> Iterator[httpx.Client]:
    with httpx.Client(transport=recorder, trust_env=False) as c:
        yield c


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def jpeg() -> bytes:
    return image_bytes("JPEG")

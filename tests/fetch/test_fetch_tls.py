"""HTTPS with the address pinned: we dial 127.0.0.1, yet TLS checks the name.

A self-signed certificate for ``photos.test`` (made with the openssl CLI) is
served on 127.0.0.1; the resolver maps names to 127.0.0.1 and the allow-list
lets exactly that address through.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from jobs.fetch import FetchLimits, FetchRefused, fetch

from .conftest import image_bytes, send

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

LIMITS = FetchLimits(allow=("127.0.0.1/32",), total_timeout_s=10)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=photos.test", "-addext", "subjectAltName=DNS:photos.test",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return crt, key


@pytest.fixture
def tls_server(cert: tuple[Path, Path]) -> Iterator[tuple[int, list[str | None]]]:
    jpeg = image_bytes("JPEG")
    sni_seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            send(self, 200, jpeg, "image/jpeg")

        def log_message(self, format: str, *args: object) -> None:
            pass

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    ctx.sni_callback = lambda sock, name, c: sni_seen.append(name)  # type: ignore[assignment,misc]

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):  # type: ignore[no-untyped-def]
            sock, addr = super().get_request()
            return ctx.wrap_socket(sock, server_side=True), addr

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # handshakes the client aborts on purpose

    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd.server_address[1], sni_seen
    httpd.shutdown()
    httpd.server_close()


def to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def test_https_to_a_pinned_address_verifies_the_name(cert: tuple[Path, Path],
                                                     tls_server: tuple[int, list[str | None]],
                                                     tmp_path: Path) -> None:
    tls_port, sni_seen = tls_server
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert[0])), trust_env=False) as client:
        got = fetch(f"https://photos.test:{tls_port}/cat.jpg", tmp_path, LIMITS, client=client, resolver=to_loopback)
    assert got.mime_type == "image/jpeg"
    assert got.final_url == f"https://photos.test:{tls_port}/cat.jpg"
    assert sni_seen == ["photos.test"]  # the server was told the name, not the IP


def test_https_certificate_for_another_name_is_refused(cert: tuple[Path, Path],
                                                       tls_server: tuple[int, list[str | None]],
                                                       tmp_path: Path) -> None:
    tls_port, _ = tls_server
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert[0])), trust_env=False) as client, \
            pytest.raises(FetchRefused, match="TLS certificate rejected"):
        fetch(f"https://other.test:{tls_port}/cat.jpg", tmp_path, LIMITS, client=client, resolver=to_loopback)

"""With the default limits, non-public targets are refused before any connection.

Every test hands fetch() a client whose transport records each request it is
asked to send; "no connection attempted" is proved by that record being empty
(and, where a real server of ours listens, by the server seeing no request).
Nothing here ever touches 10.x, 169.254.x or any non-test address: the
transports that could are ``httpx.MockTransport``s that answer in memory.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest

from jobs.fetch import FetchLimits, FetchRefused, fetch, refusal_reason, system_resolver

from .conftest import LocalServer, RecordingTransport, send

PUBLIC_IP = "93.184.215.14"  # only ever "connected" to through MockTransport


def in_memory(handler: httpx.MockTransport | None = None) -> RecordingTransport:
    """A recording transport whose inner transport never touches the network."""
    return RecordingTransport(handler or httpx.MockTransport(lambda r: httpx.Response(599)))


@pytest.fixture
def memory() -> RecordingTransport:
    return in_memory()


def resolver_of(table: dict[str, list[str]], calls: list[str]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return table[host]
    return resolve


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1/a.jpg", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.1/", "private"),
    ("http://192.168.1.10:8080/x.png", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[::ffff:127.0.0.1]/", "loopback (IPv4-mapped 127.0.0.1)"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[64:ff9b::a00:1]/", "private (NAT64 10.0.0.1)"),
    ("http://[2002:7f00:1::]/", "loopback (6to4 127.0.0.1)"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://100.64.0.1/", "not globally routable"),
    ("http://240.0.0.1/", "reserved"),
])
def test_default_limits_refuse_non_public_addresses(url: str, reason: str, memory: RecordingTransport,
                                                    tmp_path: Path) -> None:
    with httpx.Client(transport=memory) as client, \
            pytest.raises(FetchRefused, match="not a public address") as info:
        fetch(url, tmp_path, FetchLimits(), client=client)
    assert reason in str(info.value)
    assert "[fetch] allow" in str(info.value)  # the message says how to permit it
    assert memory.requests == []
    assert list(tmp_path.iterdir()) == []


def test_real_loopback_server_is_not_contacted(server: LocalServer, recorder: RecordingTransport,
                                               client: httpx.Client, tmp_path: Path) -> None:
    server.routes["/a.jpg"] = lambda h: send(h, 200, b"\xff\xd8\xff" + bytes(100), "image/jpeg")
    with pytest.raises(FetchRefused, match="127.0.0.1, which is not a public address"):
        fetch(server.url("/a.jpg"), tmp_path, FetchLimits(), client=client)
    assert recorder.requests == [] and server.hits == []


def test_name_resolving_to_loopback_is_refused(server: LocalServer, recorder: RecordingTransport,
                                               client: httpx.Client, tmp_path: Path) -> None:
    calls: list[str] = []

    def system(host: str, port: int) -> list[str]:
        calls.append(host)
        return system_resolver(host, port)

    with pytest.raises(FetchRefused, match=r"localhost resolves to .*loopback"):
        fetch(server.url("/a.jpg", host="localhost"), tmp_path, FetchLimits(), client=client, resolver=system)
    assert calls == ["localhost"]  # it was looked up by us, then refused
    assert recorder.requests == [] and server.hits == []


def test_decimal_ip_spelling_is_resolved_and_refused(memory: RecordingTransport, tmp_path: Path) -> None:
    # "2130706433" is 127.0.0.1 to inet_aton; the system resolver says so and we check that answer.
    with httpx.Client(transport=memory) as client, pytest.raises(FetchRefused, match="loopback"):
        fetch("http://2130706433/", tmp_path, FetchLimits(), client=client)
    assert memory.requests == []


def test_public_name_with_one_private_address_is_refused(memory: RecordingTransport, tmp_path: Path) -> None:
    calls: list[str] = []
    resolve = resolver_of({"cdn.example": [PUBLIC_IP, "10.1.2.3"]}, calls)
    with httpx.Client(transport=memory) as client, \
            pytest.raises(FetchRefused, match="cdn.example resolves to 10.1.2.3.*private"):
        fetch("http://cdn.example/a.jpg", tmp_path, FetchLimits(), client=client, resolver=resolve)
    assert memory.requests == []


def test_connects_to_the_checked_address_so_rebinding_cannot_switch_it(tmp_path: Path, jpeg: bytes) -> None:
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])  # a rebinding DNS: public first, loopback next

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    transport = in_memory(httpx.MockTransport(lambda r: httpx.Response(200, content=jpeg)))
    with httpx.Client(transport=transport) as client:
        got = fetch("https://photos.example/cat.jpg", tmp_path, FetchLimits(), client=client, resolver=rebinding)
    [request] = transport.requests
    assert request.url.host == PUBLIC_IP  # dialled the checked IP, no second lookup by httpx
    assert request.headers["host"] == "photos.example"
    assert request.extensions["sni_hostname"] == "photos.example"  # TLS still checks the name
    assert got.final_url == "https://photos.example/cat.jpg"


def test_redirect_to_loopback_is_refused_before_following(server: LocalServer, tmp_path: Path) -> None:
    # The allowed site is served in memory; it redirects to our real loopback server.
    server.routes["/a.jpg"] = lambda h: send(h, 200, b"\xff\xd8\xff" + bytes(100), "image/jpeg")
    site = httpx.MockTransport(lambda r: httpx.Response(302, headers={"Location": server.url("/a.jpg")}))
    transport = RecordingTransport(_Split(site, httpx.HTTPTransport()))
    resolve = resolver_of({"images.example": [PUBLIC_IP]}, [])
    with httpx.Client(transport=transport) as client, \
            pytest.raises(FetchRefused, match=r"refused to fetch http://127\.0\.0\.1:\d+/a\.jpg.*loopback"):
        fetch("http://images.example/start", tmp_path, FetchLimits(), client=client, resolver=resolve)
    assert [r.url.host for r in transport.requests] == [PUBLIC_IP]
    assert server.hits == []


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://[::1]:9/",
                                    "http://127.0.0.2/", "file:///etc/passwd"])
def test_redirect_from_allowed_loopback_server_to_other_targets(server: LocalServer, recorder: RecordingTransport,
                                                                client: httpx.Client, tmp_path: Path,
                                                                target: str) -> None:
    server.routes["/go"] = lambda h: send(h, 302, b"", "text/plain", {"Location": target})
    limits = FetchLimits(allow=("127.0.0.1/32",))  # exactly our server, nothing else
    with pytest.raises(FetchRefused, match="not a public address|only http and https"):
        fetch(server.url("/go"), tmp_path, limits, client=client)
    assert [r.url.path for r in recorder.requests] == ["/go"]  # the redirect itself was never requested


def test_allow_list_by_host_name(tmp_path: Path, jpeg: bytes) -> None:
    transport = in_memory(httpx.MockTransport(lambda r: httpx.Response(200, content=jpeg)))
    resolve = resolver_of({"img.internal": ["10.1.2.3"], "other.internal": ["10.1.2.4"]}, [])
    limits = FetchLimits(allow=("*.internal",))
    with httpx.Client(transport=transport) as client:
        got = fetch("http://img.internal/a.jpg", tmp_path, limits, client=client, resolver=resolve)
        assert got.mime_type == "image/jpeg"
        with pytest.raises(FetchRefused):
            fetch("http://img.internal/a.jpg", tmp_path, FetchLimits(allow=("img.internal.evil",)),
                  client=client, resolver=resolve)
    assert [r.url.host for r in transport.requests] == ["10.1.2.3"]


def test_allow_list_by_cidr(tmp_path: Path, jpeg: bytes) -> None:
    transport = in_memory(httpx.MockTransport(lambda r: httpx.Response(200, content=jpeg)))
    with httpx.Client(transport=transport) as client:
        fetch("http://10.9.8.7/a.jpg", tmp_path, FetchLimits(allow=("10.9.0.0/16",)), client=client)
        with pytest.raises(FetchRefused, match="10.10.0.1"):
            fetch("http://10.10.0.1/a.jpg", tmp_path, FetchLimits(allow=("10.9.0.0/16",)), client=client)
    assert len(transport.requests) == 1


@pytest.mark.parametrize("url", ["ftp://example.com/a.jpg", "file:///etc/passwd", "http:///nohost", "not a url"])
def test_non_http_urls_are_refused(url: str, memory: RecordingTransport, tmp_path: Path) -> None:
    with httpx.Client(transport=memory) as client, pytest.raises(FetchRefused):
        fetch(url, tmp_path, FetchLimits(), client=client)
    assert memory.requests == []


@pytest.mark.parametrize("address, reason", [
    ("8.8.8.8", None), ("2606:4700:4700::1111", None), ("169.254.169.254", "link-local"),
    ("fd12:3456::1", "private"), ("::127.0.0.1", "reserved"), ("ff02::1", "multicast"),
    ("192.0.2.1", "private"), ("::ffff:8.8.8.8", None),
])
def test_refusal_reason(address: str, reason: str | None) -> None:
    got = refusal_reason(ipaddress.ip_address(address))
    assert (got is None) if reason is None else (got is not None and got.startswith(reason))


class _Split(httpx.BaseTransport):
    """Requests to the public test IP go to ``site`` (in memory); others to ``rest``."""

    def __init__(self, site: httpx.BaseTransport, rest: httpx.BaseTransport) -> None:
        self.site, self.rest = site, rest

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return (self.site if request.url.host == PUBLIC_IP else self.rest).handle_request(request)

    def close(self) -> None:
        self.rest.close()

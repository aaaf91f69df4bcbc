"""``darkroom serve``: the read-only status page, in a real headless Chromium and over HTTP."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from db.engine import write_session
from db.models import ImageVariant
from tests.daemon import launch
from tests.ops.conftest import Batch, serving
from worker.app import App
from worker.status.web.server import StatusServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def server(app: App, mixed_batch: Batch) -> Iterator[StatusServer]:
    with serving(app) as srv:
        yield srv


def _chrome(tmp_path: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,1600",
                 f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(flag)
    # An explicit driver path: Selenium Manager (which would download one) is never run.
    return webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))


@pytest.mark.acceptance
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="no Chromium + chromedriver found (apt-get install chromium chromium-driver)")
def test_status_page_in_a_real_browser(server: StatusServer, mixed_batch: Batch, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = _chrome(tmp_path)
    try:
        driver.set_page_load_timeout(30)
        driver.get(server.url)
        assert driver.title == "Darkroom status"
        assert driver.find_element(By.CSS_SELECTOR, "#count-completed .n").text == "3"
        assert driver.find_element(By.CSS_SELECTOR, "#count-failed .n").text == "3"

        failures = driver.find_element(By.ID, "failures")
        text = failures.text
        assert "not an image Darkroom accepts" in text
        assert "original file not found" in text
        # User data is shown as text, never as markup: the <script> of the error and
        # the <b>/<img> of the file names are literal characters on the page.
        assert "<script>alert(" in text and "evil<b>0<img src=x onerror=alert(0)>.jpg" in text
        assert failures.find_elements(By.TAG_NAME, "script") == []
        assert failures.find_elements(By.TAG_NAME, "b") == []
        assert driver.find_elements(By.CSS_SELECTOR, "main script, main b") == []

        thumbs = driver.find_elements(By.CSS_SELECTOR, "#completed img")
        assert {t.get_attribute("data-image-id") for t in thumbs} == set(mixed_batch.completed)
        for img in thumbs:
            loaded = driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth", img)
            assert loaded and loaded > 0, img.get_attribute("src")
        shot = tmp_path / "status-page.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("DARKROOM_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["DARKROOM_KEEP_SCREENSHOT"])
    finally:
        driver.quit()


def test_variants_are_served_only_from_variant_rows(server: StatusServer, app: App) -> None:
    base = server.url.rstrip("/")
    page = httpx.get(base + "/").text
    src = page.split('src="/variants/', 1)[1].split('"', 1)[0]
    ok = httpx.get(f"{base}/variants/{src}")
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/webp"
    assert ok.content[:4] == b"RIFF" and ok.content[8:12] == b"WEBP"
    assert ok.headers["x-content-type-options"] == "nosniff"

    # A row whose path escapes the media dir (written by a buggy or hostile program).
    secret = app.settings.paths.data_dir / "secret.webp"
    secret.write_bytes(b"RIFF....WEBPsecret")
    with write_session(app.engine) as s:
        image_id = s.get(ImageVariant, src).image_id  # type: ignore[union-attr]
        s.add(ImageVariant(id="evil-row", image_id=image_id, width=1, format="webp",
                           path="../secret.webp", size=10))
        s.add(ImageVariant(id="abs-row", image_id=image_id, width=2, format="webp",
                           path=str(secret), size=10))
    for path in ("/variants/evil-row", "/variants/abs-row", "/variants/nope",
                 "/variants/..%2F..%2Fapp.db", "/variants/../../app.db", "/../data/app.db",
                 "/static/../report.py"):
        r = httpx.get(base + path) if ".." not in path else _raw_get(server, path)
        assert r.status_code == 404, (path, r.status_code)
        assert b"secret" not in r.content


def _raw_get(server: StatusServer, path: str) -> httpx.Response:
    # httpx normalises "..": send the path as written, like a hostile client would.
    import socket

    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return httpx.Response(status, content=body)


def test_page_is_read_only_and_answers_only_to_localhost(server: StatusServer) -> None:
    base = server.url.rstrip("/")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = httpx.request(method, base + "/", content=b"x")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    rebound = httpx.get(base + "/", headers={"Host": "attacker.example:8470"})
    assert rebound.status_code == 421
    assert httpx.get(base + "/", headers={"Host": "localhost:8470"}).status_code == 200
    page = httpx.get(base + "/")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert httpx.get(base + "/static/style.css").headers["content-type"].startswith("text/css")
    status = httpx.get(base + "/status.json").json()
    assert status["images"]["failed"] == 3
    health = httpx.get(base + "/health")
    assert health.status_code == 503 and "no live worker" in health.text


@pytest.mark.acceptance
def test_serve_command_serves_until_interrupted(config_path: Path, app: App) -> None:
    import signal
    import subprocess

    proc = launch(config_path, "serve", "--port", "0", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        line = ""
        while "status page at" not in line:
            line = proc.stderr.readline()
            assert line, "serve exited before listening"
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")  # loopback by default
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "<title>Darkroom status</title>" in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0

"""The status page's search box, results and per-image pages, in a real headless Chromium and over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from jobs.intake import submit_file
from tests.embeddings.search_helpers import embed
from tests.imagefiles import photo
from tests.ops.conftest import NOT_AN_IMAGE, serving
from tests.ops.test_status_page import CHROMEDRIVER, CHROMIUM, _chrome
from worker import daemon
from worker.app import App
from worker.status.web.server import StatusServer

HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\"> onerror kite"


def submit_with(app: App, path: Path, metadata: dict[str, object]) -> str:
    return submit_file(app.engine, app.tasks, app.settings.paths.media_dir, path, metadata=metadata).image_id


@dataclass(frozen=True)
class Library:
    kite: str
    dog: str
    hostile: str
    broken: str


@pytest.fixture
def library(app: App, tmp_path: Path) -> Library:
    src = tmp_path / "in"
    src.mkdir()
    kite = submit_with(app, photo(src / "kite.jpg", (200, 150)), {"caption": "A red kite over the dunes",
                                                                  "tags": ["bird", "sky"]})
    dog = submit_with(app, photo(src / "dog.jpg", (180, 140)), {"alt": "A dog asleep on the beach"})
    hostile = submit_with(app, photo(src / "evil<b>name<i>.jpg", (160, 120)), {"caption": HOSTILE})
    bad = src / "broken.jpg"
    bad.write_bytes(NOT_AN_IMAGE)
    broken = submit_with(app, bad, {"caption": "never decoded"})
    daemon.drain(app, 1)
    embed(app)
    return Library(kite, dog, hostile, broken)


@pytest.fixture
def server(app: App, library: Library) -> Iterator[StatusServer]:
    with serving(app) as srv:
        yield srv


@pytest.mark.acceptance
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="no Chromium + chromedriver found (apt-get install chromium chromium-driver)")
def test_search_box_results_and_image_page_in_a_real_browser(server: StatusServer, library: Library,
                                                             tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def loaded(img: object) -> int:
        return int(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) or 0)

    def search_for(words: str) -> None:
        box = driver.find_element(By.CSS_SELECTOR, "#search-form input[name=q]")
        box.clear()
        box.send_keys(words)
        old = driver.find_element(By.TAG_NAME, "html")
        driver.find_element(By.CSS_SELECTOR, "#search-form button").click()  # the GET form, CSP allowing it
        WebDriverWait(driver, 15).until(lambda d: f"q={words}" in d.current_url and not _attached(old))

    driver = _chrome(tmp_path)
    try:
        driver.set_page_load_timeout(30)
        driver.get(server.url)
        search_for("kites")
        hits = driver.find_elements(By.CSS_SELECTOR, "#results figure.hit")
        assert "/search?q=kites" in driver.current_url
        assert [h.find_element(By.TAG_NAME, "img").get_attribute("data-image-id") for h in hits][:1] == [library.kite]
        assert "A red kite over the dunes" in hits[0].text and loaded(hits[0].find_element(By.TAG_NAME, "img")) > 0

        # The hostile caption and file name are shown as text, never run as markup.
        box = driver.find_element(By.CSS_SELECTOR, "#search-form input[name=q]")
        assert box.get_attribute("value") == "kites"  # the form keeps the query
        search_for("onerror")
        hits = driver.find_elements(By.CSS_SELECTOR, "#results figure.hit")
        assert len(hits) == 1, [h.text for h in hits]
        assert "<script>document.title='pwned'</script>" in hits[0].text
        assert "evil<b>name<i>.jpg" in hits[0].text
        assert driver.find_elements(By.CSS_SELECTOR, "main script, main b, main i, figcaption img") == []
        assert "pwned" not in driver.title

        # Its page: variants with sizes, timings, placeholder, metadata, nearest images.
        hits[0].find_element(By.CSS_SELECTOR, "figcaption a").click()
        WebDriverWait(driver, 15).until(lambda d: "/images/" in d.current_url)
        assert driver.find_element(By.ID, "image-title").text == "evil<b>name<i>.jpg"
        assert "pwned" not in driver.title
        variants = driver.find_elements(By.CSS_SELECTOR, "#variants tbody tr")
        assert len(variants) >= 2 and all(loaded(v.find_element(By.TAG_NAME, "img")) > 0 for v in variants)
        assert any("webp" in v.text for v in variants) and all(" B" in v.text or "KiB" in v.text for v in variants)
        assert driver.find_elements(By.CSS_SELECTOR, "#timings tr")
        assert loaded(driver.find_element(By.ID, "placeholder")) > 0
        assert "<script>document.title='pwned'</script><img src=x" in driver.find_element(By.ID, "metadata").text
        near = driver.find_elements(By.CSS_SELECTOR, "#nearest figure")
        assert {n.find_element(By.TAG_NAME, "img").get_attribute("data-image-id") for n in near} == {
            library.kite, library.dog}
        assert driver.find_elements(By.CSS_SELECTOR, "main script, main b, main i") == []

        # A failed image: its error, no variants, no nearest images.
        driver.get(server.url + "images/" + quote(library.broken))
        assert "not an image" in driver.find_element(By.ID, "image-error").text
        assert driver.find_element(By.ID, "variants").text == "no variants"
    finally:
        driver.quit()


def _attached(element: object) -> bool:
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        return bool(element.tag_name)  # type: ignore[attr-defined]
    except StaleElementReferenceException:
        return False


def test_search_and_image_routes_over_http(server: StatusServer, library: Library) -> None:
    base = server.url.rstrip("/")
    page = httpx.get(base + "/")
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert 'action="/search" method="get"' in page.text
    r = httpx.get(base + "/search", params={"q": "dunes"})
    assert r.status_code == 200 and library.kite in r.text and r.headers["cache-control"] == "no-store"
    assert httpx.get(base + "/search").status_code == 200  # the empty form
    assert httpx.get(base + "/search", params={"q": "zebra"}).text.count('class="hit"') == 0
    for q in ('"unbalanced', "caption:(x AND", "k" * 10_240, "kite\x00dunes", "<script>x</script>"):
        r = httpx.get(base + "/search", params={"q": q})
        assert r.status_code == 200 and "<script>x" not in r.text, q
    r = httpx.get(base + "/search", params={"q": "\x00 "})
    assert r.status_code == 400 and "empty query" in r.text
    r = httpx.get(base + "/search", params={"q": "dog", "mode": "vector"})
    assert r.status_code == 400 and "cannot embed words" in r.text
    r = httpx.get(base + "/search", params={"q": "dog", "mode": "<bogus>"})
    assert r.status_code == 200 and "bogus" not in r.text  # an unknown mode is auto
    assert httpx.post(base + "/search", data={"q": "dog"}).status_code == 405

    r = httpx.get(f"{base}/images/{library.kite}")
    assert r.status_code == 200 and "kite.jpg" in r.text and "A red kite over the dunes" in r.text
    png = httpx.get(f"{base}/images/{library.kite}/placeholder.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert httpx.get(f"{base}/images/{library.broken}/placeholder.png").status_code == 404
    for missing in ("/images/nope", "/images/", "/images/%2e%2e%2fapp.db", "/images/" + "x" * 5000):
        r = httpx.get(base + missing)
        assert r.status_code == 404 and "no image with id" in r.text, missing
    r = httpx.get(base + "/images/" + quote("<script>alert(1)</script>", safe=""))
    assert r.status_code == 404 and "<script>alert" not in r.text and "&lt;script&gt;" in r.text

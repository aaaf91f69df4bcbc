"""``darkroom variants`` and the API's picture()/srcset(): markup parsed with html.parser."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import text

from db import images
from db.engine import write_session
from db.models import Image
from tests.conftest import run_cli
from tests.imagefiles import photo
from tests.ops.conftest import submit
from worker import daemon
from worker.api import Darkroom, ImageNotFound, ImageNotReady
from worker.app import App
from worker.markup import check_media_url, variant_url

HOSTILE = '"><script>alert(1)</script>'


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    p = Tags()
    p.feed(markup)
    p.close()
    return p.tags


@pytest.fixture
def done(app: App, tmp_path: Path) -> str:
    image_id = submit(app, photo(tmp_path / "kite.jpg", (400, 300)))
    daemon.drain(app, 1)
    with write_session(app.engine) as s:
        row = s.get(Image, image_id)
        assert row is not None and row.status == "completed"
        row.metadata_ = json.dumps({"alt": HOSTILE, "caption": "ignored: alt wins"})
    return image_id


def test_html_has_both_sources_every_width_and_the_img(app: App, done: str, config_path: Path) -> None:
    out = run_cli(config_path, "variants", done, "--html", "--sizes", "(min-width: 800px) 50vw, 100vw").stdout
    tags = parse(out)
    rows = images.variants_of(app.engine, done)
    widths = {f: sorted(v.width for v in rows if v.format == f) for f in ("webp", "avif")}
    assert widths["webp"] == [64, 128, 256] and widths["avif"] == [64, 128, 256]

    assert [t for t, _ in tags] == ["picture", "source", "source", "img"]
    sources = {a["type"]: a for t, a in tags if t == "source"}
    assert list(sources) == ["image/avif", "image/webp"]  # AVIF first: the browser takes the first it supports
    for fmt, attrs in (("avif", sources["image/avif"]), ("webp", sources["image/webp"])):
        assert attrs["sizes"] == "(min-width: 800px) 50vw, 100vw"
        entries = [e.strip().split(" ") for e in (attrs["srcset"] or "").split(",")]
        assert [w for _, w in entries] == [f"{w}w" for w in widths[fmt]]
        for url, w in entries:
            assert url == f"/media/variants/{done[-2:]}/{done}/{w[:-1]}.{fmt}"
    img = tags[-1][1]
    assert img["src"] == f"/media/variants/{done[-2:]}/{done}/128.webp"  # the middle WebP
    assert img["width"] == "128" and img["height"] == "96"
    assert img["loading"] == "lazy" and img["decoding"] == "async"
    assert img["alt"] == HOSTILE  # parsed back to the text: it was escaped, not markup
    assert "<script>" not in out and "&quot;&gt;&lt;script&gt;" in out
    row = images.get(app.engine, done)
    assert row is not None and row.dominant_color
    assert img["style"] == f"background-color: {row.dominant_color.lower()}"


def test_json_shape_and_the_table(app: App, done: str, config_path: Path) -> None:
    out = json.loads(run_cli(config_path, "variants", done, "--json").stdout)
    assert set(out) == {"id", "status", "recipe", "width", "height", "alt", "dominant_color", "placeholder",
                        "variants"}
    assert out["id"] == done and out["status"] == "completed" and out["recipe"] == "default"
    assert (out["width"], out["height"], out["alt"]) == (400, 300, HOSTILE)
    assert len(out["variants"]) == 6
    v = out["variants"][0]
    assert set(v) == {"format", "width", "height", "size", "path", "url"}
    assert v["url"] == "/media/" + v["path"] and v["size"] > 0
    text = run_cli(config_path, "variants", done).stdout
    assert f"/media/variants/{done[-2:]}/{done}/256.avif" in text


def test_unknown_id_and_unfinished_image_are_one_line_exit_1(app: App, config_path: Path, tmp_path: Path) -> None:
    proc = run_cli(config_path, "variants", "no-such-id", "--html", check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["darkroom: no image with id 'no-such-id'"]
    pending = submit(app, photo(tmp_path / "later.jpg", (90, 90)))
    proc = run_cli(config_path, "variants", pending, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"darkroom: image {pending!r} is pending; it has no variants yet"]
    proc = run_cli(config_path, "variants", pending, "--json", "--html", check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1


def test_api_picture_and_srcset(app: App, done: str, tmp_path: Path) -> None:
    dr = Darkroom(app)
    tags = parse(dr.picture(done))
    assert [a["sizes"] for t, a in tags if t == "source"] == ["100vw", "100vw"]
    assert dr.srcset(done, "avif") == ", ".join(
        f"/media/variants/{done[-2:]}/{done}/{w}.avif {w}w" for w in (64, 128, 256))
    assert dr.srcset(done) == dr.srcset(done, "webp")
    assert {v.url for v in dr.variants(done)} == {
        f"/media/variants/{done[-2:]}/{done}/{w}.{f}" for w in (64, 128, 256) for f in ("webp", "avif")}
    with pytest.raises(ValueError, match="no 'jpeg' variants"):
        dr.srcset(done, "jpeg")
    with pytest.raises(ImageNotFound, match="no-such-id"):
        dr.picture("no-such-id")
    pending = submit(app, photo(tmp_path / "later.jpg", (90, 90)))
    with pytest.raises(ImageNotReady, match="is pending") as err:
        dr.srcset(pending)
    assert err.value.status == "pending"


def test_absolute_media_url_and_quoted_paths(make_config: Callable[..., Path], tmp_path: Path) -> None:
    from worker.app import build
    from worker.settings import load

    config = make_config(paths={"media_url": "https://cdn.example.com/m"})
    app = build(load(config, env={}))
    app.migrate()
    try:
        image_id = submit(app, photo(tmp_path / "a.jpg", (200, 150)))
        daemon.drain(app, 1)
        with write_session(app.engine) as s:  # rows another program wrote, with a space in the path
            s.execute(text("UPDATE image_variants SET path = 'variants/summer holiday/' || width || '.' || format"
                           " WHERE image_id = :id"), {"id": image_id})
        assert Darkroom(app).srcset(image_id, "webp") == ", ".join(
            f"https://cdn.example.com/m/variants/summer%20holiday/{w}.webp {w}w" for w in (64, 128))
    finally:
        app.close()


@pytest.mark.parametrize(("base", "rel", "url"), [
    ("/media/", "variants/ab/x/640.webp", "/media/variants/ab/x/640.webp"),
    ("/media", "variants/ab/x/640.webp", "/media/variants/ab/x/640.webp"),
    ("https://cdn.example.com/", "variants/a b/#?.webp", "https://cdn.example.com/variants/a%20b/%23%3F.webp"),
])
def test_variant_url_joins_and_quotes(base: str, rel: str, url: str) -> None:
    assert variant_url(base, rel) == url


@pytest.mark.parametrize("bad", ["media/", "ftp://x/", "https:///x", "/m?x=1", "/m#top", "//cdn/x", "", "/a b/"])
def test_bad_media_url_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        check_media_url(bad)


def test_bad_media_url_stops_the_cli(make_config: Callable[..., Path]) -> None:
    proc = run_cli(make_config(paths={"media_url": "ftp://x/"}), "variants", "x", check=False)
    assert proc.returncode == 2 and "paths.media_url" in proc.stderr and len(proc.stderr.splitlines()) == 1

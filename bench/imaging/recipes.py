"""CPU ms per 12 MP photo: the default recipe vs an avatar and a banner recipe.

The issue's cost rule: three small squares from a 12 MP JPEG must cost no
more than the default recipe. Each round renders the same photos with every
recipe in turn (interleaved, so machine load hits all three alike), on one
core (encode threads = 1), and reads the process CPU time around
``render()``; the medians per photo are printed with the per-stage split.

    .venv/bin/python bench/imaging/recipes.py            # 3 photos x 5 rounds, ~1-2 min on a busy core
    .venv/bin/python bench/imaging/recipes.py --rounds 9

The recipes are the commented examples of config.toml: default ([variants]),
avatar (1:1 cover attention 64/128/256), banner (16:9 cover centre
640/1280/1920); avatar-centre is the avatar with centre gravity, to show
what the attention scoring costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.imaging.corpus import photo  # noqa: E402
from jobs.imaging import Limits, Recipe, render  # noqa: E402
from jobs.imaging.recipes import RecipeSettings, to_recipe  # noqa: E402
from worker.app import recipes_from  # noqa: E402
from worker.settings import load  # noqa: E402


def recipes() -> dict[str, Recipe]:
    settings = load(REPO / "config.toml", env={})
    variants = settings.variants
    book = {"default": recipes_from(settings)["default"]}
    for name, extra in (("avatar", {"widths": (64, 128, 256), "aspect": "1:1", "fit": "cover",
                                    "gravity": "attention"}),
                        ("avatar-centre", {"widths": (64, 128, 256), "aspect": "1:1", "fit": "cover"}),
                        ("banner", {"widths": (640, 1280, 1920), "aspect": "16:9", "fit": "cover"})):
        table = RecipeSettings(**{**{f: getattr(variants, f) for f in ("formats", "webp", "avif")}, **extra})
        table.check()
        book[name] = to_recipe(name, table)
    return book


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    book = recipes()
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(args.photos):
            path = Path(tmp) / f"p{i}.jpg"
            photo(100 + i, (4000, 3000)).save(path, "JPEG", quality=90)
            files.append(path)
        cpu: dict[str, list[float]] = {name: [] for name in book}
        stages: dict[str, dict[str, list[float]]] = {name: {} for name in book}
        for f in files:  # warm-up: imports, ICC transforms, encoder init
            render(f, book["default"], Limits())
        for _ in range(args.rounds):
            for f in files:
                for name, recipe in book.items():
                    t = time.process_time()
                    r = render(f, recipe, Limits())
                    cpu[name].append((time.process_time() - t) * 1000)
                    for k, v in r.timings.items():
                        stages[name].setdefault(k, []).append(v * 1000)
    print(f"{args.photos} photos of 4000x3000 (12 MP JPEG q90) x {args.rounds} rounds, interleaved; "
          "one core; CPU ms per photo (median, min-max)")
    print("| recipe | outputs | CPU ms | decode | resize | encode webp | encode avif |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, recipe in book.items():
        c = cpu[name]
        st = {k: statistics.median(v) for k, v in stages[name].items()}
        widths = "/".join(str(w) for w in recipe.widths)
        print(f"| {name} | {widths} x {len(recipe.encoders)} formats | {statistics.median(c):.0f} "
              f"({min(c):.0f}-{max(c):.0f}) | {st.get('decode', 0):.0f} | {st.get('resize', 0):.0f} | "
              f"{st.get('encode_webp', 0):.0f} | {st.get('encode_avif', 0):.0f} |")


if __name__ == "__main__":
    main()

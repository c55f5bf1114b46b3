"""Review scale: `validate` + `build_review` + every report format over 1,000 generated products.

Quality bar (docs: design.md): a review of 1,000 products finishes in seconds, not minutes. The
baseline is the floor any tool pays: `yaml.safe_load` of the same YAML files, measured in the same run.
Products are copies of the three examples under valid new domain names (`customers-0001/users`, …),
with their ids and port references renamed so the copies form 334 independent small meshes.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import yaml

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 10.0
EXAMPLES = ("customers/users", "payments/transactions", "risk/customer-exposure")

sys.path.insert(0, str(ROOT))

from meshkit.config import Settings, load_settings  # noqa: E402

T = TypeVar("T")


def generate(domains: Path, count: int) -> None:
    """`count` products: the three examples copied round-robin into renamed domains."""
    for i in range(count):
        ref = EXAMPLES[i % len(EXAMPLES)]
        k = i // len(EXAMPLES) + 1
        domain, name = ref.split("/")
        target = domains / f"{domain}-{k:04d}" / name
        shutil.copytree(ROOT / "domains" / ref, target, ignore=shutil.ignore_patterns("__pycache__"))
        for path in target.glob("*.yaml"):
            text = path.read_text(encoding="utf-8")
            for old in ("customers", "payments", "risk"):
                new = f"{old}-{k:04d}"
                text = re.sub(rf"(?<=[:/ ]){old}(?=[:/]|\s*$)", new, text, flags=re.MULTILINE)
            path.write_text(text, encoding="utf-8")


def timed(label: str, times: dict[str, float], call: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = call()
    times[label] = time.perf_counter() - start
    return result


def ours(settings: Settings, out: Path, times: dict[str, float]) -> int:
    from governance.review.formats import FORMATS
    from governance.review.report import build_review, write_review
    from governance.validation.products import validate

    validation = timed("validate", times, lambda: validate([], settings))
    review = timed("build_review", times, lambda: build_review(settings, validation))
    for name in FORMATS:
        timed(f"write {name}", times, partial(write_review, review, out, (name,)))
    return len(review.products)


def baseline(domains: Path, loader: type[yaml.SafeLoader]) -> tuple[float, int]:
    """Seconds to parse every YAML file of the mesh once with `loader`, and how many files."""
    files = sorted(domains.glob("*/*/*.yaml"))
    start = time.perf_counter()
    for path in files:
        yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # a SafeLoader (or its libyaml twin)
    return time.perf_counter() - start, len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="print the top cProfile entries of ours")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshkit-review-scale-") as tmp:
        root = Path(tmp) / "root"
        generate(root / "domains", args.products)
        settings = load_settings(root, overrides={"workspace": str(Path(tmp) / "ws")}, environ={})
        times: dict[str, float] = {}
        profiler = cProfile.Profile() if args.profile else None
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        products = ours(settings, Path(tmp) / "out", times)
        if profiler:
            profiler.disable()
        total = time.perf_counter() - start
        floor, files = baseline(root / "domains", yaml.SafeLoader)
        c_loader = getattr(yaml, "CSafeLoader", None)
        c_floor = baseline(root / "domains", c_loader)[0] if c_loader else None
    print(f"review of {products} products ({files} YAML files)\n")
    print(f"| {'step':<28} | {'seconds':>8} |")
    print(f"| {'-' * 28} | {'-' * 8}:|")
    for label, seconds in times.items():
        print(f"| {label:<28} | {seconds:8.2f} |")
    print()
    print("| measure                                 | seconds | ratio |")
    print("| --------------------------------------- | -------:| -----:|")
    print(f"| ours: validate + review + all formats   | {total:7.2f} | {total / floor:5.1f}x |")
    print(f"| baseline: yaml.safe_load of every file  | {floor:7.2f} |  1.0x |")
    review_only = total - times["validate"]
    print(f"| ours without validate (review + formats) | {review_only:7.2f} | {review_only / floor:5.1f}x |")
    if c_floor is not None:
        print(f"| floor with libyaml (CSafeLoader)        | {c_floor:7.2f} | {c_floor / floor:5.2f}x |")
    for label, seconds in (("validate + review + all formats", total), ("review + all formats", review_only)):
        verdict = "met" if seconds <= TARGET_SECONDS else "NOT met"
        print(f"target {label}: {products} products in <= {TARGET_SECONDS:.0f} s: {verdict} ({seconds:.1f} s)")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()

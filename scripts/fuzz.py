#!/usr/bin/env python3
"""Mutation fuzzing of the `annpage` CLI for hours, by hand.

Runs the checks of `tests/interop/test_fuzz.py` (see `tests/interop/mutate.py`) on mutant
after mutant: `info`, `convert`, `subset` and `stats` must exit 0 or 1 with one error line,
within 20 s and 1 GB. Each failing mutant is copied to the crash folder as `seed-N.h5ad` with
`seed-N.txt` saying what was mutated and how each verb failed; a seed alone reproduces it:

    .venv/bin/python scripts/fuzz.py --hours 8 --bin target/release/annpage
    .venv/bin/python scripts/fuzz.py --replay 123456    # rebuild and rerun one seed
    .venv/bin/python scripts/fuzz.py --zarr --hours 2   # mutants of Zarr stores (mutate_zarr.py)

Seeds are consecutive from --seed (default: chosen from the clock, printed).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

import mutate  # noqa: E402
import mutate_zarr  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=1.0, help="how long to run (default 1)")
    parser.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "annpage", help="the annpage CLI")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: from the clock)")
    parser.add_argument("--out", type=Path, default=ROOT / "fuzz-crashes", help="folder for failing mutants")
    parser.add_argument("--kinds", default=",".join(mutate.KINDS), help="mutation kinds, comma-separated")
    parser.add_argument("--replay", type=int, default=None, help="rebuild and check this one seed, then stop")
    parser.add_argument("--zarr", action="store_true", help="mutate Zarr stores instead (--kinds does not apply)")
    args = parser.parse_args()

    if not args.bin.exists():
        parser.error(f"{args.bin} does not exist (cargo build --release -p annpage-cli)")
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = set(kinds) - set(mutate.KINDS)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; known: {', '.join(mutate.KINDS)}")
    first = args.seed if args.seed is not None else int(time.time())
    seeds = iter([args.replay]) if args.replay is not None else itertools.count(first)
    end = time.monotonic() + args.hours * 3600
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"fuzz: {args.bin}, seeds from {first if args.replay is None else args.replay}, "
          f"crashes to {args.out}", flush=True)

    suffix = ".zarr" if args.zarr else ".h5ad"

    def on_failure(seed: int, what: str, path: Path, bad: list[mutate.Outcome]) -> None:
        if path.is_dir():
            shutil.copytree(path, args.out / f"seed-{seed}{suffix}", dirs_exist_ok=True)
        else:
            shutil.copy(path, args.out / f"seed-{seed}{suffix}")
        report = mutate.describe_failure(seed, what, bad)
        details = "\n\n".join(f"== {o.verb} (exit {o.returncode}, {o.seconds:.1f} s, {o.max_rss_mb:.0f} MB)\n{o.stderr}"
                              for o in bad)
        (args.out / f"seed-{seed}.txt").write_text(f"{report}\n\n{details}")
        print(f"FAIL {report}", flush=True)

    started = time.monotonic()
    last = started
    total = 0
    failures: list = []
    with tempfile.TemporaryDirectory(prefix="annpage-fuzz-") as work:

        def keep_going() -> bool:
            nonlocal last
            now = time.monotonic()
            if now - last > 60:
                last = now
                print(f"fuzz: {(now - started) / 60:.0f} min", flush=True)
            return args.replay is not None or now < end

        if args.zarr:
            sources = Path(work) / "sources"
            sources.mkdir()

            def make(s: int, p: Path) -> str:
                return mutate_zarr.mutant(s, p, sources, args.bin)
        else:

            def make(s: int, p: Path) -> str:
                return mutate.mutant(s, p, kinds)

        total, failures = mutate.fuzz(args.bin, seeds, Path(work), keep_going, make=make, on_failure=on_failure,
                                      suffix=suffix)
    print(f"fuzz: {total} mutants, {len(failures)} failing", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

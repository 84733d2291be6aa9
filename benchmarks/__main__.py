"""`python -m benchmarks [--quick] [--runs N] [--only vendor,...]`: measure every tap, write the results.

Exits 0 when everything ran, whatever the targets say (a missed target is a result, not an error),
and 1 when something broke: a sync failed, or records differed where they must not.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.phases import Plan, benchmark
from benchmarks.report import read_results, results, write_docs, write_results
from benchmarks.runner import ROOT, work_directory
from benchmarks.specs import SPECS


def _vendors(text: str) -> list[str]:
    vendors = [name.strip().removeprefix("tap-") for name in text.split(",") if name.strip()]
    unknown = sorted(set(vendors) - set(SPECS))
    if unknown or not vendors:
        raise argparse.ArgumentTypeError(f"unknown tap {', '.join(unknown)}; choose from {', '.join(SPECS)}")
    return vendors


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny volumes: checks correctness in seconds (CI)")
    parser.add_argument("--runs", type=int, help="interleaved tap/reference pairs per tap (default 5; quick 1)")
    parser.add_argument("--only", type=_vendors, default=list(SPECS), help="taps to run, e.g. unleash,wmspanel")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results.json", help="file to write")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md", help="docs page to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks of the chosen taps and write both files."""
    args = build_parser().parse_args(argv)
    if args.runs is not None and args.runs < 1:
        build_parser().error("--runs must be at least 1")
    plan = Plan.of(quick=args.quick, runs=args.runs)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    with work_directory() as workdir:
        taps = {vendor: benchmark(SPECS[vendor], plan, workdir, log) for vendor in args.only}
    content = results(plan, taps, read_results(args.results))
    write_results(args.results, content)
    write_docs(args.docs, content)
    broken = [vendor for vendor, entry in taps.items() if entry["errors"]]
    log(f"wrote {args.results} and {args.docs}" + (f"; broken: {', '.join(broken)}" if broken else ""))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmarks of the five taps against their emulators: `python -m benchmarks` (see `docs/benchmarks.md`)."""

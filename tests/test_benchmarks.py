"""`python -m benchmarks`, small: it runs end to end and writes sane files. Timings are never asserted.

The quick run still checks what matters for correctness: each tap's records equal its reference's,
the reference asks exactly the least requests the benchmark computes, and the sequential and
concurrent syncs of the latency scenario agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from benchmarks import __main__ as command
from benchmarks.phases import Plan, judge
from benchmarks.report import markdown, results
from benchmarks.specs import SPECS, Scenario, openspace_least, pages, unleash_least

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """One `--quick` run of every tap, shared by the checks below."""
    out = tmp_path_factory.mktemp("benchmarks")
    results_file, docs_file = out / "results.json", out / "benchmarks.md"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "benchmarks", "--quick", "--results", str(results_file), "--docs", str(docs_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return done, results_file, docs_file


@pytest.mark.e2e
def test_quick_run_succeeds_and_writes_both_files(
    quick_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    done, results_file, docs_file = quick_run
    assert done.returncode == 0, done.stderr[-4000:]
    assert results_file.is_file()
    assert docs_file.is_file()


@pytest.mark.e2e
def test_results_hold_every_measurement_of_every_tap(
    quick_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    _, results_file, _ = quick_run
    content = json.loads(results_file.read_text())
    assert content["quick"] is True
    assert content["machine"]["cpus"] >= 1
    assert content["machine"]["python"].count(".") == 2
    assert content["machine"]["singer_sdk"].startswith("0.")
    assert list(content["taps"]) == list(SPECS)
    for vendor, entry in content["taps"].items():
        assert entry["errors"] == [], vendor
        assert entry["stream"] == SPECS[vendor].stream
        speed = entry["throughput"]
        assert speed["records"] > 0
        assert len(speed["tap_seconds"]) == len(speed["reference_seconds"]) == content["runs"]
        assert speed["ratio"] > 0
        assert 0 < speed["reference_start_up_seconds"] < speed["tap_median_seconds"] + speed["tap_start_up_seconds"]
        memory = entry["memory"]
        assert 0 < memory["small"]["records"] < memory["large"]["records"]
        assert memory["large"]["peak_rss_mib"] > 0
        counts = entry["requests"]
        assert counts["least_full"] >= 1
        assert counts["least_incremental"] >= 1
        assert counts["reference_full"] == counts["least_full"], vendor  # the least is what a minimal client asks
        assert counts["full"] >= 1
        assert counts["incremental"] >= 1
        assert counts["pages_past_last"] >= 0
        latency = entry["latency"]
        assert latency["identical"] is True
        assert latency["records"] > 0
        assert latency["requests_sequential"] > content["volumes"]["latency_partitions_or_pages"] // 2
        assert latency["speedup"] > 0
        assert set(entry["targets"]) == {"ratio", "memory", "requests", "latency"}
        assert all(verdict in (True, False) for verdict in entry["targets"].values())


@pytest.mark.e2e
def test_docs_table_has_a_row_per_tap(quick_run: tuple[subprocess.CompletedProcess[str], Path, Path]) -> None:
    _, _, docs_file = quick_run
    text = docs_file.read_text()
    assert text.startswith("# Benchmarks\n")
    assert "do not edit by hand" in text
    for vendor, spec in SPECS.items():
        rows = [line for line in text.splitlines() if line.startswith(f"| tap-{vendor} | `{spec.stream}` | ")]
        assert len(rows) == 2, vendor  # the results table and the data sets table


# --- without running any tap -----------------------------------------------------------------------


def test_a_broken_tap_makes_the_command_fail_but_still_write_both_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spec: t.Any, plan: Plan, workdir: Path, log: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
        result = {"stream": spec.stream, "measured_at": "2025-01-01T00:00:00+00:00", "errors": ["throughput: boom"]}
        return {**result, "targets": judge(result)}

    monkeypatch.setattr(command, "benchmark", broken)
    results_file, docs_file = tmp_path / "results.json", tmp_path / "benchmarks.md"
    code = command.main(["--quick", "--only", "wmspanel", "--results", str(results_file), "--docs", str(docs_file)])
    assert code == 1
    assert json.loads(results_file.read_text())["taps"]["wmspanel"]["errors"] == ["throughput: boom"]
    assert "tap-wmspanel: throughput: boom" in docs_file.read_text()


def test_only_keeps_the_other_taps_of_a_previous_run_of_the_same_kind() -> None:
    plan = Plan.of(quick=True, runs=None)
    previous = {"quick": True, "taps": {"unleash": {"stream": "analytics", "errors": []}}}
    merged = results(plan, {"wmspanel": {"stream": "players_stats", "errors": []}}, previous)
    assert list(merged["taps"]) == ["unleash", "wmspanel"]
    full_run = results(Plan.of(quick=False, runs=None), {"wmspanel": {"stream": "players_stats"}}, previous)
    assert list(full_run["taps"]) == ["wmspanel"]  # quick results never mix with full ones
    assert "| tap-wmspanel | `players_stats` | - |" in markdown(full_run)


def test_targets_pass_fail_and_not_measured() -> None:
    result: dict[str, t.Any] = {
        "throughput": {"ratio": 2.5},
        "memory": {"small": {"peak_rss_mib": 60.0}, "large": {"peak_rss_mib": 64.0}},
        "requests": {"full": 5, "least_full": 5, "incremental": 2, "least_incremental": 2, "pages_past_last": 0},
    }
    assert judge(result) == {"ratio": False, "memory": True, "requests": True, "latency": None}
    result["memory"]["large"]["peak_rss_mib"] = 70.0  # more than 10 % above the smaller run
    result["requests"]["pages_past_last"] = 1
    assert judge(result)["memory"] is False
    assert judge(result)["requests"] is False


def test_least_requests_count_pages_and_windows() -> None:
    assert [pages(count, 500) for count in (0, 1, 500, 501)] == [1, 1, 1, 2]
    videos = Scenario({"max_page_size": 500}, {"page_size": 1000})
    starts = [(f"2024-01-01T00:00:{second:02d}.000000+00:00",) for second in range(50)] * 21  # 1,050 captures
    assert openspace_least(videos, starts) == (3, 1)  # 21 share the newest second: one page
    device = Scenario(
        {"devices": 2, "page_size": 2},
        {"start_date": "2024-01-01T00:00:00+00:00", "end_date": "2024-01-03T00:00:00+00:00", "window_days": 1},
    )
    stamps = [("d1", f"2024-01-0{day}T00:00:0{n}.000000+00:00") for day, n in ((1, 0), (1, 1), (1, 2), (2, 0))]
    # d1: day 1 holds 3 records (2 pages), day 2 one (1 page); d2 has none but still costs a request a window.
    assert unleash_least(device, stamps) == (1 + 3 + 2, 1 + 1 + 2)

"""tap-headspin through the real Meltano (`run`, `el`) into real loaders, against the emulator."""

from __future__ import annotations

import typing as t

import pytest

from emulators.framework import EmulatorServer
from emulators.headspin import HeadSpinEmulator
from tap_headspin.streams import GROUPING_STREAMS
from tests.headspin.support import in_the_newest_bin
from tests.meltano_support import duckdb_counts, jsonl_records, meltano, meltano_env, saved_state

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(HeadSpinEmulator(seed=9, sessions=120, span_days=5)) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path, server: EmulatorServer) -> dict[str, str]:
    app = t.cast("HeadSpinEmulator", server.app)
    return meltano_env(
        tmp_path,
        {
            "TAP_HEADSPIN_API_URL": server.url,
            "TAP_HEADSPIN_API_TOKEN": "test-api-token",
            "TAP_HEADSPIN_START_DATE": app.span_start.date().isoformat(),
        },
    )


def test_meltano_run_loads_everything_then_rereads_only_the_newest_bin(
    env: dict[str, str], tmp_path: Path, server: EmulatorServer
) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    (tmp_path / "jsonl").mkdir()
    meltano(env, "run", "tap-headspin", "target-jsonl")
    start = {"start_date": app.span_start.date().isoformat(), "bin_size": "day"}
    org = jsonl_records(tmp_path / "jsonl" / "usage_org.jsonl")
    assert len(org) == len(app.report("org", start))
    assert len(jsonl_records(tmp_path / "jsonl" / "usage_events.jsonl")) == app.session_count()
    assert not (tmp_path / "jsonl" / "usage_country.jsonl").exists()  # legacy groupings are opt-in

    bookmarks = saved_state(env, "dev:tap-headspin-to-target-jsonl")["bookmarks"]
    assert set(bookmarks) == {"usage_events", *(stream.name for stream in GROUPING_STREAMS)}
    assert bookmarks["usage_org"]["replication_key_value"] == max(r["start_time"] for r in org)

    start, device = in_the_newest_bin(app)
    app.add_session(start, 20, device=device)  # the newest bin was still filling
    app.reset_requests()
    meltano(env, "run", "tap-headspin", "target-jsonl")
    # One report per grouping and one event window, each from the newest bin's day.
    assert app.request_count() == len(GROUPING_STREAMS) + 1
    newest_day = bookmarks["usage_org"]["replication_key_value"][:10]
    assert {r.query["start_date"][0] for r in app.requests} == {newest_day}
    assert len(jsonl_records(tmp_path / "jsonl" / "usage_org.jsonl")) == len(org) + 1  # the newest bin again


def test_meltano_el_into_duckdb_with_a_legacy_grouping(
    env: dict[str, str], tmp_path: Path, server: EmulatorServer
) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    env = {**env, "TAP_HEADSPIN_GROUPINGS": '["org", "device", "country"]'}
    # A legacy grouping is off in the plugin's `select`; overriding `select` turns it on.
    legacy_only = {**env, "TAP_HEADSPIN__SELECT": '["usage_country.*"]'}
    meltano(legacy_only, "el", "tap-headspin", "target-duckdb", "--state-id", "headspin-el")
    start = {"start_date": app.span_start.date().isoformat(), "bin_size": "day"}
    counts = duckdb_counts(tmp_path / "warehouse.duckdb", ["tap_headspin.usage_country"])
    assert counts == {
        "tap_headspin.usage_country": len(app.report("country", {**start, "metric": "total_time"}, version=1))
    }
    meltano(env, "el", "tap-headspin", "target-duckdb", "--state-id", "headspin-el-all")
    counts = duckdb_counts(
        tmp_path / "warehouse.duckdb",
        ["tap_headspin.usage_org", "tap_headspin.usage_device", "tap_headspin.usage_events"],
    )
    assert counts == {
        "tap_headspin.usage_org": len(app.report("org", start)),
        "tap_headspin.usage_device": len(app.report("device", start)),
        "tap_headspin.usage_events": app.session_count(),
    }

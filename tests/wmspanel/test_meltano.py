"""tap-wmspanel through the real Meltano (`run`, `el`) into real loaders, state included."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest

from emulators.framework import EmulatorServer
from emulators.wmspanel import WMSPanelEmulator
from tests.meltano_support import duckdb_counts, jsonl_records, meltano, meltano_env, saved_state

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

ANCHOR = dt.date(2024, 5, 10)
STATS_ROUTES = ("players_stats", "devices_stats", "daily_stats")


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    app = WMSPanelEmulator(seed=9, anchor=ANCHOR, days=20, data_slices=2, api_key="meltano-secret-key")
    with EmulatorServer(app) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path, server: EmulatorServer) -> dict[str, str]:
    return meltano_env(
        tmp_path,
        {
            "TAP_WMSPANEL_API_URL": f"{server.url}/v1",
            "TAP_WMSPANEL_CLIENT_ID": "test-client-id",
            "TAP_WMSPANEL_API_KEY": "meltano-secret-key",
            "TAP_WMSPANEL_START_DATE": (ANCHOR - dt.timedelta(days=30)).isoformat(),
            "TAP_WMSPANEL_END_DATE": ANCHOR.isoformat(),
        },
    )


def test_meltano_run_loads_everything_then_rereads_only_the_lookback_days(
    env: dict[str, str], tmp_path: Path, server: EmulatorServer
) -> None:
    app = t.cast("WMSPanelEmulator", server.app)
    (tmp_path / "jsonl").mkdir()
    app.reset_requests()
    first = meltano(env, "run", "tap-wmspanel", "target-jsonl")
    assert "meltano-secret-key" not in first.stdout + first.stderr
    players = jsonl_records(tmp_path / "jsonl" / "players_stats.jsonl")
    assert sorted((r["data_slice_id"], r["date"], r["player"], r["connections"]) for r in players) == sorted(
        (r["data_slice_id"], r["date"], r["player"], r["connections"]) for r in app.truth_long_rows("players_stats")
    )
    assert len(jsonl_records(tmp_path / "jsonl" / "daily_stats.jsonl")) == sum(
        len(app.day_objects("daily_stats", s)) for s in app.data_slice_ids()
    )
    assert app.request_count() == 2 + 3 * len(app.data_slice_ids())

    state = saved_state(env, "dev:tap-wmspanel-to-target-jsonl")
    bookmarks = {
        (route, p["context"]["data_slice_id"]): p["replication_key_value"]
        for route in STATS_ROUTES
        for p in state["bookmarks"][route]["partitions"]
    }
    assert bookmarks == {
        (route, s): app.day_objects(route, s)[-1]["date"] for route in STATS_ROUTES for s in app.data_slice_ids()
    }

    app.reset_requests()
    meltano(env, "run", "tap-wmspanel", "target-jsonl")
    # The second run costs the same calls, each starting two days before its bookmark.
    assert app.request_count() == 2 + 3 * len(app.data_slice_ids())
    for request in app.requests:
        route = request.path.removeprefix("/v1/")
        if route in STATS_ROUTES:
            bookmark = dt.date.fromisoformat(bookmarks[(route, request.query["data_slice"][0])])
            assert request.query["from"] == [(bookmark - dt.timedelta(days=2)).isoformat()]


def test_meltano_el_into_duckdb(env: dict[str, str], tmp_path: Path, server: EmulatorServer) -> None:
    app = t.cast("WMSPanelEmulator", server.app)
    meltano(env, "el", "tap-wmspanel", "target-duckdb", "--state-id", "wmspanel-el-test")
    tables = [f"tap_wmspanel.{name}" for name in ("players_stats", "devices_stats", "daily_stats", "data_slices", "servers")]
    counts = duckdb_counts(tmp_path / "warehouse.duckdb", tables)
    assert counts == {
        "tap_wmspanel.players_stats": len(app.truth_long_rows("players_stats")),
        "tap_wmspanel.devices_stats": len(app.truth_long_rows("devices_stats")),
        "tap_wmspanel.daily_stats": sum(len(app.day_objects("daily_stats", s)) for s in app.data_slice_ids()),
        "tap_wmspanel.data_slices": len(app.data_slice_ids()),
        "tap_wmspanel.servers": len(app.servers()),
    }
    assert "bookmarks" in saved_state(env, "wmspanel-el-test")

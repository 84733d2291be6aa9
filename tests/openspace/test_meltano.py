"""tap-openspace through the real Meltano (`run`, `el`) into real loaders, state saved and reused."""

from __future__ import annotations

import datetime as dt
import math
import typing as t

import pytest

from emulators.framework import EmulatorServer
from emulators.openspace import OpenSpaceEmulator
from tests.meltano_support import duckdb_counts, jsonl_records, meltano, meltano_env, saved_state

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

CAP = 40
STREAMS = {"videos_360": "360-videos", "sites": "sites", "memberships": "memberships", "field_notes": "field-notes"}


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(OpenSpaceEmulator(seed=9, videos=200, max_page_size=CAP)) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path, server: EmulatorServer) -> dict[str, str]:
    return meltano_env(tmp_path, {"TAP_OPENSPACE_API_URL": server.url, "TAP_OPENSPACE_API_KEY": "test-openspace-key"})


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def test_meltano_run_loads_everything_then_reads_only_new_pages_from_saved_state(
    env: dict[str, str], tmp_path: Path, server: EmulatorServer
) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    (tmp_path / "jsonl").mkdir()
    meltano(env, "run", "tap-openspace", "target-jsonl")
    for stream, report in STREAMS.items():
        assert len(jsonl_records(tmp_path / "jsonl" / f"{stream}.jsonl")) == app.record_count(report), stream

    newest = dt.datetime.fromtimestamp(app.newest_video_start_ms() / 1000, tz=dt.timezone.utc)
    state = saved_state(env, "dev:tap-openspace-to-target-jsonl")
    assert state["bookmarks"]["videos_360"]["replication_key_value"] == utc_text(newest)

    arrived = app.add_videos([newest + dt.timedelta(minutes=n) for n in range(1, 51)])
    app.reset_requests()
    meltano(env, "run", "tap-openspace", "target-jsonl")
    # 50 new captures, then the (at least two) at the bookmark: two pages of 40 reach an older one.
    assert app.request_count("360-videos$") == math.ceil(len(arrived) / CAP) == 2
    loaded_ids = {record["video_id"] for record in jsonl_records(tmp_path / "jsonl" / "videos_360.jsonl")}
    assert {record["videoId"] for record in arrived} <= loaded_ids
    state = saved_state(env, "dev:tap-openspace-to-target-jsonl")
    assert state["bookmarks"]["videos_360"]["replication_key_value"] == utc_text(newest + dt.timedelta(minutes=50))


def test_meltano_el_into_duckdb(env: dict[str, str], tmp_path: Path, server: EmulatorServer) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    meltano(env, "el", "tap-openspace", "target-duckdb", "--state-id", "openspace-el-test")
    counts = duckdb_counts(tmp_path / "warehouse.duckdb", [f"tap_openspace.{stream}" for stream in STREAMS])
    assert counts == {f"tap_openspace.{stream}": app.record_count(report) for stream, report in STREAMS.items()}
    assert saved_state(env, "openspace-el-test")["bookmarks"]["videos_360"]["replication_key_value"]

"""tap-seemetrix through the real Meltano (`run`, `el`) into real loaders, state saved and used."""

from __future__ import annotations

import typing as t
from collections import Counter
from urllib.parse import quote, quote_plus

import pytest

from emulators.framework import EmulatorServer
from emulators.seemetrix import SeemetrixEmulator
from tests.meltano_support import duckdb_counts, jsonl_records, meltano, meltano_env, saved_state
from tests.seemetrix import expected

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

KEY = "meltano/Key+odd=chars"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    app = SeemetrixEmulator(seed=12, days=2, sessions_per_day=15, user_key=KEY)
    with EmulatorServer(app) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path, server: EmulatorServer) -> dict[str, str]:
    app = t.cast("SeemetrixEmulator", server.app)
    return meltano_env(
        tmp_path,
        {
            "TAP_SEEMETRIX_API_URL": f"{server.url}/api",
            "TAP_SEEMETRIX_USER_ID": str(app.user_id),
            "TAP_SEEMETRIX_USER_KEY": KEY,
            "TAP_SEEMETRIX_START_DATE": app.span_start.date().isoformat(),
        },
    )


def test_meltano_run_loads_everything_then_resumes_from_saved_state(
    env: dict[str, str], tmp_path: Path, server: EmulatorServer
) -> None:
    app = t.cast("SeemetrixEmulator", server.app)
    (tmp_path / "jsonl").mkdir()
    first = meltano(env, "run", "tap-seemetrix", "target-jsonl")
    for form in {KEY, quote(KEY, safe=""), quote_plus(KEY)}:
        assert form not in first.stdout + first.stderr

    sessions = jsonl_records(tmp_path / "jsonl" / "sessions.jsonl")
    assert sorted(r["session_number"] for r in sessions) == sorted(s["session_number"] for s in app.truth_sessions())
    truth = app.truth_sessions()
    assert len(jsonl_records(tmp_path / "jsonl" / "device_statistics.jsonl")) == len(
        expected.hourly_records(truth, per_device=True, user_id=app.user_id)
    )
    assert len(jsonl_records(tmp_path / "jsonl" / "emotion_statistics.jsonl")) == len(expected.emotion_records(truth))

    state = saved_state(env, "dev:tap-seemetrix-to-target-jsonl")["bookmarks"]
    assert state["sessions"]["replication_key_value"] == max(r["started_at"] for r in sessions)
    assert {p["context"]["device_id"] for p in state["device_statistics"]["partitions"]} == set(app.device_ids())
    for stream in ("user_statistics", "demographic_statistics", "emotion_statistics"):
        assert state[stream]["replication_key"] == "period_start"

    app.reset_requests()
    meltano(env, "run", "tap-seemetrix", "target-jsonl")
    # From the saved bookmarks: one window per stream (and per device), one page each.
    per_path = Counter(request.path for request in app.requests)
    assert all(count == 1 for count in per_path.values()), per_path
    assert len(per_path) == 6 + len(app.devices)


def test_meltano_el_into_duckdb(env: dict[str, str], tmp_path: Path, server: EmulatorServer) -> None:
    app = t.cast("SeemetrixEmulator", server.app)
    meltano(env, "el", "tap-seemetrix", "target-duckdb", "--state-id", "seemetrix-el-test")
    tables = [
        "tap_seemetrix.sessions",
        "tap_seemetrix.devices",
        "tap_seemetrix.demographic_statistics",
        "tap_seemetrix.counters",
    ]
    counts = duckdb_counts(tmp_path / "warehouse.duckdb", tables)
    truth = app.truth_sessions()
    assert counts == {
        "tap_seemetrix.sessions": len(truth),
        "tap_seemetrix.devices": len(app.devices),
        "tap_seemetrix.demographic_statistics": len(expected.demographic_records(truth)),
        "tap_seemetrix.counters": 1,
    }

"""tap-unleash through the real Meltano (`run`, `el`, `elt`) into real loaders."""

from __future__ import annotations

import typing as t

import pytest

from emulators.framework import EmulatorServer
from emulators.unleash import UnleashEmulator
from tests.meltano_support import duckdb_counts, jsonl_records, meltano, meltano_env, saved_state

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    app = UnleashEmulator(seed=9, devices=2, sessions_per_device=3, frames_per_session=20, page_size=50)
    with EmulatorServer(app) as running:
        yield running


@pytest.fixture
def env(tmp_path: Path, server: EmulatorServer) -> dict[str, str]:
    app = t.cast("UnleashEmulator", server.app)
    return meltano_env(
        tmp_path,
        {
            "TAP_UNLEASH_API_URL": f"{server.url}/v1",
            "TAP_UNLEASH_ACCESS_TOKEN": "ul_pat_test-token",
            "TAP_UNLEASH_START_DATE": app.span_start.date().isoformat(),
        },
    )


def test_meltano_run_loads_everything_then_resumes_from_saved_state(
    env: dict[str, str], tmp_path: Path, server: EmulatorServer
) -> None:
    app = t.cast("UnleashEmulator", server.app)
    (tmp_path / "jsonl").mkdir()
    meltano(env, "run", "tap-unleash", "target-jsonl")
    assert len(jsonl_records(tmp_path / "jsonl" / "analytics.jsonl")) == len(app.truth_records())

    partitions = saved_state(env, "dev:tap-unleash-to-target-jsonl")["bookmarks"]["analytics"]["partitions"]
    assert {p["context"]["device_id"] for p in partitions} == set(app.device_ids())

    app.reset_requests()
    meltano(env, "run", "tap-unleash", "target-jsonl")
    # The second run starts at each device's bookmark: one page per device.
    assert app.request_count(r"^/v1/analytics/W") == len(app.device_ids())


def test_meltano_el_into_duckdb(env: dict[str, str], tmp_path: Path, server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    meltano(env, "el", "tap-unleash", "target-duckdb", "--state-id", "el-test")
    counts = duckdb_counts(tmp_path / "warehouse.duckdb", ["tap_unleash.analytics", "tap_unleash.devices"])
    # Every row, including the first of each batch (duckdb >= 1.3 loses those there).
    assert counts == {"tap_unleash.analytics": len(app.truth_records()), "tap_unleash.devices": len(app.device_ids())}


def test_meltano_elt_into_csv(env: dict[str, str], tmp_path: Path) -> None:
    meltano(env, "elt", "tap-unleash", "target-csv", "--state-id", "elt-test")
    files = sorted(p.name for p in (tmp_path / "csv").iterdir())
    assert any(name.startswith("analytics") for name in files), files

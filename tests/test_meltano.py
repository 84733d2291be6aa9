"""Real Meltano runs of the taps into real loaders, against the emulators.

These use the project's `meltano.yml` and the plugins `scripts/setup.sh`
installed, with a throwaway system database so state never leaks between runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t
from pathlib import Path

import pytest

from emulators.framework import EmulatorServer
from emulators.unleash import UnleashEmulator

if t.TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
MELTANO = ROOT / ".venv-meltano" / "bin" / "meltano"
DUCKDB_PYTHON = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"


@pytest.fixture(scope="module")
def unleash() -> Iterator[EmulatorServer]:
    app = UnleashEmulator(seed=9, devices=2, sessions_per_device=3, frames_per_session=20, page_size=50)
    with EmulatorServer(app) as running:
        yield running


@pytest.fixture
def meltano_env(tmp_path: Path, unleash: EmulatorServer) -> dict[str, str]:
    if not MELTANO.exists():
        pytest.fail("Meltano is not installed: run `bash scripts/setup.sh` first")
    app = t.cast("UnleashEmulator", unleash.app)
    return {
        **os.environ,
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_UNLEASH_API_URL": f"{unleash.url}/v1",
        "TAP_UNLEASH_ACCESS_TOKEN": "ul_pat_test-token",
        "TAP_UNLEASH_START_DATE": app.span_start.date().isoformat(),
        "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "jsonl"),
        "TARGET_DUCKDB_FILEPATH": str(tmp_path / "warehouse.duckdb"),
        "TARGET_CSV_OUTPUT_PATH": str(tmp_path / "csv"),
    }


def meltano(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # noqa: S603
        [str(MELTANO), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[:6000]
    return done


def jsonl_lines(path: Path) -> list[dict[str, t.Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_meltano_run_loads_everything_then_resumes_from_saved_state(
    meltano_env: dict[str, str], tmp_path: Path, unleash: EmulatorServer
) -> None:
    app = t.cast("UnleashEmulator", unleash.app)
    (tmp_path / "jsonl").mkdir()
    meltano(meltano_env, "run", "tap-unleash", "target-jsonl")
    analytics = jsonl_lines(tmp_path / "jsonl" / "analytics.jsonl")
    assert len(analytics) == len(app.truth_records())

    state = json.loads(meltano(meltano_env, "state", "get", "dev:tap-unleash-to-target-jsonl").stdout)
    partitions = state["singer_state"]["bookmarks"]["analytics"]["partitions"]
    assert {p["context"]["device_id"] for p in partitions} == set(app.device_ids())

    app.reset_requests()
    meltano(meltano_env, "run", "tap-unleash", "target-jsonl")
    # The second run starts at each device's bookmark: one page per device.
    assert app.request_count(r"^/v1/analytics/W") == len(app.device_ids())


def test_meltano_el_into_duckdb(meltano_env: dict[str, str], tmp_path: Path, unleash: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", unleash.app)
    meltano(meltano_env, "el", "tap-unleash", "target-duckdb", "--state-id", "el-test")
    count = subprocess.run(  # noqa: S603
        [
            str(DUCKDB_PYTHON),
            "-c",
            "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True);"
            "print(*(c.execute(f'select count(*) from tap_unleash.{t}').fetchone()[0] for t in ('analytics', 'devices')))",
            str(tmp_path / "warehouse.duckdb"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    # Every row, including the first of each batch (duckdb >= 1.3 loses those there).
    assert count.stdout.split() == [str(len(app.truth_records())), str(len(app.device_ids()))]


def test_meltano_elt_into_csv(meltano_env: dict[str, str], tmp_path: Path) -> None:
    meltano(meltano_env, "elt", "tap-unleash", "target-csv", "--state-id", "elt-test")
    files = sorted(p.name for p in (tmp_path / "csv").iterdir())
    assert any(name.startswith("analytics") for name in files), files

"""The `tap-headspin` command: clear errors, non-zero exits, and no secret in any output."""

from __future__ import annotations

import socket
import typing as t

import pytest

from emulators.framework import EmulatorServer, Fault
from emulators.headspin import HeadSpinEmulator
from tests.cli import CliRun, assert_no_secret, run_tap_cli

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

GOOD_TOKEN = "test-api-token"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(HeadSpinEmulator(seed=2, sessions=60, span_days=3)) as running:
        yield running


def config(server_url: str, token: str = GOOD_TOKEN, **settings: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    return {
        "api_url": server_url,
        "api_token": token,
        "start_date": "2000-01-01",
        "groupings": ["org"],
        "events_window_days": 119,
        "max_tries": 2,
        "backoff_base_seconds": 0.01,
        **settings,
    }




def error_line(run: CliRun, fragment: str) -> str:
    """The one stderr line that explains the failure: exit 1, and no traceback."""
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if fragment in line]
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_sync_prints_records_and_state(server: EmulatorServer, tmp_path: Path) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    run = run_tap_cli(
        "tap-headspin", config(server.url, start_date=app.span_start.date().isoformat()), tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert len(run.records("usage_events")) == app.session_count()
    assert run.records("usage_org")
    assert run.messages[-1]["type"] == "STATE"
    assert_no_secret(run, GOOD_TOKEN)


def test_wrong_token_stops_after_one_request_with_a_clear_message(
    server: EmulatorServer, tmp_path: Path
) -> None:
    token = "hs-wrong-token-0123456789"
    run = run_tap_cli("tap-headspin", config(server.url, token), tmp_path)
    line = error_line(run, "refused the API token")
    assert "`api_token`" in line and "401" in line
    assert server.app.request_count() == 1
    assert_no_secret(run, token)
    assert not run.records("usage_events")


def test_bad_timezone_fails_before_any_request(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-headspin", config(server.url, timezone="Europe/Atlantis"), tmp_path)
    line = error_line(run, "`timezone`")
    assert "Europe/Atlantis" in line
    assert server.app.request_count() == 0
    assert_no_secret(run, GOOD_TOKEN)


def test_legacy_stream_with_an_id_filter_fails_before_any_request(
    server: EmulatorServer, tmp_path: Path
) -> None:
    settings = {
        "groupings": ["org", "devicemodel"],
        "filter_team_ids": ["0f8fad5b-d9cb-469f-a165-70867728950e"],
    }
    run = run_tap_cli("tap-headspin", config(server.url, **settings), tmp_path)
    line = error_line(run, "usage_devicemodel")
    assert "filter_team_ids" in line
    assert server.app.request_count() == 0


def test_server_errors_until_retries_run_out(server: EmulatorServer, tmp_path: Path) -> None:
    server.app.inject(Fault(kind="status", status=500, times=10))
    run = run_tap_cli("tap-headspin", config(server.url), tmp_path)
    error_line(run, "gave up after 2 tries")
    assert_no_secret(run, GOOD_TOKEN)


def test_nothing_listening(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = run_tap_cli("tap-headspin", config(f"http://127.0.0.1:{port}", "hs-secret-token-xyz"), tmp_path)
    error_line(run, "gave up after 2 tries). Check the api_url")
    assert_no_secret(run, "hs-secret-token-xyz")


def test_connection_test_makes_one_request(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-headspin", config(server.url), tmp_path, "--test")
    assert run.returncode == 0, run.stderr
    assert "Connection test passed" in run.stderr
    assert [r.path for r in server.app.requests] == ["/v2/usage/org"]
    assert_no_secret(run, GOOD_TOKEN)

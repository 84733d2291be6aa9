"""The `tap-wmspanel` command: clear errors, exit codes, and no credential in any output.

WMSPanel takes `client_id` and `api_key` in the query string, where requests, urllib3 and the
SDK would all print them; every test here checks stdout and stderr for the key, plain and
URL-encoded, and for the client id.
"""

from __future__ import annotations

import socket
import typing as t

import pytest

from emulators.framework import EmulatorServer, Fault
from emulators.wmspanel import WMSPanelEmulator
from tests.cli import CliRun, assert_no_secret, run_tap_cli

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

# Characters that URL encoding changes, so the encoded form differs from the plain one.
API_KEY = "k3y/with+plus&amp=and space"
CLIENT_ID = "client-id/4711"
ANCHOR = "2024-05-10"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    app = WMSPanelEmulator(seed=4, anchor=ANCHOR, days=10, data_slices=2, client_id=CLIENT_ID, api_key=API_KEY)
    with EmulatorServer(app) as running:
        yield running


def config(server_url: str, **overrides: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    return {
        "api_url": f"{server_url}/v1",
        "client_id": CLIENT_ID,
        "api_key": API_KEY,
        "start_date": "2024-05-01",
        "end_date": ANCHOR,
        "max_tries": 2,
        "backoff_base_seconds": 0.01,
        **overrides,
    }


def assert_no_credentials(run: CliRun, api_key: str = API_KEY, client_id: str = CLIENT_ID) -> None:
    """Neither credential appears in any output, in any of the forms a URL gives them."""
    assert_no_secret(run, api_key, client_id)


def error_lines(run: CliRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("tap-wmspanel: ")]


def assert_one_clear_line(run: CliRun, *expected: str) -> str:
    """Exit 1, exactly one error line holding every expected text, and no traceback."""
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    (line,) = error_lines(run)
    for text in expected:
        assert text in line, line
    return line


def test_sync_prints_records_and_state_and_no_credential(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-wmspanel", config(server.url), tmp_path)
    assert run.returncode == 0, run.stderr
    app = t.cast("WMSPanelEmulator", server.app)
    assert len(run.records("players_stats")) == len(app.truth_long_rows("players_stats"))
    assert run.messages[-1]["type"] == "STATE"
    assert_no_credentials(run)


def test_debug_logging_still_shows_no_credential(
    server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGLEVEL", "DEBUG")  # urllib3 then logs every request line, query included
    run = run_tap_cli("tap-wmspanel", config(server.url), tmp_path)
    assert run.returncode == 0, run.stderr
    assert "/v1/players_stats?" in run.stderr  # the request lines are there, masked
    assert_no_credentials(run)


@pytest.mark.parametrize(
    "credentials",
    [{"api_key": "wrong-key/+x"}, {"client_id": "wrong-client"}],
    ids=["wrong-key", "wrong-client-id"],
)
def test_wrong_credentials_stop_after_one_call_with_one_clear_line(
    server: EmulatorServer, tmp_path: Path, credentials: dict[str, str]
) -> None:
    run = run_tap_cli("tap-wmspanel", config(server.url, **credentials), tmp_path)
    assert_one_clear_line(run, "HTTP 403", "`client_id`", "`api_key`", "whitelist")
    assert server.app.request_count() == 1
    assert not run.records("players_stats")
    assert_no_credentials(run, credentials.get("api_key", API_KEY), credentials.get("client_id", CLIENT_ID))


def test_a_caller_outside_the_ip_whitelist_is_told_about_the_whitelist(server: EmulatorServer, tmp_path: Path) -> None:
    t.cast("WMSPanelEmulator", server.app).whitelisted = False
    run = run_tap_cli("tap-wmspanel", config(server.url), tmp_path)
    assert_one_clear_line(run, "HTTP 403", "IP address is not in the account's pull API whitelist")
    assert_no_credentials(run)


def test_an_error_inside_http_200_is_reported_with_its_description(server: EmulatorServer, tmp_path: Path) -> None:
    t.cast("WMSPanelEmulator", server.app).max_range_days = 3
    run = run_tap_cli("tap-wmspanel", config(server.url), tmp_path)
    assert_one_clear_line(run, "Date range is too long: at most 3 days per request", "`max_days_per_request`")
    assert_no_credentials(run)


def test_server_errors_until_retries_give_up(server: EmulatorServer, tmp_path: Path) -> None:
    server.app.inject(Fault(kind="status", status=500, times=10))
    run = run_tap_cli("tap-wmspanel", config(server.url), tmp_path)
    assert_one_clear_line(run, "gave up after 2 tries")
    assert server.app.request_count() == 2
    assert_no_credentials(run)


def test_dropped_connections_until_retries_give_up(server: EmulatorServer, tmp_path: Path) -> None:
    server.app.inject(Fault(kind="drop", times=10))
    run = run_tap_cli("tap-wmspanel", config(server.url), tmp_path)
    assert_one_clear_line(run, "gave up after 2 tries")
    assert_no_credentials(run)


def test_nothing_listening(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = run_tap_cli("tap-wmspanel", config(f"http://127.0.0.1:{port}"), tmp_path)
    assert_one_clear_line(run, "connection was refused", "api_url")
    assert_no_credentials(run)


def test_bad_settings_fail_before_any_request(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-wmspanel", config(server.url, end_date="2024-04-30"), tmp_path)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = [line for line in run.stderr.splitlines() if "`end_date`" in line]  # the SDK logs each one
    assert "must be on or after `start_date`" in line
    assert server.app.request_count() == 0
    assert_no_credentials(run)


def test_connection_test_makes_one_call(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-wmspanel", config(server.url), tmp_path, "--test")
    assert run.returncode == 0, run.stderr
    assert "Connection test passed" in run.stderr and "2 data slice(s)" in run.stderr
    assert [r.path for r in server.app.requests] == ["/v1/data_slices"]
    assert_no_credentials(run)


def test_connection_test_with_a_wrong_key_fails_clearly(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-wmspanel", config(server.url, api_key="not-the-key"), tmp_path, "--test")
    assert_one_clear_line(run, "HTTP 403", "`api_key`")
    assert_no_credentials(run, api_key="not-the-key")

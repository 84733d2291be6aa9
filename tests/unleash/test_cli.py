"""The `tap-unleash` command: clear errors, non-zero exits, and no secret in any output."""

from __future__ import annotations

import socket
import typing as t

import pytest

from emulators.framework import EmulatorServer, Fault
from emulators.unleash import UnleashEmulator
from tests.cli import assert_no_secret, run_tap_cli

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

GOOD_TOKEN = "ul_pat_test-token"
START = "2000-01-01"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(UnleashEmulator(seed=2, devices=2, sessions_per_device=2, frames_per_session=10)) as running:
        yield running


def config(server_url: str, **credentials: str) -> dict[str, t.Any]:
    return {
        "api_url": f"{server_url}/v1",
        "start_date": START,
        "max_tries": 2,
        "backoff_base_seconds": 0.01,
        **credentials,
    }




def test_sync_prints_records_and_state(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-unleash", config(server.url, access_token=GOOD_TOKEN), tmp_path)
    assert run.returncode == 0, run.stderr
    app = t.cast("UnleashEmulator", server.app)
    assert len(run.records("analytics")) == len(app.truth_records())
    assert run.messages[-1]["type"] == "STATE"
    assert_no_secret(run, GOOD_TOKEN)


@pytest.mark.parametrize("credentials", [{"access_token": "ul_pat_wrong-one"}, {"api_key": "wrong-legacy-key"}])
def test_wrong_credential_stops_after_one_request_with_a_clear_message(
    server: EmulatorServer, tmp_path: Path, credentials: dict[str, str]
) -> None:
    run = run_tap_cli("tap-unleash", config(server.url, **credentials), tmp_path)
    (setting,) = credentials
    assert run.returncode == 1
    assert f"refused the credential in `{setting}`" in run.stderr
    assert "Traceback" not in run.stderr
    assert server.app.request_count() == 1
    assert_no_secret(run, *credentials.values())
    assert not run.records("analytics")


def test_expired_token_says_it_expired(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-unleash", config(server.url, access_token="ul_pat_expired-token"), tmp_path)
    assert run.returncode == 1
    assert "access token has expired" in run.stderr
    assert server.app.request_count() == 1
    assert_no_secret(run, "ul_pat_expired-token")


def test_server_errors_until_retries_run_out(server: EmulatorServer, tmp_path: Path) -> None:
    server.app.inject(Fault(kind="status", status=500, times=10))
    run = run_tap_cli("tap-unleash", config(server.url, access_token=GOOD_TOKEN), tmp_path)
    assert run.returncode == 1
    assert "gave up after 2 tries" in run.stderr
    assert "Traceback" not in run.stderr
    assert_no_secret(run, GOOD_TOKEN)


def test_nothing_listening(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = run_tap_cli("tap-unleash", config(f"http://127.0.0.1:{port}", api_key="legacy-secret-key"), tmp_path)
    assert run.returncode == 1
    assert "connection was refused" in run.stderr
    assert_no_secret(run, "legacy-secret-key")


def test_connection_test_with_nothing_listening_names_the_path_it_asked(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = run_tap_cli("tap-unleash", config(f"http://127.0.0.1:{port}", api_key="legacy-secret-key"), tmp_path, "--test")
    assert run.returncode == 1
    assert "could not reach" in run.stderr and "for /v1/analytics/version:" in run.stderr, run.stderr


def test_bad_settings_fail_before_any_request_without_a_traceback(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-unleash", {**config(server.url, access_token=GOOD_TOKEN), "end_date": "1999-01-01"}, tmp_path)
    assert run.returncode == 1
    assert "end_date" in run.stderr
    assert "Traceback" not in run.stderr
    assert server.app.request_count() == 0
    assert_no_secret(run, GOOD_TOKEN)


def test_connection_test_makes_one_request_to_version(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-unleash", config(server.url, access_token=GOOD_TOKEN), tmp_path, "--test")
    assert run.returncode == 0, run.stderr
    assert "Connection test passed" in run.stderr and "1.0.1" in run.stderr
    assert [r.path for r in server.app.requests] == ["/v1/analytics/version"]


def test_connection_test_with_a_wrong_key_fails_clearly(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-unleash", config(server.url, api_key="not-the-key"), tmp_path, "--test")
    assert run.returncode == 1
    assert "refused the credential in `api_key`" in run.stderr
    assert_no_secret(run, "not-the-key")


def test_a_wrong_credential_sends_nothing_ahead(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli(
        "tap-unleash", {**config(server.url, access_token="ul_pat_wrong"), "concurrent_requests": 8}, tmp_path
    )
    assert run.returncode == 1
    assert server.app.request_count() == 1

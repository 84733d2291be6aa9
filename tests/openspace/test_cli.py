"""The `tap-openspace` command: clear one-line errors, exit codes, and no key in any output."""

from __future__ import annotations

import socket
import typing as t

import pytest

from emulators.framework import EmulatorServer, Fault
from emulators.openspace import OpenSpaceEmulator
from tests.cli import assert_no_secret, run_tap_cli

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.cli import CliRun

pytestmark = pytest.mark.e2e

GOOD_KEY = "test-openspace-key"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(OpenSpaceEmulator(seed=2, videos=50, max_page_size=20)) as running:
        yield running


def config(server_url: str, api_key: str, **settings: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    return {"api_url": server_url, "api_key": api_key, "max_tries": 2, "backoff_base_seconds": 0.01, **settings}


def error_lines(run: CliRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("tap-openspace: ")]




def test_sync_prints_records_and_state(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-openspace", config(server.url, GOOD_KEY), tmp_path)
    assert run.returncode == 0, run.stderr
    app = t.cast("OpenSpaceEmulator", server.app)
    assert len(run.records("videos_360")) == app.record_count("360-videos")
    assert run.messages[-1]["type"] == "STATE"
    assert run.messages[-1]["value"]["bookmarks"]["videos_360"]["replication_key_value"]
    assert_no_secret(run, GOOD_KEY)


@pytest.mark.parametrize(
    ("api_key", "says"),
    [
        ("wrong-openspace-key-1", "OpenSpace refused the API key in `api_key` (HTTP 401: Unauthorized"),
        ("no-usage-api-key", "(HTTP 403: Forbidden: The Usage API is not enabled for this account)"),
    ],
)
def test_a_refused_key_stops_after_one_request_with_one_clear_line(
    server: EmulatorServer, tmp_path: Path, api_key: str, says: str
) -> None:
    run = run_tap_cli("tap-openspace", config(server.url, api_key), tmp_path)
    assert run.returncode == 1
    (line,) = error_lines(run)
    assert line.startswith("tap-openspace: error: ") and says in line
    assert "Traceback" not in run.stderr
    assert server.app.request_count() == 1
    assert not [m for m in run.messages if m["type"] == "RECORD"]
    assert_no_secret(run, api_key)


def test_server_errors_until_retries_run_out(server: EmulatorServer, tmp_path: Path) -> None:
    server.app.inject(Fault(kind="status", status=500, times=10))
    run = run_tap_cli("tap-openspace", config(server.url, GOOD_KEY), tmp_path)
    assert run.returncode == 1
    (line,) = error_lines(run)
    assert "gave up after 2 tries" in line
    assert "Traceback" not in run.stderr
    assert_no_secret(run, GOOD_KEY)


def test_nothing_listening(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = run_tap_cli("tap-openspace", config(f"http://127.0.0.1:{port}", "some-secret-key-9"), tmp_path)
    assert run.returncode == 1
    assert "connection was refused" in run.stderr and "api_url" in run.stderr
    assert_no_secret(run, "some-secret-key-9")


@pytest.mark.parametrize(
    ("settings", "named"),
    [({"region": "ap"}, "region"), ({"page_size": 0}, "page_size"), ({"api_url": "openspace.local"}, "api_url")],
)
def test_bad_settings_fail_before_any_request_without_a_traceback(
    server: EmulatorServer, tmp_path: Path, settings: dict[str, t.Any], named: str
) -> None:
    run = run_tap_cli("tap-openspace", {**config(server.url, GOOD_KEY), **settings}, tmp_path)
    assert run.returncode == 1
    assert any(named in line and "ERROR" in line for line in run.stderr.splitlines()), run.stderr
    assert "Traceback" not in run.stderr
    assert server.app.request_count() == 0
    assert_no_secret(run, GOOD_KEY)


def test_connection_test_reads_one_site(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-openspace", config(server.url, GOOD_KEY), tmp_path, "--test")
    assert run.returncode == 0, run.stderr
    assert "Connection test passed" in run.stderr and "6 site(s) visible" in run.stderr
    assert [(r.path, r.query) for r in server.app.requests] == [
        ("/api/external/v1/reports/sites", {"page": ["0"], "size": ["1"]})
    ]


def test_connection_test_with_a_wrong_key_fails_clearly(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-openspace", config(server.url, "not-the-key-77"), tmp_path, "--test")
    assert run.returncode == 1
    assert "refused the API key in `api_key`" in run.stderr
    assert "Traceback" not in run.stderr
    assert_no_secret(run, "not-the-key-77")

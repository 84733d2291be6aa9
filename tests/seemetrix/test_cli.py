"""The `tap-seemetrix` command: clear one-line errors, exit 1, and the key (sent in every URL) never shown."""

from __future__ import annotations

import socket
import typing as t

import pytest

from emulators.framework import EmulatorServer, Fault
from emulators.seemetrix import SeemetrixEmulator
from tests.cli import CliRun, assert_no_secret, run_tap_cli

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

# Characters that URL encoding changes, so the encoded forms differ from the plain one.
KEY = "s3cr3t/Key+with=odd&chars 42"
WRONG_KEY = "wr0ng/Key+also=odd&chars 7"
START = "2000-01-01"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    app = SeemetrixEmulator(seed=2, days=1, sessions_per_day=8, user_key=KEY)
    with EmulatorServer(app) as running:
        yield running


def config(server_url: str, **overrides: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    return {
        "api_url": f"{server_url}/api",
        "user_id": 632,
        "user_key": KEY,
        "start_date": START,
        "window_days": 180,
        "sessions_window_hours": 24 * 365,
        "max_tries": 2,
        "backoff_base_seconds": 0.01,
        **overrides,
    }




def error_line(run: CliRun) -> str:
    """The one line that says what went wrong: the last one, and no traceback anywhere."""
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("tap-seemetrix: "), run.stderr[-2000:]
    return last


def test_sync_prints_records_and_state_and_never_the_key(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-seemetrix", config(server.url), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    app = t.cast("SeemetrixEmulator", server.app)
    assert len(run.records("sessions")) == app.session_count() == 24
    assert {m["stream"] for m in run.messages if m["type"] == "RECORD"} == {
        "devices",
        "device_statistics",
        "user_statistics",
        "sessions",
        "demographic_statistics",
        "emotion_statistics",
        "counters",
    }
    assert run.messages[-1]["type"] == "STATE"
    assert all(r.query["key"] == [KEY] for r in app.requests)  # it was sent, in every request
    assert_no_secret(run, KEY)


def test_wrong_key_stops_at_the_first_request_naming_user_key(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-seemetrix", config(server.url, user_key=WRONG_KEY), tmp_path)
    line = error_line(run)
    assert "HTTP 401" in line and "`user_key`" in line and "`user_id`" not in line
    assert server.app.request_count() == 1
    assert not run.records("sessions")
    assert_no_secret(run, WRONG_KEY)


def test_wrong_user_id_names_user_id(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-seemetrix", config(server.url, user_id=631), tmp_path)
    line = error_line(run)
    assert "HTTP 403" in line and "refused user 631" in line and "`user_id`" in line
    assert "`user_key`" not in line
    assert_no_secret(run, KEY)


def test_a_device_the_user_does_not_own_names_device_ids(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-seemetrix", config(server.url, device_ids=[1]), tmp_path)
    line = error_line(run)
    assert "device 1" in line and "`device_ids`" in line
    assert_no_secret(run, KEY)


def test_server_errors_until_retries_run_out(server: EmulatorServer, tmp_path: Path) -> None:
    server.app.inject(Fault(kind="status", status=500, times=10))
    run = run_tap_cli("tap-seemetrix", config(server.url), tmp_path)
    line = error_line(run)
    assert "gave up after 2 tries" in line
    assert "retrying" in run.stderr  # the retry was logged, by path
    assert server.app.request_count() == 2
    assert_no_secret(run, KEY)


def test_nothing_listening(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = run_tap_cli("tap-seemetrix", config(f"http://127.0.0.1:{port}"), tmp_path)
    line = error_line(run)
    assert "connection was refused" in line and "api_url" in line
    assert_no_secret(run, KEY)


def test_an_answer_the_tap_cannot_read_prints_a_masked_traceback(server: EmulatorServer, tmp_path: Path) -> None:
    # Attention intervals that are a number, not a list: a shape nothing foresaw, reported as a
    # bug is, with a traceback, the key masked.
    body = '{"objects": [{"d": 1, "b": "2024-05-01T00:00:00", "at": 5}]}'
    server.app.inject(Fault(kind="status", status=200, body=body, path_regex="/raw/data/"))
    run = run_tap_cli("tap-seemetrix", config(server.url), tmp_path)
    assert run.returncode == 1
    assert "Traceback" in run.stderr and "TypeError" in run.stderr
    assert_no_secret(run, KEY)


def test_a_session_without_its_start_stops_with_one_clear_line(server: EmulatorServer, tmp_path: Path) -> None:
    # The start is the sessions' bookmark: without it a session cannot be placed in a window.
    server.app.inject(Fault(kind="status", status=200, body='{"objects": [{"d": 1}]}', path_regex="/raw/data/"))
    run = run_tap_cli("tap-seemetrix", config(server.url), tmp_path)
    line = error_line(run)
    assert "with a row whose `b` is None, not a date or time" in line
    assert_no_secret(run, KEY)


@pytest.mark.parametrize(
    ("change", "named"),
    [({"end_date": "1999-01-01"}, "end_date"), ({"user_key": ""}, "user_key"), ({"window_days": 365}, "window_days")],
)
def test_bad_settings_fail_before_any_request(
    server: EmulatorServer, tmp_path: Path, change: dict[str, t.Any], named: str
) -> None:
    run = run_tap_cli("tap-seemetrix", config(server.url, **change), tmp_path)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    # The SDK reports settings errors itself, one log line each, then "Config validation failed".
    (line,) = [line for line in run.stderr.splitlines() if named in line]
    assert "ERROR" in line
    assert server.app.request_count() == 0
    assert_no_secret(run, KEY)


def test_connection_test_makes_one_request(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-seemetrix", config(server.url), tmp_path, "--test")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Connection test passed" in run.stderr and "3 devices (1 online, 1 offline, 1 frozen)" in run.stderr
    assert [r.path for r in server.app.requests] == ["/api/user/632/devices/"]
    assert_no_secret(run, KEY)


def test_connection_test_with_a_wrong_key_fails_clearly(server: EmulatorServer, tmp_path: Path) -> None:
    run = run_tap_cli("tap-seemetrix", config(server.url, user_key=WRONG_KEY), tmp_path, "--test")
    line = error_line(run)
    assert "`user_key`" in line
    assert_no_secret(run, WRONG_KEY)

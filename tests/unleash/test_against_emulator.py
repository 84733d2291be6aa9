"""tap-unleash against the Unleash live emulator over real HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import typing as t
from collections import Counter

import pytest
from singer_sdk.testing import get_tap_test_class

from emulators.framework import EmulatorServer, Fault
from emulators.unleash import UnleashEmulator
from taps_common.errors import APIUnavailableError
from taps_common.timestamps import to_utc_iso, utc_now
from tap_unleash.tap import TapUnleash
from tests.contract import assert_keys_declared_in_schemas, assert_primary_keys_unique_and_present
from tests.helpers import CapturingWriter, run_sync

if t.TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN = "ul_pat_test-token"
ANALYTICS_PK = ("device_id", "session_id", "frame_number", "class_name")
FAST_RETRIES = {"max_tries": 3, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}


def tap_config(server: EmulatorServer, **overrides: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    app = t.cast("UnleashEmulator", server.app)
    return {
        "api_url": f"{server.url}/v1",
        "access_token": TOKEN,
        "start_date": to_utc_iso(app.span_start - dt.timedelta(days=1)),
        **FAST_RETRIES,
        **overrides,
    }


def as_served(record: dict[str, t.Any]) -> dict[str, t.Any]:
    """A truth record as the tap emits it (timestamps in the one UTC form)."""
    return {**record, "timestamp": to_utc_iso(record["timestamp"])}


def key(record: dict[str, t.Any]) -> tuple:
    return tuple(record[k] for k in ANALYTICS_PK)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    options = {"seed": 11, "devices": 2, "sessions_per_device": 4, "frames_per_session": 40, "page_size": 70}
    options.update(getattr(request, "param", {}))
    with EmulatorServer(UnleashEmulator(**options)) as running:
        yield running


# --- the SDK's standard suite, against a long-lived emulator ---------------------------

_SUITE_SERVER = EmulatorServer(UnleashEmulator(seed=5, devices=2, sessions_per_device=2, frames_per_session=20))
_SUITE_SERVER.start()
TestTapUnleashStandard = get_tap_test_class(
    tap_class=TapUnleash,
    config=tap_config(_SUITE_SERVER),
)


@pytest.fixture(scope="module", autouse=True)
def _stop_suite_server() -> Iterator[None]:
    yield
    _SUITE_SERVER.stop()


# --- our own checks ----------------------------------------------------------------------


def test_catalog_keys_exist_in_schemas(server: EmulatorServer) -> None:
    assert_keys_declared_in_schemas(TapUnleash(config=tap_config(server)))


def test_full_sync_emits_exactly_the_emulator_records(server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    result = run_sync(TapUnleash, tap_config(server))
    analytics = result.records["analytics"]
    assert_primary_keys_unique_and_present(analytics, ANALYTICS_PK, "analytics")
    assert sorted(analytics, key=key) == sorted(map(as_served, app.truth_records()), key=key)
    assert [r["device_id"] for r in result.records["devices"]] == app.device_ids()
    assert {r["session_id"] for r in result.records["sessions"]} == set(app.session_ids())
    assert_primary_keys_unique_and_present(result.records["sessions"], ("session_id",), "sessions")


def test_pages_are_read_to_the_last_and_never_past_it(server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    run_sync(TapUnleash, tap_config(server, window_days=365))
    pages_needed = sum(-(-app.record_count(device) // 70) for device in app.device_ids())
    assert pages_needed > 4  # the test means something only with several pages per device
    assert app.request_count(r"^/v1/analytics/W") == pages_needed
    assert app.request_count() == pages_needed + 2  # plus the devices and sessions listings


@pytest.mark.parametrize("mode", ["both", "start", "end", "neither"])
def test_every_reading_of_the_range_ends_gives_each_record_once(mode: str) -> None:
    # Windows of one day put many window edges on the data; align the start on a
    # record's own timestamp so a record sits exactly on every edge's reading.
    app = UnleashEmulator(seed=3, devices=1, sessions_per_device=6, frames_per_session=30, range_inclusive=mode)
    first = app.truth_records()[0]
    with EmulatorServer(app) as running:
        result = run_sync(
            TapUnleash, tap_config(running, start_date=first["timestamp"], window_days=1 / 24)
        )
    assert sorted(map(key, result.records["analytics"])) == sorted(map(key, app.truth_records()))


@pytest.mark.parametrize("server", [{"order": "shuffled", "page_size": 25}], indirect=True)
def test_rows_in_any_order_are_all_read_once(server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    result = run_sync(TapUnleash, tap_config(server, window_days=2))
    assert sorted(map(key, result.records["analytics"])) == sorted(map(key, app.truth_records()))


def test_second_sync_reads_only_new_records_and_the_bookmark_timestamp(server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    config = tap_config(server)
    first = run_sync(TapUnleash, config)
    bookmarks = {
        p["context"]["device_id"]: p["replication_key_value"]
        for p in first.final_state["bookmarks"]["analytics"]["partitions"]
    }
    newest = {d: max(to_utc_iso(r["timestamp"]) for r in app.truth_records(d)) for d in app.device_ids()}
    assert bookmarks == newest

    device = app.device_ids()[0]
    arrived = app.add_session(device, utc_now() - dt.timedelta(minutes=5), frames=30)
    app.reset_requests()
    second = run_sync(TapUnleash, config, state=first.final_state)

    at_bookmark = [r for r in app.truth_records() if to_utc_iso(r["timestamp"]) == bookmarks[r["device_id"]]]
    expected = sorted(map(key, arrived + at_bookmark))
    assert sorted(map(key, second.records["analytics"])) == expected
    # Only the pages holding those records: at least one request per device.
    per_device = Counter(r["device_id"] for r in arrived + at_bookmark)
    pages = sum(max(1, -(-per_device[d] // 70)) for d in app.device_ids())
    assert app.request_count(r"^/v1/analytics/W") == pages


def test_interrupted_sync_resumes_at_the_window_it_was_in(server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    # One request at a time, so that the sixth request is the first device's sixth window.
    config = tap_config(server, window_days=1, max_tries=1, concurrent_requests=1)
    # Let five analytics requests through, then fail: the first device is part-way done.
    app.inject_many(
        [Fault(kind="slow", delay=0.0, path_regex=r"^/v1/analytics/W") for _ in range(5)]
        + [Fault(kind="status", status=503, path_regex=r"^/v1/analytics/W")]
    )
    writer = CapturingWriter()
    with pytest.raises(APIUnavailableError):
        TapUnleash(config=config, message_writer=writer).sync_all()
    crashed_records = [m["record"] for m in writer.messages if m["type"] == "RECORD" and m["stream"] == "analytics"]
    crashed_states = [m["value"] for m in writer.messages if m["type"] == "STATE"]
    assert crashed_records, "the crash should come after some windows were read"
    assert "analytics" in crashed_states[-1]["bookmarks"], "a window's end should have been checkpointed"

    resumed = run_sync(TapUnleash, config, state=crashed_states[-1])

    union = {key(r) for r in crashed_records} | {key(r) for r in resumed.records["analytics"]}
    assert union == {key(r) for r in app.truth_records()}
    read_twice = Counter(map(key, crashed_records)) & Counter(map(key, resumed.records["analytics"]))
    records_per_day = max(Counter(r["timestamp"][:10] for r in app.truth_records()).values())
    assert sum(read_twice.values()) <= records_per_day  # at most the window in progress


def test_transient_faults_are_retried_and_lose_nothing(server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    analytics = r"^/v1/analytics/W"
    app.inject_many(
        [
            Fault(kind="status", status=429, retry_after="0", path_regex=analytics),
            Fault(kind="status", status=503, path_regex=r"/devices$"),
            Fault(kind="drop", path_regex=analytics),
            Fault(kind="malformed", path_regex=analytics),
            Fault(kind="empty", path_regex=r"/sessions$"),
        ]
    )
    # Three analytics faults in a row hit the same request: the fourth try gets through.
    result = run_sync(TapUnleash, tap_config(server, max_tries=4))
    assert app.pending_faults == 0  # every fault was met, and survived
    assert sorted(map(key, result.records["analytics"])) == sorted(map(key, app.truth_records()))
    assert len(result.records["sessions"]) == len(app.session_ids())

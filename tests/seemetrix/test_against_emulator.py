"""tap-seemetrix against the Seemetrix emulator over real HTTP on loopback."""

from __future__ import annotations

import copy
import datetime as dt
import math
import typing as t
from collections import Counter

import pytest
from singer_sdk.testing import get_tap_test_class

from emulators.framework import EmulatorServer, Fault
from emulators.seemetrix import SeemetrixEmulator
from taps_common.errors import APIUnavailableError
from taps_common.timestamps import parse_timestamp, to_utc_iso, utc_now
from tap_seemetrix.tap import TapSeemetrix
from tests.contract import assert_keys_declared_in_schemas, assert_primary_keys_unique_and_present
from tests.helpers import CapturingWriter, SyncResult, run_sync
from tests.seemetrix import expected

if t.TYPE_CHECKING:
    from collections.abc import Iterator

KEY = "test-user-key"
ANCHOR = dt.datetime(2024, 5, 10, 12, 30, tzinfo=dt.timezone.utc)
FAST_RETRIES = {"max_tries": 3, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}
PRIMARY_KEYS = {
    "devices": ("device_id",),
    "device_statistics": ("device_id", "period_start"),
    "user_statistics": ("user_id", "period_start"),
    "sessions": ("device_id", "session_number"),
    "demographic_statistics": ("device_id", "date", "gender", "age_group"),
    "emotion_statistics": ("device_id", "date", "emotion"),
    "counters": ("user_id", "taken_at"),
}
HOURLY = {"device_statistics", "user_statistics"}
TREES = {"demographic_statistics": "/devices/dates/genders/ages/", "emotion_statistics": "/devices/dates/emotions/"}


def tap_config(server: EmulatorServer, **overrides: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    app = t.cast("SeemetrixEmulator", server.app)
    return {
        "api_url": f"{server.url}/api",
        "user_id": app.user_id,
        "user_key": KEY,
        "start_date": to_utc_iso(app.span_start - dt.timedelta(hours=1)),
        **FAST_RETRIES,
        **overrides,
    }


def fixed_config(server: EmulatorServer, **overrides: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    """Settings for an emulator anchored at ANCHOR: the sync ends there, so every session is read."""
    return tap_config(server, end_date=to_utc_iso(ANCHOR), **overrides)


def key_of(stream: str, record: dict[str, t.Any]) -> tuple:
    return tuple(record[name] for name in PRIMARY_KEYS[stream])


def by_key(stream: str, records: list[dict[str, t.Any]]) -> dict[tuple, dict[str, t.Any]]:
    return {key_of(stream, record): record for record in records}


def without(records: list[dict[str, t.Any]], *names: str) -> list[dict[str, t.Any]]:
    return [{k: v for k, v in record.items() if k not in names} for record in records]


def windows_between(start: dt.datetime, end: dt.datetime, size: dt.timedelta) -> int:
    """How many windows of `size` cover [start, end): what the request counts follow from."""
    return math.ceil((end - start) / size)


def floor_to(moment: dt.datetime, step: dt.timedelta) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return moment - (moment - epoch) % step


def expected_records(app: SeemetrixEmulator, sessions: list[dict[str, t.Any]] | None = None) -> dict[str, list]:
    """Every windowed stream's records for `sessions` (default: all of them)."""
    sessions = app.truth_sessions() if sessions is None else sessions
    return {
        "sessions": [expected.session_record(session) for session in sessions],
        "device_statistics": expected.hourly_records(sessions, per_device=True, user_id=app.user_id),
        "user_statistics": expected.hourly_records(sessions, per_device=False, user_id=app.user_id),
        "demographic_statistics": expected.demographic_records(sessions),
        "emotion_statistics": expected.emotion_records(sessions),
    }


def assert_records_match(result: SyncResult, wanted: dict[str, list], streams: t.Iterable[str] | None = None) -> None:
    for stream in streams or wanted:
        got = result.records.get(stream, [])
        assert_primary_keys_unique_and_present(got, PRIMARY_KEYS[stream], stream)
        assert by_key(stream, got) == by_key(stream, wanted[stream]), stream


@pytest.fixture(scope="module")
def fixed_server() -> Iterator[EmulatorServer]:
    """An emulator anchored at ANCHOR: 3 devices, 3 days, nobody changes it."""
    app = SeemetrixEmulator(seed=21, days=3, sessions_per_day=30, anchor=ANCHOR)
    with EmulatorServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def full_sync(fixed_server: EmulatorServer) -> tuple[SyncResult, Counter[str]]:
    """One full sync with small windows, and the requests it made per path."""
    app = t.cast("SeemetrixEmulator", fixed_server.app)
    app.reset_requests()
    result = run_sync(
        TapSeemetrix,
        fixed_config(fixed_server, window_days=1, sessions_window_hours=12, tree_devices_per_page=2),
    )
    return result, Counter(request.path for request in app.requests)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    """A fresh emulator, anchored at now unless the test says otherwise."""
    options = {"seed": 5, "days": 2, "sessions_per_day": 20}
    options.update(getattr(request, "param", {}))
    with EmulatorServer(SeemetrixEmulator(**options)) as running:
        yield running


# --- the SDK's standard suite, against a long-lived emulator ---------------------------------

_SUITE_SERVER = EmulatorServer(SeemetrixEmulator(seed=8, days=1, sessions_per_day=12))
_SUITE_SERVER.start()
TestTapSeemetrixStandard = get_tap_test_class(tap_class=TapSeemetrix, config=tap_config(_SUITE_SERVER))


@pytest.fixture(scope="module", autouse=True)
def _stop_suite_server() -> Iterator[None]:
    yield
    _SUITE_SERVER.stop()


# --- a full sync, exactly --------------------------------------------------------------------


def test_catalog_keys_exist_in_schemas(fixed_server: EmulatorServer) -> None:
    assert_keys_declared_in_schemas(TapSeemetrix(config=fixed_config(fixed_server)))


def test_full_sync_emits_exactly_the_ground_truth(
    fixed_server: EmulatorServer, full_sync: tuple[SyncResult, Counter[str]]
) -> None:
    app = t.cast("SeemetrixEmulator", fixed_server.app)
    result, _ = full_sync
    wanted = expected_records(app)
    assert len(wanted["sessions"]) == app.session_count() == 270
    assert_records_match(result, wanted)
    assert result.records["devices"] == expected.device_records(app)
    (counters,) = result.records["counters"]
    assert {k: v for k, v in counters.items() if k in expected.counters_values(app)} == expected.counters_values(app)
    assert counters["user_id"] == app.user_id
    assert abs(parse_timestamp(counters["taken_at"]) - utc_now()) < dt.timedelta(minutes=1)


def test_every_stream_tells_the_same_story(full_sync: tuple[SyncResult, Counter[str]]) -> None:
    records = full_sync[0].records
    looked = [s for s in records["sessions"] if any(i["looking"] for i in s["attention_intervals"])]
    views = {stream: sum(r["views"] for r in records[stream]) for stream in [*HOURLY, *TREES]}
    assert set(views.values()) == {len(looked)}, views
    assert sum(r["duration_ms"] for r in looked) == sum(
        r["views_duration_ms"] for r in records["demographic_statistics"]
    )
    for stream in TREES:
        ots = {(r["device_id"], r["date"]): r["ots"] for r in records[stream]}
        assert sum(ots.values()) == len(records["sessions"])
    assert records["counters"][0]["views_total"] == len(looked)


def test_full_sync_makes_one_request_per_window_and_page(
    fixed_server: EmulatorServer, full_sync: tuple[SyncResult, Counter[str]]
) -> None:
    app = t.cast("SeemetrixEmulator", fixed_server.app)
    _, requests_by_path = full_sync
    start = app.span_start - dt.timedelta(hours=1)
    hourly_windows = windows_between(floor_to(start, dt.timedelta(hours=1)), ANCHOR, dt.timedelta(days=1))
    daily_windows = windows_between(floor_to(start, dt.timedelta(days=1)), ANCHOR, dt.timedelta(days=1))
    pages = math.ceil(len(app.devices) / 2)
    wanted = Counter(
        {
            "/api/user/632/devices/": 1,
            "/api/user/632/counters": 1,
            "/api/statistics/user/632/": hourly_windows,
            "/api/statistics/user/632/raw/data/": windows_between(start, ANCHOR, dt.timedelta(hours=12)),
            **{f"/api/v2/statistics/user/632{path}": daily_windows * pages for path in TREES.values()},
            **{f"/api/statistics/device/{device}/": hourly_windows for device in app.device_ids()},
        }
    )
    assert hourly_windows == 4 and pages == 2  # several windows and pages, or the test means little
    assert requests_by_path == wanted


def test_every_request_carries_the_key_and_tzo_zero(fixed_server: EmulatorServer) -> None:
    app = t.cast("SeemetrixEmulator", fixed_server.app)
    app.reset_requests()
    run_sync(TapSeemetrix, fixed_config(fixed_server))
    for request in app.requests:
        assert request.query["key"] == [KEY]
        if "statistics" in request.path:
            assert request.query["tzo"] == ["0"], request.path
            assert request.path.endswith("/")


# --- readings the docs leave open ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["both", "start", "end", "neither"])
def test_sessions_on_window_edges_are_read_once_whatever_ends_are_inclusive(mode: str) -> None:
    app = SeemetrixEmulator(seed=3, days=2, sessions_per_day=10, anchor=ANCHOR, range_ends=mode)
    device = app.device_ids()[0]
    start = floor_to(app.span_start, dt.timedelta(days=1))
    # On every window edge: hours (hourly windows of 6 h), midnights (trees), 6-hour session windows.
    for edge in range(1, 11):
        app.add_session(device, start + dt.timedelta(hours=6 * edge))
    with EmulatorServer(app) as running:
        config = fixed_config(running, start_date=to_utc_iso(start), window_days=1, sessions_window_hours=6)
        result = run_sync(TapSeemetrix, config)
    assert_records_match(result, expected_records(app))


@pytest.mark.parametrize("selection", ["start", "end", "overlap"])
def test_sessions_across_window_edges_are_read_once_however_the_api_selects_them(selection: str) -> None:
    app = SeemetrixEmulator(seed=4, days=1, sessions_per_day=10, anchor=ANCHOR, raw_selects_by=selection)
    device = app.device_ids()[1]
    start = floor_to(app.span_start, dt.timedelta(hours=1))
    for edge in range(1, 8):  # each starts 10 s before an edge of the 3-hour windows and ends after it
        app.add_session(device, start + dt.timedelta(hours=3 * edge, seconds=-10))
    with EmulatorServer(app) as running:
        result = run_sync(TapSeemetrix, fixed_config(running, start_date=to_utc_iso(start), sessions_window_hours=3))
    assert_records_match(result, expected_records(app), ["sessions"])


@pytest.mark.parametrize(("slash", "requests"), [("forbidden", 1), ("required", 2), ("either", 1)])
def test_counters_are_read_with_or_without_the_trailing_slash(slash: str, requests: int) -> None:
    app = SeemetrixEmulator(seed=6, days=1, sessions_per_day=5, anchor=ANCHOR, counters_slash=slash)
    with EmulatorServer(app) as running:
        catalog = TapSeemetrix(config=fixed_config(running)).catalog_dict
        for entry in catalog["streams"]:
            (top,) = [item for item in entry["metadata"] if item["breadcrumb"] == []]
            top["metadata"]["selected"] = entry["tap_stream_id"] == "counters"
        result = run_sync(TapSeemetrix, fixed_config(running), catalog=catalog)
    (counters,) = result.records["counters"]
    assert counters["views_total"] == expected.counters_values(app)["views_total"]
    assert app.request_count(r"/counters") == requests


@pytest.mark.parametrize("server", [{"float_counts": False, "anchor": ANCHOR}], indirect=True)
def test_tree_counts_as_integers_or_floats_give_the_same_rows(server: EmulatorServer) -> None:
    app = t.cast("SeemetrixEmulator", server.app)
    result = run_sync(TapSeemetrix, fixed_config(server))
    assert_records_match(result, expected_records(app), TREES)


# --- settings that shape the reading ---------------------------------------------------------------


@pytest.mark.parametrize("server", [{"anchor": ANCHOR, "devices": 4}], indirect=True)
def test_device_ids_restrict_every_per_device_stream(server: EmulatorServer) -> None:
    app = t.cast("SeemetrixEmulator", server.app)
    chosen = app.device_ids()[1:3]
    result = run_sync(TapSeemetrix, fixed_config(server, device_ids=chosen))
    assert [r["device_id"] for r in result.records["devices"]] == [
        r["device_id"] for r in expected.device_records(app) if r["device_id"] in chosen
    ]
    mine = [s for s in app.truth_sessions() if s["device_id"] in chosen]
    wanted = expected_records(app, mine)
    assert_records_match(result, wanted, ["sessions", "device_statistics", *TREES])
    # The user's own statistics cover all of the user's devices.
    assert_records_match(result, expected_records(app), ["user_statistics"])
    filtered = [(r.path, int(r.query.get("d", r.query.get("device_id", [0]))[0])) for r in app.requests]
    filtered = [(path, device) for path, device in filtered if device]
    tree_paths = {f"/api/v2/statistics/user/632{path}" for path in TREES.values()}
    assert {path for path, _ in filtered} == {"/api/statistics/user/632/raw/data/", *tree_paths}
    assert {device for _, device in filtered} == set(chosen)


@pytest.mark.parametrize("server", [{"anchor": ANCHOR}], indirect=True)
def test_device_keys_only_when_asked(server: EmulatorServer) -> None:
    app = t.cast("SeemetrixEmulator", server.app)
    catalog_config = fixed_config(server, include_device_keys=True)
    with_keys = run_sync(TapSeemetrix, catalog_config).records["devices"]
    assert with_keys == expected.device_records(app, include_keys=True)
    assert "device_key" not in TapSeemetrix(config=fixed_config(server)).streams["devices"].schema["properties"]


@pytest.mark.parametrize("server", [{"anchor": ANCHOR, "days": 1}], indirect=True)
def test_hourly_tree_periods(server: EmulatorServer) -> None:
    app = t.cast("SeemetrixEmulator", server.app)
    result = run_sync(TapSeemetrix, fixed_config(server, tree_granularity="hour"))
    rows = result.records["emotion_statistics"]
    assert {r["date"][-3:-2] for r in rows} == {" "}  # "2024-05-09 13"
    hours = Counter()
    for session in app.truth_sessions():
        hours[(session["device_id"], to_utc_iso(expected.hour_of(session["start"])))] += session["viewed"]
    got = Counter()
    for row in rows:
        got[(row["device_id"], row["period_start"])] += row["views"]
    assert got == hours
    assert {r["views"] for r in rows} != {0}
    asked = {r.query["dt_format"][0] for r in app.requests if "dt_format" in r.query}
    assert asked == {"YYYY-MM-DD HH"}


@pytest.mark.parametrize("server", [{"anchor": ANCHOR}], indirect=True)
def test_transient_failures_are_retried_and_lose_nothing(server: EmulatorServer) -> None:
    app = t.cast("SeemetrixEmulator", server.app)
    app.inject_many(
        [
            Fault(kind="status", status=503, retry_after="0", path_regex=r"/v2/"),
            Fault(kind="malformed", path_regex=r"/raw/data/"),
            Fault(kind="drop", path_regex=r"/statistics/device/"),
            Fault(kind="status", status=429, path_regex=r"/counters"),
        ]
    )
    result = run_sync(TapSeemetrix, fixed_config(server))
    assert app.pending_faults == 0
    assert_records_match(result, expected_records(app))
    with_faults = len(app.requests)
    app.reset_requests()
    run_sync(TapSeemetrix, fixed_config(server))
    assert with_faults == len(app.requests) + 4  # each fault cost one more try


# --- incremental syncs -------------------------------------------------------------------------------


def bookmark(state: dict[str, t.Any], stream: str, device_id: int | None = None) -> str:
    entry = state["bookmarks"][stream]
    if device_id is not None:
        entry = next(p for p in entry["partitions"] if p["context"]["device_id"] == device_id)
    return entry["replication_key_value"]


def test_second_sync_rereads_only_what_is_still_filling(server: EmulatorServer) -> None:
    app = t.cast("SeemetrixEmulator", server.app)
    config = tap_config(server)
    first = run_sync(TapSeemetrix, config)
    assert_records_match(first, expected_records(app))
    state = first.final_state
    sessions = app.truth_sessions()
    newest = max(to_utc_iso(s["start"]) for s in sessions)
    assert bookmark(state, "sessions") == newest
    for device in app.device_ids():
        last_hour = max(to_utc_iso(expected.hour_of(s["start"])) for s in sessions if s["device_id"] == device)
        assert bookmark(state, "device_statistics", device) == last_hour
    assert bookmark(state, "demographic_statistics") == to_utc_iso(max(s["start"] for s in sessions).date())

    # New faces arrive: one in the current hour, on the device whose bookmark is oldest.
    device = min(app.device_ids(), key=lambda d: bookmark(state, "device_statistics", d))
    arrived = app.add_session(device, utc_now() - dt.timedelta(seconds=30))
    app.reset_requests()
    second = run_sync(TapSeemetrix, config, state=copy.deepcopy(state))  # the SDK updates it in place

    after = app.truth_sessions()
    since = {
        "sessions": [s for s in after if to_utc_iso(s["start"]) >= newest],
        "user_statistics": [
            s for s in after if to_utc_iso(expected.hour_of(s["start"])) >= bookmark(state, "user_statistics")
        ],
        "demographic_statistics": [
            s for s in after if to_utc_iso(s["start"].date()) >= bookmark(state, "demographic_statistics")
        ],
        "device_statistics": [
            s
            for s in after
            if to_utc_iso(expected.hour_of(s["start"])) >= bookmark(state, "device_statistics", s["device_id"])
        ],
    }
    since["emotion_statistics"] = since["demographic_statistics"]
    for stream, still_filling in since.items():
        assert_records_match(second, {stream: expected_records(app, still_filling)[stream]}, [stream])
    assert arrived["session_number"] in {r["session_number"] for r in second.records["sessions"]}
    assert len(second.records["sessions"]) == 2  # the bookmark's own session, and the new one
    # One window per stream (per device for device_statistics), one page per tree window.
    per_path = Counter(request.path for request in app.requests)
    assert sum(per_path.values()) == 6 + len(app.devices)
    assert all(count == 1 for count in per_path.values()), per_path
    assert bookmark(second.final_state, "sessions") == to_utc_iso(arrived["start"])


@pytest.mark.parametrize("server", [{"anchor": ANCHOR}], indirect=True)
def test_lookback_rereads_hours_before_each_bookmark(server: EmulatorServer) -> None:
    app = t.cast("SeemetrixEmulator", server.app)
    state = run_sync(TapSeemetrix, fixed_config(server)).final_state
    again = run_sync(TapSeemetrix, fixed_config(server, lookback_hours=5), state=copy.deepcopy(state))
    back = parse_timestamp(bookmark(state, "sessions")) - dt.timedelta(hours=5)
    reread = [s for s in app.truth_sessions() if s["start"] >= back]
    assert_records_match(again, {"sessions": expected_records(app, reread)["sessions"]}, ["sessions"])
    hour = parse_timestamp(bookmark(state, "user_statistics")) - dt.timedelta(hours=5)
    assert min(r["period_start"] for r in again.records["user_statistics"]) >= to_utc_iso(hour)
    assert len(again.records["user_statistics"]) >= 5


def test_interrupted_sessions_sync_resumes_at_the_window_it_was_in() -> None:
    app = SeemetrixEmulator(seed=9, days=3, sessions_per_day=20, anchor=ANCHOR)
    with EmulatorServer(app) as running:
        config = fixed_config(running, sessions_window_hours=6, max_tries=1)
        app.inject_many(
            [Fault(kind="slow", delay=0.0, path_regex=r"/raw/data/") for _ in range(5)]
            + [Fault(kind="status", status=503, path_regex=r"/raw/data/")]
        )
        writer = CapturingWriter()
        with pytest.raises(APIUnavailableError):
            TapSeemetrix(config=config, message_writer=writer).sync_all()
        crashed = [m["record"] for m in writer.messages if m["type"] == "RECORD" and m["stream"] == "sessions"]
        state = [m["value"] for m in writer.messages if m["type"] == "STATE"][-1]
        assert crashed and "sessions" in state["bookmarks"]
        assert bookmark(state, "sessions") == max(r["started_at"] for r in crashed)

        app.reset_requests()
        resumed = run_sync(TapSeemetrix, config, state=state)

    truth = {key_of("sessions", r) for r in expected_records(app)["sessions"]}
    union = {key_of("sessions", r) for r in crashed + resumed.records["sessions"]}
    assert union == truth
    read_twice = Counter(key_of("sessions", r) for r in crashed) & Counter(
        key_of("sessions", r) for r in resumed.records["sessions"]
    )
    assert sum(read_twice.values()) == 1  # only the bookmark's own session
    total_windows = windows_between(app.span_start - dt.timedelta(hours=1), ANCHOR, dt.timedelta(hours=6))
    assert (
        app.request_count(r"/raw/data/")
        == windows_between(parse_timestamp(bookmark(state, "sessions")), ANCHOR, dt.timedelta(hours=6))
        <= total_windows - 4
    )


def test_interrupted_tree_sync_resumes_at_the_window_and_rereads_its_pages() -> None:
    app = SeemetrixEmulator(seed=10, days=4, sessions_per_day=10, anchor=ANCHOR)
    with EmulatorServer(app) as running:
        config = fixed_config(running, window_days=1, tree_devices_per_page=1, max_tries=1, concurrent_requests=1)
        tree = r"/v2/statistics/user/632/devices/dates/genders/ages/"
        # Two windows of three pages go through; the third window fails on its second page.
        app.inject_many([Fault(kind="slow", delay=0.0, path_regex=tree) for _ in range(7)])
        app.inject(Fault(kind="status", status=500, path_regex=tree))
        writer = CapturingWriter()
        with pytest.raises(APIUnavailableError):
            TapSeemetrix(config=config, message_writer=writer).sync_all()
        stream = "demographic_statistics"
        crashed = [m["record"] for m in writer.messages if m["type"] == "RECORD" and m["stream"] == stream]
        state = [m["value"] for m in writer.messages if m["type"] == "STATE"][-1]
        first_day = floor_to(app.span_start - dt.timedelta(hours=1), dt.timedelta(days=1))
        assert bookmark(state, stream) == to_utc_iso(first_day + dt.timedelta(days=1))
        app.reset_requests()
        resumed = run_sync(TapSeemetrix, config, state=state)
    wanted = by_key(stream, expected_records(app)[stream])
    got = by_key(stream, crashed) | by_key(stream, resumed.records[stream])
    assert got == wanted
    # Resumed at the bookmark's day: that day again, then the rest, three pages each.
    days_left = windows_between(first_day + dt.timedelta(days=1), ANCHOR, dt.timedelta(days=1))
    assert app.request_count(tree) == 3 * days_left

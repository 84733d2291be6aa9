"""tap-wmspanel against the WMSPanel emulator over real HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import typing as t
from collections import Counter

import pytest
from singer_sdk.testing import get_tap_test_class

from emulators.framework import EmulatorServer, Fault
from emulators.wmspanel import WMSPanelEmulator
from taps_common.errors import APIRequestError, APIUnavailableError
from tap_wmspanel.tap import TapWMSPanel
from tests.contract import assert_keys_declared_in_schemas, assert_primary_keys_unique_and_present
from tests.helpers import CapturingWriter, run_sync

if t.TYPE_CHECKING:
    from collections.abc import Iterator

ANCHOR = dt.date(2024, 5, 10)
DAYS = 40
START = ANCHOR - dt.timedelta(days=DAYS - 1)
STATS_ROUTES = ("players_stats", "devices_stats", "daily_stats")
PIVOTED = {"players_stats": "player", "devices_stats": "device"}
FAST_RETRIES = {"max_tries": 3, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}
#: One call at a time, so the calls made before a failure are exact; fetching ahead has its own test.
SEQUENTIAL = {"concurrent_requests": 1}
# The readable name of every metric the emulator serves, written out here on purpose: it is
# what the tap promises, checked against the emulator's own API names.
READABLE_NAME_OF = {
    "viewers": "viewers",
    "rtmp_viewers": "viewers_rtmp",
    "hls_viewers": "viewers_hls",
    "mpeg_dash_viewers": "viewers_mpeg_dash",
    "rtsp_viewers": "viewers_rtsp",
    "icecast_viewers": "viewers_icecast",
    "srt_viewers": "viewers_srt",
    "webrtc_viewers": "viewers_webrtc",
    "total_view_time": "total_view_time",
    "bytes_out": "bytes_sent",
    "bytes_in": "bytes_received",
    "duration_less_1_min": "views_under_1_min",
    "duration_1_5_min": "views_1_to_5_min",
    "duration_5_10_min": "views_5_to_10_min",
    "duration_10_30_min": "views_10_to_30_min",
    "duration_30_60_min": "views_30_to_60_min",
    "duration_more_60_min": "views_over_60_min",
}


def tap_config(server: EmulatorServer, **overrides: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    return {
        "api_url": f"{server.url}/v1",
        "client_id": "test-client-id",
        "api_key": "test-api-key",
        "start_date": START.isoformat(),
        "end_date": ANCHOR.isoformat(),
        **FAST_RETRIES,
        **SEQUENTIAL,
        **overrides,
    }


def app_of(server: EmulatorServer) -> WMSPanelEmulator:
    return t.cast("WMSPanelEmulator", server.app)


def expected_daily_stats(app: WMSPanelEmulator, first: dt.date | None = None) -> list[dict[str, t.Any]]:
    """The emulator's daily_stats days, renamed as the tap promises."""
    rows = []
    for slice_id in app.data_slice_ids():
        for day in app.day_objects("daily_stats", slice_id, first=first):
            row: dict[str, t.Any] = dict.fromkeys(READABLE_NAME_OF.values())
            row.update({READABLE_NAME_OF[k]: v for k, v in day.items() if k in READABLE_NAME_OF})
            others = {k: v for k, v in day.items() if k not in READABLE_NAME_OF and k != "date"}
            rows.append({**row, "date": day["date"], "data_slice_id": slice_id, "other_metrics": others or None})
    return rows


def long_key(record: dict[str, t.Any], name_column: str) -> tuple:
    return record["data_slice_id"], record["date"], record[name_column]


def without_server(record: dict[str, t.Any]) -> dict[str, t.Any]:
    return {k: v for k, v in record.items() if k != "server_id"}


def by_key(records: list[dict[str, t.Any]], *keys: str) -> list[dict[str, t.Any]]:
    return sorted(records, key=lambda r: tuple(r[k] for k in keys))


def stats_calls(app: WMSPanelEmulator, route: str) -> list[dict[str, str]]:
    return [{k: v[-1] for k, v in r.query.items()} for r in app.requests if r.path == f"/v1/{route}"]


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    options = {"seed": 21, "anchor": ANCHOR, "days": DAYS, "data_slices": 3}
    options.update(getattr(request, "param", {}))
    with EmulatorServer(WMSPanelEmulator(**options)) as running:
        yield running


# --- the SDK's standard suite, against a long-lived emulator ---------------------------

_SUITE_SERVER = EmulatorServer(WMSPanelEmulator(seed=5, anchor=ANCHOR, days=10, data_slices=2))
_SUITE_SERVER.start()
TestTapWMSPanelStandard = get_tap_test_class(tap_class=TapWMSPanel, config=tap_config(_SUITE_SERVER))


@pytest.fixture(scope="module", autouse=True)
def _stop_suite_server() -> Iterator[None]:
    yield
    _SUITE_SERVER.stop()


# --- our own checks ----------------------------------------------------------------------


def test_catalog_keys_exist_in_schemas(server: EmulatorServer) -> None:
    assert_keys_declared_in_schemas(TapWMSPanel(config=tap_config(server)))


def test_full_sync_emits_exactly_the_emulator_data(server: EmulatorServer) -> None:
    app = app_of(server)
    result = run_sync(TapWMSPanel, tap_config(server))
    for route, name_column in PIVOTED.items():
        emitted = result.records[route]
        assert_primary_keys_unique_and_present(emitted, ("data_slice_id", "date", name_column), route)
        assert {r["server_id"] for r in emitted} == {None}
        truth = app.truth_long_rows(route)
        assert by_key(list(map(without_server, emitted)), "data_slice_id", "date", name_column) == by_key(
            truth, "data_slice_id", "date", name_column
        )
        assert any(r["connections"] == 0 for r in truth)  # explicit zeros are rows too
    daily = result.records["daily_stats"]
    assert_primary_keys_unique_and_present(daily, ("data_slice_id", "date"), "daily_stats")
    assert by_key(daily, "data_slice_id", "date") == by_key(expected_daily_stats(app), "data_slice_id", "date")
    assert [r["data_slice_id"] for r in result.records["data_slices"]] == app.data_slice_ids()
    assert [r["server_ids"] for r in result.records["data_slices"]] == [s["server_ids"] for s in app.data_slices()]
    assert [r["server_id"] for r in result.records["servers"]] == [s["id"] for s in app.servers()]
    assert result.records["servers"][0]["attributes"] == {
        k: v for k, v in app.servers()[0].items() if k not in ("id", "name")
    }


def test_days_without_data_are_simply_absent(server: EmulatorServer) -> None:
    app = app_of(server)
    result = run_sync(TapWMSPanel, tap_config(server))
    every_day = {(START + dt.timedelta(days=n)).isoformat() for n in range(DAYS)}
    for slice_id in app.data_slice_ids():
        emitted_days = {r["date"] for r in result.records["daily_stats"] if r["data_slice_id"] == slice_id}
        assert emitted_days < every_day  # some days have no data at all...
        assert emitted_days == {d["date"] for d in app.day_objects("daily_stats", slice_id)}  # ...and none is made up


def test_a_full_sync_costs_one_call_per_slice_and_stream(server: EmulatorServer) -> None:
    app = app_of(server)
    run_sync(TapWMSPanel, tap_config(server))
    slices = len(app.data_slice_ids())
    assert app.request_count() == 2 + 3 * slices == app.quota_used
    for route in STATS_ROUTES:
        calls = stats_calls(app, route)
        # Calls fetched ahead may arrive in any order: each slice once, for the whole range.
        assert sorted((c["data_slice"], c["from"], c["to"]) for c in calls) == sorted(
            (slice_id, START.isoformat(), ANCHOR.isoformat()) for slice_id in app.data_slice_ids()
        )


def test_an_incremental_sync_rereads_only_the_lookback_days_in_as_many_calls(server: EmulatorServer) -> None:
    app = app_of(server)
    config = tap_config(server)
    del config["end_date"]  # read up to today, as a scheduled sync does
    app.advance_days((dt.datetime.now(dt.timezone.utc).date() - ANCHOR).days)  # data up to today
    first = run_sync(TapWMSPanel, config)
    bookmarks = {
        (route, p["context"]["data_slice_id"]): p["replication_key_value"]
        for route in STATS_ROUTES
        for p in first.final_state["bookmarks"][route]["partitions"]
    }
    newest = {
        (route, slice_id): app.day_objects(route, slice_id)[-1]["date"]
        for route in STATS_ROUTES
        for slice_id in app.data_slice_ids()
    }
    assert bookmarks == newest

    # Between the syncs: the days still filling grow, a new day arrives, and an old day changes
    # (late data the lookback does not reach, which the next sync must not re-read).
    slice_id = app.data_slice_ids()[0]
    today = app.anchor
    app.set_day("players_stats", slice_id, today, {"Flash": 999_999, "Safari": 1})
    app.set_day("daily_stats", slice_id, today - dt.timedelta(days=1), {"viewers": 424_242})
    app.set_day("players_stats", slice_id, today - dt.timedelta(days=20), {"Flash": 31337})
    app.reset_requests()
    second = run_sync(TapWMSPanel, config, state=first.final_state)

    slices = len(app.data_slice_ids())
    assert app.request_count() == 2 + 3 * slices  # the same cost as a full sync: never one call per day
    for route in STATS_ROUTES:
        for call in stats_calls(app, route):
            bookmark = dt.date.fromisoformat(bookmarks[(route, call["data_slice"])])
            assert call["from"] == (bookmark - dt.timedelta(days=2)).isoformat()
            assert call["to"] == today.isoformat()
    for route, name_column in PIVOTED.items():
        expected = [
            row
            for row in app.truth_long_rows(route)
            if row["date"] >= (dt.date.fromisoformat(bookmarks[(route, row["data_slice_id"])]) - dt.timedelta(days=2)).isoformat()
        ]
        emitted = [without_server(r) for r in second.records[route]]
        assert by_key(emitted, "data_slice_id", "date", name_column) == by_key(expected, "data_slice_id", "date", name_column)
    assert {"data_slice_id": slice_id, "date": today.isoformat(), "player": "Flash", "connections": 999_999} in [
        without_server(r) for r in second.records["players_stats"]
    ]
    assert 31337 not in {r["connections"] for r in second.records["players_stats"]}
    yesterday = next(r for r in second.records["daily_stats"] if r["data_slice_id"] == slice_id and r["date"] == (today - dt.timedelta(days=1)).isoformat())
    assert yesterday["viewers"] == 424_242


def test_a_longer_lookback_rereads_more_days_in_the_same_single_call(server: EmulatorServer) -> None:
    app = app_of(server)
    first = run_sync(TapWMSPanel, tap_config(server))
    app.reset_requests()
    run_sync(TapWMSPanel, tap_config(server, lookback_days=10), state=first.final_state)
    calls = stats_calls(app, "devices_stats")
    assert len(calls) == len(app.data_slice_ids())
    bookmarks = {p["context"]["data_slice_id"]: p["replication_key_value"] for p in first.final_state["bookmarks"]["devices_stats"]["partitions"]}
    assert [c["from"] for c in calls] == [
        (dt.date.fromisoformat(bookmarks[c["data_slice"]]) - dt.timedelta(days=10)).isoformat() for c in calls
    ]


@pytest.mark.parametrize("server", [{"day_order": "shuffled"}], indirect=True)
def test_days_in_any_order_are_all_read_and_the_bookmark_is_the_newest(server: EmulatorServer) -> None:
    app = app_of(server)
    result = run_sync(TapWMSPanel, tap_config(server))
    emitted = [without_server(r) for r in result.records["players_stats"]]
    assert by_key(emitted, "data_slice_id", "date", "player") == by_key(app.truth_long_rows("players_stats"), "data_slice_id", "date", "player")
    for partition in result.final_state["bookmarks"]["players_stats"]["partitions"]:
        assert partition["replication_key_value"] == app.day_objects("players_stats", partition["context"]["data_slice_id"])[-1]["date"]


@pytest.mark.parametrize("server", [{"max_range_days": 14}], indirect=True)
def test_a_refused_long_range_stops_the_sync_with_the_apis_description_and_what_to_set(server: EmulatorServer) -> None:
    app = app_of(server)
    with pytest.raises(APIRequestError) as failure:
        run_sync(TapWMSPanel, tap_config(server))
    assert "Date range is too long: at most 14 days per request" in str(failure.value)
    assert "`max_days_per_request`" in str(failure.value)
    assert app.request_count(r"_stats$") == 1  # a refusal is not retried: every call is quota


@pytest.mark.parametrize("server", [{"max_range_days": 14}], indirect=True)
def test_max_days_per_request_splits_the_range_into_as_few_calls_as_allowed(server: EmulatorServer) -> None:
    app = app_of(server)
    result = run_sync(TapWMSPanel, tap_config(server, max_days_per_request=14))
    ranges_per_slice = -(-DAYS // 14)
    assert app.request_count(r"_stats$") == 3 * len(app.data_slice_ids()) * ranges_per_slice
    assert len(result.records["players_stats"]) == len(app.truth_long_rows("players_stats"))


def test_an_interrupted_sync_resumes_at_the_range_it_was_in(server: EmulatorServer) -> None:
    app = app_of(server)
    config = tap_config(server, max_days_per_request=10, max_tries=1, lookback_days=0)
    # Let the data slices and the first two players ranges through, then fail.
    app.inject_many(
        [Fault(kind="slow", delay=0.0, path_regex=r"players_stats") for _ in range(2)]
        + [Fault(kind="status", status=503, path_regex=r"players_stats")]
    )
    writer = CapturingWriter()
    with pytest.raises(APIUnavailableError):
        TapWMSPanel(config=config, message_writer=writer).sync_all()
    crashed = [m["record"] for m in writer.messages if m["type"] == "RECORD" and m["stream"] == "players_stats"]
    states = [m["value"] for m in writer.messages if m["type"] == "STATE"]
    assert crashed
    saved = states[-1]["bookmarks"]["players_stats"]["partitions"][0]["replication_key_value"]
    assert saved == max(r["date"] for r in crashed)

    app.reset_requests()
    resumed = run_sync(TapWMSPanel, config, state=states[-1])
    first_slice = app.data_slice_ids()[0]
    assert stats_calls(app, "players_stats")[0]["from"] == saved  # resumes at the bookmark's day
    union = {long_key(r, "player") for r in crashed} | {long_key(r, "player") for r in resumed.records["players_stats"]}
    assert union == {long_key(r, "player") for r in app.truth_long_rows("players_stats")}
    read_twice = Counter(long_key(r, "player") for r in crashed) & Counter(long_key(r, "player") for r in resumed.records["players_stats"])
    assert {(slice_id, day) for slice_id, day, _ in read_twice} == {(first_slice, saved)}


@pytest.mark.parametrize("server", [{"servers": 3, "data_slices": 2}], indirect=True)
def test_server_id_reads_that_servers_numbers(server: EmulatorServer) -> None:
    app = app_of(server)
    server_id = app.data_slices()[0]["server_ids"][1]
    result = run_sync(TapWMSPanel, tap_config(server, server_id=server_id))
    for route, name_column in PIVOTED.items():
        expected = [row for s in app.data_slice_ids() for row in app.truth_long_rows(route, s, server_id=server_id)]
        emitted = result.records[route]
        assert {r["server_id"] for r in emitted} == {server_id}
        assert by_key(list(map(without_server, emitted)), "data_slice_id", "date", name_column) == by_key(expected, "data_slice_id", "date", name_column)
        assert expected != app.truth_long_rows(route)  # the filter changes the numbers
    assert len(result.records["daily_stats"]) == len(expected_daily_stats(app))


def test_user_credentials_read_the_users_slices(server: EmulatorServer) -> None:
    app = app_of(server)
    result = run_sync(TapWMSPanel, tap_config(server, client_id="test-user-client-id", api_key="test-user-api-key"))
    assert [r["data_slice_id"] for r in result.records["data_slices"]] == app.data_slice_ids()[:1]
    assert {r["data_slice_id"] for r in result.records["devices_stats"]} == set(app.data_slice_ids()[:1])


@pytest.mark.parametrize("server", [{"daily_quota": 4}], indirect=True)
def test_past_the_daily_quota_the_sync_stops_saying_so(server: EmulatorServer) -> None:
    with pytest.raises(APIRequestError, match=r"limit exceeded.*15,000 calls per account per 24 hours"):
        run_sync(TapWMSPanel, tap_config(server))
    assert app_of(server).request_count() == 5


@pytest.mark.parametrize("server", [{"daily_quota": 4, "quota_reply": "429"}], indirect=True)
def test_past_the_daily_quota_with_429_the_retries_give_up(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backoff._sync.time.sleep", lambda seconds: None)
    with pytest.raises(APIUnavailableError, match=r"HTTP 429.*gave up after 3 tries"):
        run_sync(TapWMSPanel, tap_config(server))
    assert app_of(server).request_count() == 4 + 3


def test_transient_failures_are_retried_without_losing_days(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_of(server)
    monkeypatch.setattr("backoff._sync.time.sleep", lambda seconds: None)
    app.inject_many(
        [
            Fault(kind="status", status=502, path_regex="devices_stats"),
            Fault(kind="drop", path_regex="daily_stats"),
            Fault(kind="malformed", path_regex="players_stats"),
        ]
    )
    result = run_sync(TapWMSPanel, tap_config(server))
    assert len(result.records["devices_stats"]) == len(app.truth_long_rows("devices_stats"))
    assert len(result.records["daily_stats"]) == len(expected_daily_stats(app))
    assert len(result.records["players_stats"]) == len(app.truth_long_rows("players_stats"))
    assert app.request_count() == 2 + 3 * len(app.data_slice_ids()) + 3


def test_fetching_ahead_changes_neither_records_nor_state_nor_the_call_count(server: EmulatorServer) -> None:
    app = app_of(server)
    sequential = run_sync(TapWMSPanel, tap_config(server))
    calls = app.request_count()
    app.reset_requests()
    ahead = run_sync(TapWMSPanel, tap_config(server, concurrent_requests=4))
    assert app.request_count() == calls
    assert ahead.records == sequential.records  # same records, in the same order
    assert ahead.final_state == sequential.final_state

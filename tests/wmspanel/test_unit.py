"""tap-wmspanel pieces on their own: each vendor quirk, the query-string credentials, settings (requests-mock)."""

from __future__ import annotations

import datetime as dt
import typing as t
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import requests
from singer_sdk.exceptions import ConfigValidationError

from taps_common.errors import APIRequestError, APIUnavailableError, CredentialsError, SettingsError
from taps_common.json_items import SplitBody
from taps_common.records import split_known_fields
from taps_common.windows import first_and_last_day, whole_day_windows
from tap_wmspanel.client import (
    mentions_quota,
    request_summary,
    status_error_description,
)
from tap_wmspanel.streams import (
    DAILY_STATS_COLUMNS,
    connection_count,
    metric_number,
    day_of,
    listed_items,
    pivoted_days_to_long_rows,
    readable_daily_stats,
    server_ids_of,
    stats_days,
)
from tap_wmspanel.tap import TapWMSPanel
from tests.helpers import CapturingWriter, run_sync

if t.TYPE_CHECKING:
    import requests_mock as rm

BASE = "https://api.wmspanel.com/v1"
SLICE = "53e03c9978a6fc8596000001"
OTHER_SLICE = "53e03ca678a6fc8599000001"
CONFIG = {
    "client_id": "unit-client-id",
    "api_key": "unit-api-key",
    "start_date": "2014-10-01",
    "end_date": "2014-10-31",
    "max_tries": 1,
    # One call at a time, so that the order and the count of calls before a failure are exact.
    "concurrent_requests": 1,
}
# The docs' own response examples, byte for byte in content.
DOCS_PLAYERS_DAYS = [
    {"Safari": 9, "Unknown": 45, "date": "2014-10-17", "MSIE": 3, "Flash": 39},
    {"Safari": 12, "Unknown": 0, "date": "2014-10-20", "MSIE": 4, "Flash": 0},
]
DOCS_DEVICES_DAYS = [
    {"iPhone": 6, "iPad": 6, "Macintosh": 3, "Unknown": 21, "Linux": 12, "date": "2014-10-17", "Windows": 48},
    {"Unknown": 0, "date": "2014-10-20", "Windows": 16},
]
DOCS_SLICES = {
    "status": "Ok",
    "data_slices": [{"id": SLICE, "name": "Full data slice"}, {"id": OTHER_SLICE, "name": "DS2"}],
}


# --- the pivot ----------------------------------------------------------------------------------


def test_the_docs_players_example_becomes_one_row_per_day_and_player() -> None:
    rows = list(pivoted_days_to_long_rows(DOCS_PLAYERS_DAYS, "player"))
    assert rows == [
        {"date": "2014-10-17", "player": "Safari", "connections": 9},
        {"date": "2014-10-17", "player": "Unknown", "connections": 45},
        {"date": "2014-10-17", "player": "MSIE", "connections": 3},
        {"date": "2014-10-17", "player": "Flash", "connections": 39},
        {"date": "2014-10-20", "player": "Safari", "connections": 12},
        {"date": "2014-10-20", "player": "Unknown", "connections": 0},
        {"date": "2014-10-20", "player": "MSIE", "connections": 4},
        {"date": "2014-10-20", "player": "Flash", "connections": 0},
    ]


def test_every_row_gets_the_shared_fields() -> None:
    shared = {"data_slice_id": SLICE, "server_id": None}
    rows = list(pivoted_days_to_long_rows(DOCS_PLAYERS_DAYS, "player", shared))
    assert rows[0] == {"date": "2014-10-17", "player": "Safari", "connections": 9, **shared}
    assert all(row.items() >= shared.items() for row in rows) and len(rows) == 8
    assert rows[0] is not rows[1]  # each row its own dict


def test_devices_a_day_leaves_out_give_no_rows() -> None:
    rows = list(pivoted_days_to_long_rows(DOCS_DEVICES_DAYS, "device"))
    assert [(r["date"], r["device"]) for r in rows if r["date"] == "2014-10-20"] == [
        ("2014-10-20", "Unknown"),
        ("2014-10-20", "Windows"),
    ]
    assert len(rows) == 6 + 2


def test_values_that_are_not_counts_are_not_players() -> None:
    day = {"date": "2014-10-17", "Flash": "7", "Safari": 2.0, "note": "partial", "MSIE": None, "Chrome": True}
    rows = list(pivoted_days_to_long_rows([day], "player"))
    assert rows == [
        {"date": "2014-10-17", "player": "Flash", "connections": 7},
        {"date": "2014-10-17", "player": "Safari", "connections": 2},
    ]


@pytest.mark.parametrize(("value", "count"), [(3, 3), (0, 0), (4.0, 4), ("12", 12), (4.5, None), ("x", None), (None, None), (False, None)])
def test_connection_count(value: object, count: int | None) -> None:
    assert connection_count(value) == count


@pytest.mark.parametrize(("value", "number"), [(3, 3), (4.0, 4), (4.5, 4.5), ("2.25", 2.25), ("x", None), ("nan", None), (True, None)])
def test_metric_number(value: object, number: float | None) -> None:
    assert metric_number(value) == number


def test_a_day_without_a_readable_date_cannot_be_placed() -> None:
    with pytest.raises(ValueError, match="without a readable `date`"):
        list(pivoted_days_to_long_rows([{"Flash": 1}], "player"))
    with pytest.raises(ValueError, match="not a date"):
        day_of("17/10/2014")
    assert day_of("2014-10-17T00:00:00Z") == "2014-10-17"


def test_a_day_without_a_date_stops_the_rows_when_it_is_reached() -> None:
    # Days are read one at a time (a whole range is decoded day by day): the days before it have
    # given their rows; the stream turns the error into a failed sync whose bookmark has not moved.
    rows = pivoted_days_to_long_rows([*DOCS_PLAYERS_DAYS, {"Flash": 1}], "player")
    assert len([next(rows) for _ in range(8)]) == 8
    with pytest.raises(ValueError, match="without a readable `date`"):
        next(rows)


def test_rows_come_one_at_a_time() -> None:
    rows = pivoted_days_to_long_rows(DOCS_PLAYERS_DAYS, "player")
    assert not isinstance(rows, list)  # a range of one slice can be a hundred thousand rows
    assert next(rows) == {"date": "2014-10-17", "player": "Safari", "connections": 9}
    assert len(list(rows)) == 7


def test_stats_days_reads_a_list_a_date_keyed_object_or_nothing() -> None:
    assert stats_days({"status": "Ok", "stats": DOCS_PLAYERS_DAYS}) == DOCS_PLAYERS_DAYS
    assert stats_days({"status": "Ok"}) == []
    keyed = {"stats": {"2014-10-17": {"Flash": 1}}}
    assert stats_days(keyed) == [{"date": "2014-10-17", "Flash": 1}]
    assert stats_days(DOCS_PLAYERS_DAYS) == DOCS_PLAYERS_DAYS  # a bare list of days


def test_listed_items_reads_the_docs_envelope_or_a_bare_list() -> None:
    assert listed_items(DOCS_SLICES, "data_slices") == DOCS_SLICES["data_slices"]
    assert listed_items(DOCS_SLICES["data_slices"], "data_slices") == DOCS_SLICES["data_slices"]
    assert listed_items({"status": "Ok"}, "servers") == []
    assert listed_items({"servers": ["not-an-object", {"id": "s"}]}, "servers") == [{"id": "s"}]


# --- daily stats names ------------------------------------------------------------------------


def test_daily_stats_get_readable_names_and_unknown_metrics_are_kept() -> None:
    day = {
        "viewers": 10, "hls_viewers": 7, "rtmp_viewers": 3, "date": "2014-10-17", "total_view_time": 600,
        "bytes_out": 5000, "bytes_in": 100, "duration_less_1_min": 4, "duration_more_60_min": 1,
        "peak_bandwidth": 123,
    }  # fmt: skip
    row = readable_daily_stats(day)
    assert set(row) == {"date", *DAILY_STATS_COLUMNS, "other_metrics"}
    assert row["date"] == "2014-10-17"
    assert (row["viewers"], row["viewers_hls"], row["viewers_rtmp"]) == (10, 7, 3)
    assert (row["bytes_sent"], row["bytes_received"], row["total_view_time"]) == (5000, 100, 600)
    assert (row["views_under_1_min"], row["views_over_60_min"]) == (4, 1)
    assert row["viewers_webrtc"] is None  # left out by the API: unknown, not zero
    assert row["other_metrics"] == {"peak_bandwidth": 123}


def test_other_spellings_of_a_metric_land_in_the_same_column() -> None:
    row = readable_daily_stats({"date": "2014-10-17", "Viewers-HLS": 5, "MPEGDASH_viewers": 2, "Traffic Out": 9})
    assert (row["viewers_hls"], row["viewers_mpeg_dash"], row["bytes_sent"]) == (5, 2, 9)
    assert row["other_metrics"] is None


def test_view_time_may_be_fractional_but_counts_must_be_whole() -> None:
    row = readable_daily_stats({"date": "2014-10-17", "total_view_time": 12.5, "viewers": 2.5, "bytes_out": "7"})
    assert (row["total_view_time"], row["viewers"], row["bytes_sent"]) == (12.5, None, 7)
    assert row["other_metrics"] == {"viewers": 2.5}


def test_a_null_metric_is_its_column_null_not_another_metric() -> None:
    row = readable_daily_stats({"date": "2014-10-17", "viewers": None, "bytes_out": 7})
    assert (row["viewers"], row["bytes_sent"], row["other_metrics"]) == (None, 7, None)


def test_a_second_spelling_of_a_filled_column_is_kept_aside_not_lost() -> None:
    row = readable_daily_stats({"date": "2014-10-17", "bytes_out": 1, "bytes_sent": 2})
    assert row["bytes_sent"] == 1
    assert row["other_metrics"] == {"bytes_sent": 2}


# --- slices, servers, errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_slice", "expected"),
    [
        ({"id": "a", "server_ids": ["s1", "s2"]}, ["s1", "s2"]),
        ({"id": "a", "servers": [{"id": "s1", "name": "x"}, "s2"]}, ["s1", "s2"]),
        ({"id": "a", "server_ids": []}, []),
        ({"id": "a"}, None),
    ],
)
def test_server_ids_of_a_slice(data_slice: dict, expected: list[str] | None) -> None:
    assert server_ids_of(data_slice) == expected


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ({"status": "Ok", "stats": []}, None),
        ({"status": "ok"}, None),
        ({"stats": []}, None),
        ([], None),
        ({"status": "error", "description": "Data slice not found"}, "Data slice not found"),
        ({"status": "Error", "message": "Wrong dates"}, "Wrong dates"),
        ({"status": "failed"}, "status 'failed', no description"),
    ],
)
def test_status_error_description(body: object, description: str | None) -> None:
    assert status_error_description(body) == description


def test_request_summary_leaves_the_credentials_out() -> None:
    url = f"{BASE}/players_stats?client_id=c&api_key=k&from=2014-10-01&to=2014-10-31&data_slice={SLICE}"
    assert request_summary(url) == f"from=2014-10-01, to=2014-10-31, data_slice={SLICE}"


def test_quota_errors_are_recognised_by_their_wording() -> None:
    assert mentions_quota("API requests limit exceeded")
    assert not mentions_quota("Data slice not found")


def test_whole_day_windows_cover_the_days_both_ends_included() -> None:
    first, last = dt.date(2024, 1, 1), dt.date(2024, 1, 10)
    assert [first_and_last_day(w) for w in whole_day_windows(first, last, None)] == [(first, last)]
    pieces = [first_and_last_day(w) for w in whole_day_windows(first, last, 4)]
    assert pieces == [
        (dt.date(2024, 1, 1), dt.date(2024, 1, 4)),
        (dt.date(2024, 1, 5), dt.date(2024, 1, 8)),
        (dt.date(2024, 1, 9), dt.date(2024, 1, 10)),
    ]
    assert [first_and_last_day(w) for w in whole_day_windows(first, first, 4)] == [(first, first)]
    assert list(whole_day_windows(last, first, None)) == []


def test_split_known_fields_keeps_the_rest() -> None:
    assert split_known_fields({"id": 1, "name": "n", "ip": "x"}, ("id", "name")) == ({"id": 1, "name": "n"}, {"ip": "x"})
    assert split_known_fields({"id": 1}, ("id", "name")) == ({"id": 1}, None)


# --- the tap against requests-mock -----------------------------------------------------------


def query_of(request: t.Any) -> dict[str, str]:  # noqa: ANN401
    return {name: values[-1] for name, values in parse_qs(urlsplit(request.url).query).items()}


def mock_api(requests_mock: rm.Mocker, *, players: list | None = None, daily: list | None = None) -> None:
    requests_mock.get(f"{BASE}/data_slices", json=DOCS_SLICES)
    requests_mock.get(f"{BASE}/server", json={"status": "Ok", "servers": [{"id": "srv1", "name": "edge-1"}]})
    requests_mock.get(f"{BASE}/players_stats", json={"status": "Ok", "stats": DOCS_PLAYERS_DAYS if players is None else players})
    requests_mock.get(f"{BASE}/devices_stats", json={"status": "Ok", "stats": DOCS_DEVICES_DAYS})
    requests_mock.get(f"{BASE}/daily_stats", json={"status": "Ok", "stats": daily or []})


def stats_calls(requests_mock: rm.Mocker, route: str) -> list[dict[str, str]]:
    return [query_of(r) for r in requests_mock.request_history if urlsplit(r.url).path == f"/v1/{route}"]


def test_credentials_travel_in_the_query_string_of_every_call(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    run_sync(TapWMSPanel, CONFIG)
    assert requests_mock.call_count == 2 + 3 * 2
    for request in requests_mock.request_history:
        query = query_of(request)
        assert (query["client_id"], query["api_key"]) == ("unit-client-id", "unit-api-key")
        assert "unit-api-key" not in str(request.headers)


def test_one_call_per_slice_and_stream_asks_for_the_whole_range(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    result = run_sync(TapWMSPanel, CONFIG)
    for route in ("players_stats", "devices_stats", "daily_stats"):
        calls = stats_calls(requests_mock, route)
        assert [(c["data_slice"], c["from"], c["to"]) for c in calls] == [
            (SLICE, "2014-10-01", "2014-10-31"),
            (OTHER_SLICE, "2014-10-01", "2014-10-31"),
        ]
        assert all("server" not in c for c in calls)
    assert len(result.records["players_stats"]) == 2 * 8
    assert {r["data_slice_id"] for r in result.records["players_stats"]} == {SLICE, OTHER_SLICE}


def test_the_data_slice_listing_asks_for_server_ids(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    result = run_sync(TapWMSPanel, CONFIG)
    assert stats_calls(requests_mock, "data_slices")[0]["show_servers"] == "true"
    assert result.records["data_slices"][0] == {"data_slice_id": SLICE, "name": "Full data slice", "server_ids": None}
    assert result.records["servers"] == [{"server_id": "srv1", "name": "edge-1", "attributes": None}]


def test_server_id_filters_players_and_devices_but_not_daily_stats(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    result = run_sync(TapWMSPanel, {**CONFIG, "server_id": "srv1"})
    assert {c.get("server") for c in stats_calls(requests_mock, "players_stats")} == {"srv1"}
    assert {c.get("server") for c in stats_calls(requests_mock, "devices_stats")} == {"srv1"}
    assert {c.get("server") for c in stats_calls(requests_mock, "daily_stats")} == {None}
    assert {r["server_id"] for r in result.records["players_stats"]} == {"srv1"}


def test_days_outside_the_asked_range_are_not_emitted(requests_mock: rm.Mocker) -> None:
    stray = [{"date": "2014-09-30", "Flash": 1}, {"date": "2014-10-02", "Flash": 2}, {"date": "2014-11-01", "Flash": 3}]
    mock_api(requests_mock, players=stray)
    result = run_sync(TapWMSPanel, {**CONFIG, "data_slice_ids": [SLICE]})
    assert [r["date"] for r in result.records["players_stats"]] == ["2014-10-02"]


def test_without_end_date_the_range_ends_today(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    config = {k: v for k, v in CONFIG.items() if k != "end_date"}
    run_sync(TapWMSPanel, {**config, "data_slice_ids": [SLICE]})
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert {c["to"] for c in stats_calls(requests_mock, "daily_stats")} == {today}


def test_the_bookmark_less_lookback_days_is_where_the_next_call_starts(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    state = {
        "bookmarks": {
            "players_stats": {
                "partitions": [{"context": {"data_slice_id": SLICE}, "replication_key": "date", "replication_key_value": "2014-10-20"}]
            }
        }
    }
    result = run_sync(TapWMSPanel, {**CONFIG, "data_slice_ids": [SLICE], "lookback_days": 3}, state=state)
    assert [c["from"] for c in stats_calls(requests_mock, "players_stats")] == ["2014-10-17"]
    assert [c["from"] for c in stats_calls(requests_mock, "devices_stats")] == ["2014-10-01"]  # no bookmark yet
    final = result.final_state["bookmarks"]["players_stats"]["partitions"][0]
    assert final["replication_key_value"] == "2014-10-20"


def test_http_200_with_status_error_stops_with_its_description(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    requests_mock.get(f"{BASE}/players_stats", json={"status": "error", "description": "Period is too long"})
    with pytest.raises(APIRequestError) as failure:
        run_sync(TapWMSPanel, CONFIG)
    message = str(failure.value)
    assert "Period is too long" in message
    assert f"data_slice={SLICE}, from=2014-10-01, to=2014-10-31" in message
    assert "`max_days_per_request`" in message
    assert "unit-api-key" not in message and "unit-client-id" not in message
    assert len(stats_calls(requests_mock, "players_stats")) == 1  # not retried: it costs quota


def test_a_day_without_a_date_fails_the_sync_and_the_slice_bookmark_stays(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock, players=[*DOCS_PLAYERS_DAYS, {"Flash": 1}])
    writer = CapturingWriter()
    tap = TapWMSPanel(config={**CONFIG, "data_slice_ids": [SLICE]}, message_writer=writer)
    with pytest.raises(APIRequestError, match=r"/players_stats with a day object without a readable `date`.*format has changed"):
        tap.sync_all()
    rows = [m for m in writer.messages if m["type"] == "RECORD" and m["stream"] == "players_stats"]
    assert len(rows) == 8  # the days before it (a re-run reads them again: the bookmark stayed)
    states = [m["value"] for m in writer.messages if m["type"] == "STATE"]
    assert all("players_stats" not in state.get("bookmarks", {}) for state in states)


def test_a_day_that_is_not_valid_json_fails_the_sync_naming_it(requests_mock: rm.Mocker) -> None:
    # The body holds together (so its days are decoded one at a time), but one day does not parse:
    # that is found when the day is reached, and stops the sync like any unreadable day.
    body = b'{"status": "Ok", "stats": [{"date": "2014-10-17", "Flash": 3}, {"date": "2014-10-20", "Flash": tru}]}'
    mock_api(requests_mock)
    requests_mock.get(f"{BASE}/players_stats", content=body)
    with pytest.raises(APIRequestError, match=r"/players_stats with an item that is not valid JSON .*Flash"):
        run_sync(TapWMSPanel, {**CONFIG, "data_slice_ids": [SLICE]})


@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "Ok", "stats": [{"date": "2014-10-17", "Flash": 3}, {"date": "2014-10-20", "Fl',  # cut short
        b'{"status": "Ok", "stats": [{"date": "2014-10-17", "Flash": 3},]}',  # a trailing comma
    ],
)
def test_a_body_that_does_not_hold_together_is_invalid_json_and_retried(requests_mock: rm.Mocker, body: bytes) -> None:
    mock_api(requests_mock)
    requests_mock.get(f"{BASE}/players_stats", content=body)
    with pytest.raises(APIUnavailableError, match="not valid JSON.*gave up after 2 tries"):
        run_sync(TapWMSPanel, {**CONFIG, "data_slice_ids": [SLICE], "max_tries": 2, "backoff_base_seconds": 0})
    assert len(stats_calls(requests_mock, "players_stats")) == 2


def test_stats_days_are_decoded_one_at_a_time_when_the_body_allows() -> None:
    stream = TapWMSPanel(config=CONFIG).streams["players_stats"]
    # The call being read, as `_read_days` notes it before the answer is parsed.
    stream._reading = ("2014-10-01", "2014-10-31", {"data_slice_id": SLICE})  # noqa: SLF001
    response = requests.Response()
    response.status_code = 200
    response._content = orjson.dumps({"status": "Ok", "stats": DOCS_PLAYERS_DAYS})  # noqa: SLF001
    stream.validate_response_content(response)
    days = stream.days_of(response)
    assert isinstance(days, SplitBody) and len(days) == 2  # not a list: decoded as taken
    assert not hasattr(response, "_taps_common_json")  # the body was never decoded whole
    rows = list(pivoted_days_to_long_rows(DOCS_PLAYERS_DAYS, "player", {"data_slice_id": SLICE}))
    assert list(stream.parse_response(response)) == rows
    # A body keyed by date, or otherwise not of flat days, is decoded whole and read the same.
    keyed = requests.Response()
    keyed.status_code = 200
    keyed._content = orjson.dumps({"status": "Ok", "stats": {"2014-10-17": {"Flash": 1}}})  # noqa: SLF001
    stream.validate_response_content(keyed)
    assert list(stream.parse_response(keyed)) == [
        {"date": "2014-10-17", "player": "Flash", "connections": 1, "data_slice_id": SLICE}
    ]


def test_a_quota_error_says_when_calls_are_allowed_again(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    requests_mock.get(f"{BASE}/data_slices", json={"status": "error", "description": "API requests limit exceeded"})
    with pytest.raises(APIRequestError, match="15,000 calls per account per 24 hours"):
        run_sync(TapWMSPanel, CONFIG)


def test_403_names_both_settings_and_the_ip_whitelist_after_one_call(requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE}/data_slices", status_code=403, text="Forbidden")
    with pytest.raises(CredentialsError) as failure:
        run_sync(TapWMSPanel, CONFIG)
    message = str(failure.value)
    assert "`client_id`" in message and "`api_key`" in message and "whitelist" in message
    assert requests_mock.call_count == 1


def test_data_slice_ids_restrict_the_slices_read(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    result = run_sync(TapWMSPanel, {**CONFIG, "data_slice_ids": [OTHER_SLICE]})
    assert [r["data_slice_id"] for r in result.records["data_slices"]] == [OTHER_SLICE]
    assert {c["data_slice"] for c in stats_calls(requests_mock, "daily_stats")} == {OTHER_SLICE}


def test_a_data_slice_the_credentials_cannot_see_stops_the_sync_naming_it(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    with pytest.raises(SettingsError, match="nope"):
        run_sync(TapWMSPanel, {**CONFIG, "data_slice_ids": [SLICE, "nope"]})
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"api_key": None}, "api_key"),
        ({"client_id": None}, "client_id"),
        ({"api_key": "  "}, "api_key"),
        ({"start_date": "last monday"}, "start_date"),
        ({"start_date": None}, "start_date"),
        ({"end_date": "2014-09-30"}, "end_date"),
        ({"lookback_days": -1}, "lookback_days"),
        ({"max_days_per_request": 0}, "max_days_per_request"),
        ({"data_slice_ids": []}, "data_slice_ids"),
        ({"server_id": ""}, "server_id"),
    ],
)
def test_bad_settings_fail_before_any_request(requests_mock: rm.Mocker, change: dict, named: str) -> None:
    config = {k: v for k, v in {**CONFIG, **change}.items() if v is not None}
    with pytest.raises(ConfigValidationError) as failure:
        TapWMSPanel(config=config)
    assert any(named in error for error in failure.value.errors), failure.value.errors
    assert requests_mock.call_count == 0


def test_one_day_range_and_datetime_dates_are_accepted(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    config = {**CONFIG, "start_date": "2014-10-17T00:00:00Z", "end_date": "2014-10-17", "data_slice_ids": [SLICE]}
    result = run_sync(TapWMSPanel, config)
    assert [(c["from"], c["to"]) for c in stats_calls(requests_mock, "players_stats")] == [("2014-10-17", "2014-10-17")]
    assert {r["date"] for r in result.records["players_stats"]} == {"2014-10-17"}


def test_connection_test_is_one_call_to_data_slices(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    assert TapWMSPanel(config=CONFIG).check_connection() == "2 data slice(s)"
    assert [urlsplit(r.url).path for r in requests_mock.request_history] == ["/v1/data_slices"]

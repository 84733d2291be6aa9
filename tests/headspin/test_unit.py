"""tap-headspin pieces on their own: HeadSpin's quirks, settings, requests (requests-mock)."""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from zoneinfo import ZoneInfo

import pytest
from singer_sdk.exceptions import ConfigValidationError

from taps_common.errors import APIRequestError, CredentialsError, SettingsError
from tap_headspin.client import (
    bin_bounds_to_utc,
    event_passes_filters,
    local_day_range,
    local_time_to_utc,
    setting_instant,
    timezone_setting_error,
)
from tap_headspin.streams import bin_in_range, event_record, merge_metric_reports
from tap_headspin.tap import TapHeadSpin
from tests.helpers import run_sync

if t.TYPE_CHECKING:
    import requests_mock as rm

BASE = "https://api-dev.headspin.io"
UTC = dt.timezone.utc
LA = ZoneInfo("America/Los_Angeles")
CONFIG = {
    "api_token": "unit-token-1234",
    "start_date": "2025-01-01",
    "end_date": "2025-01-03",
    "max_tries": 2,
    "backoff_base_seconds": 0,
}
ANY_ROUTE = re.compile(r"/v\d/usage")
TEAM_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
V2_ROW = {
    "datetime": "2025-01-01 00:00:00",
    "start_time": "2025-01-01 00:00:00",
    "end_time": "2025-01-02 00:00:00",
    "total_time": 274974.12,
    "device_count": 1,
    "device_address": "abcd123@dev-us-mv-0-proxy-2.headspin.io",
    "unit": "second",
}


# --- quirks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01 00:00:00", dt.datetime(2025, 1, 1, 8, tzinfo=UTC)),
        ("2025-01-01", dt.datetime(2025, 1, 1, 8, tzinfo=UTC)),
        ("20250101", dt.datetime(2025, 1, 1, 8, tzinfo=UTC)),
        ("2025-07-01T00:00:00", dt.datetime(2025, 7, 1, 7, tzinfo=UTC)),
        ("2025-01-01T00:00:00+00:00", dt.datetime(2025, 1, 1, tzinfo=UTC)),
    ],
)
def test_report_times_are_wall_clock_times_of_the_timezone(text: str, expected: dt.datetime) -> None:
    assert local_time_to_utc(text, LA) == expected


def test_the_hour_repeated_when_clocks_go_back_is_told_apart_by_the_bin_end() -> None:
    first = bin_bounds_to_utc("2024-11-03 01:00:00", "2024-11-03 01:00:00", LA)
    second = bin_bounds_to_utc("2024-11-03 01:00:00", "2024-11-03 02:00:00", LA)
    assert first == (dt.datetime(2024, 11, 3, 8, tzinfo=UTC), dt.datetime(2024, 11, 3, 9, tzinfo=UTC))
    assert second == (dt.datetime(2024, 11, 3, 9, tzinfo=UTC), dt.datetime(2024, 11, 3, 10, tzinfo=UTC))
    # A 25-hour day is still one day.
    day = bin_bounds_to_utc("2024-11-03 00:00:00", "2024-11-04 00:00:00", LA)
    assert day[1] - day[0] == dt.timedelta(hours=25)


def test_days_asked_cover_the_range_in_the_zone() -> None:
    start = dt.datetime(2025, 1, 1, 9, tzinfo=UTC)  # 01:00 in Los Angeles
    assert local_day_range(start, dt.datetime(2025, 1, 3, 8, tzinfo=UTC), LA) == (
        dt.date(2025, 1, 1),
        dt.date(2025, 1, 3),
    )
    assert local_day_range(start, dt.datetime(2025, 1, 3, 9, tzinfo=UTC), LA) == (
        dt.date(2025, 1, 1),
        dt.date(2025, 1, 4),
    )


def test_settings_without_an_offset_are_read_in_the_timezone() -> None:
    assert setting_instant("2025-01-01", LA) == dt.datetime(2025, 1, 1, 8, tzinfo=UTC)
    assert setting_instant("2025-01-01T00:00:00Z", LA) == dt.datetime(2025, 1, 1, tzinfo=UTC)


def test_bins_kept_overlap_the_range_and_later_syncs_start_at_the_newest_bin() -> None:
    start, end = "2025-01-02T00:00:00.000000+00:00", "2025-01-05T00:00:00.000000+00:00"
    before = {"start_time": "2025-01-01T00:00:00.000000+00:00", "end_time": start}
    at_bookmark = {"start_time": start, "end_time": "2025-01-03T00:00:00.000000+00:00"}
    after_end = {"start_time": end, "end_time": "2025-01-06T00:00:00.000000+00:00"}
    assert [bin_in_range(b, start, end, first_sync=False) for b in (before, at_bookmark, after_end)] == [
        False,
        True,
        False,
    ]
    legacy_month = {"start_time": "2025-01-01T00:00:00.000000+00:00"}  # v1: no end_time
    assert bin_in_range(legacy_month, start, end, first_sync=True)
    assert not bin_in_range(legacy_month, start, end, first_sync=False)


def test_legacy_reports_merge_into_one_record_per_bin_and_group() -> None:
    reports = {
        "total_time": [
            {"datetime": "2025-01-01", "devicemodel": "Pixel 7", "total_time": 1.5, "unit": "hour"}
        ],
        "avg_session_length": [
            {"datetime": "2025-01-01", "devicemodel": "Pixel 7", "avg_session_length": 9.0, "unit": "minute"}
        ],
        "session_count": [{"datetime": "2025-01-01", "devicemodel": "Pixel 7", "session_count": 10}],
    }
    assert merge_metric_reports(reports, ("device_model",), "/v1/usage/devicemodel") == [
        (
            0,
            {
                "device_model": "Pixel 7",
                "datetime": "2025-01-01",
                "total_time": 1.5,
                "total_time_unit": "hour",
                "avg_session_length": 9.0,
                "avg_session_length_unit": "minute",
                "session_count": 10,
            },
        )
    ]


def test_legacy_label_seen_twice_is_the_repeated_hour() -> None:
    rows = [{"datetime": "2024-11-03 01:00:00", "country": "US", "session_count": n} for n in (3, 4)]
    merged = merge_metric_reports({"session_count": rows}, ("country",), "/v1/usage/country")
    assert [(fold, r["session_count"]) for fold, r in merged] == [(0, 3), (1, 4)]


def test_a_legacy_row_without_its_group_key_is_a_clear_error() -> None:
    with pytest.raises(APIRequestError, match="no device_model field"):
        merge_metric_reports(
            {"total_time": [{"datetime": "2025-01-01", "total_time": 1}]}, ("device_model",), "/v1/x"
        )


def test_event_records_keep_extra_fields_and_read_times_as_utc() -> None:
    raw = {
        "team": "Checkout QA",
        "device_address": "abcd123@proxy-2.headspin.io",
        "start_time": "2020-06-01 12:00:00",
        "end_time": "2020-06-01 12:30:00",
        "duration": 1800.5,
        "date": 20200601,
        "session_id": "s-1",
    }
    record = event_record(raw)
    assert record["device_id"] == "abcd123" and record["hostname"] == "proxy-2.headspin.io"
    assert record["start_time"] == "2020-06-01T12:00:00.000000+00:00"
    assert record["date"] == "20200601"
    assert record["extra_fields"] == {"session_id": "s-1"}
    assert record["user"] is None and record["team"] == "Checkout QA"


def test_events_are_dropped_only_when_a_field_they_carry_contradicts_a_filter() -> None:
    config = {"filter_user_emails": ["a@example.com"], "filter_team_names": ["QA"]}
    assert event_passes_filters({"email": "a@example.com"}, config)
    assert not event_passes_filters({"email": "b@example.com"}, config)
    assert event_passes_filters({"team": "QA"}, config)  # automation: no email to judge
    assert not event_passes_filters({"team": "Perf"}, config)
    assert not event_passes_filters({"extra_fields": {"team_id": "x"}}, {"filter_team_ids": [TEAM_ID]})


# --- settings: rejected before any request ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"bin_size": "fortnight"}, "bin_size"),
        ({"bin_size": "60"}, "bin_size"),
        ({"bin_size": 7000}, "divide a day"),
        ({"groupings": ["device", "planet"]}, "planet"),
        ({"groupings": []}, "groupings"),
        ({"filter_team_ids": ["not-a-uuid"]}, "filter_team_ids"),
        ({"filter_device_addresses": []}, "filter_device_addresses"),
        ({"filter_user_emails": []}, "filter_user_emails"),
        ({"events_window_days": 120}, "events_window_days"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2024-12-01"}, "end_date"),
        ({"api_token": None}, "api_token"),
    ],
)
def test_bad_settings_fail_before_any_request(requests_mock: rm.Mocker, change: dict, named: str) -> None:
    config = {k: v for k, v in {**CONFIG, **change}.items() if v is not None}
    with pytest.raises(ConfigValidationError) as failure:
        TapHeadSpin(config=config)
    assert any(named in error for error in failure.value.errors), failure.value.errors
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("bin_size", ["hour", "day", "week", "month", "3600", 21600, "86400"])
def test_good_bin_sizes_are_accepted(bin_size: str | int) -> None:
    TapHeadSpin(config={**CONFIG, "bin_size": bin_size})


def test_timezone_check_names_the_setting() -> None:
    assert timezone_setting_error("Europe/Berlin") is None
    assert "`timezone`" in (timezone_setting_error("Berlin") or "")


@pytest.mark.parametrize(
    ("change", "named"),
    [({"bin_size": "3600"}, "bin_size"), ({"filter_user_ids": [TEAM_ID]}, "filter_user_ids")],
)
def test_legacy_streams_refuse_what_v1_cannot_do_before_any_request(
    requests_mock: rm.Mocker, change: dict, named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        run_sync(TapHeadSpin, {**CONFIG, **change, "groupings": ["org", "country"]})
    assert requests_mock.call_count == 0


# --- requests -----------------------------------------------------------------------------------------


def mock_routes(requests_mock: rm.Mocker, v2_rows: list[dict] | None = None) -> None:
    requests_mock.get(f"{BASE}/v2/usage/event", json={"report": []})
    for grouping in ("org", "device", "team", "user", "host", "device_team", "device_user"):
        requests_mock.get(f"{BASE}/v2/usage/{grouping}", json={"report": v2_rows or []})


def test_v2_requests_carry_the_documented_parameters_and_repeated_filters(requests_mock: rm.Mocker) -> None:
    mock_routes(requests_mock)
    config = {
        **CONFIG,
        "timezone": "America/Los_Angeles",
        "bin_size": "week",
        "filter_team_names": ["Team A", "team B"],
        "filter_team_ids": [TEAM_ID],
        "filter_device_addresses": ["abcd123@host-1"],
    }
    run_sync(TapHeadSpin, config)
    request = next(h for h in requests_mock.request_history if h.path == "/v2/usage/device")
    assert request.headers["Authorization"] == "Bearer unit-token-1234"
    assert request.qs == {
        "start_date": ["2025-01-01"],
        "end_date": ["2025-01-03"],
        "bin_size": ["week"],
        "timezone": ["America/Los_Angeles"],
        "unit": ["second"],
        "format": ["json"],
        "filter_team_name": ["Team A", "team B"],
        "filter_team_id": [TEAM_ID],
        "filter_device_address": ["abcd123@host-1"],
    }
    assert "filter_team_name=Team+A&filter_team_name=team+B" in request.url


def test_without_end_date_the_report_runs_to_now(requests_mock: rm.Mocker) -> None:
    mock_routes(requests_mock)
    run_sync(TapHeadSpin, {k: v for k, v in CONFIG.items() if k != "end_date"} | {"groupings": ["org"]})
    request = next(h for h in requests_mock.request_history if h.path == "/v2/usage/org")
    assert "end_date" not in request.qs


def test_grouping_rows_become_records_in_utc(requests_mock: rm.Mocker) -> None:
    mock_routes(requests_mock, [V2_ROW])
    result = run_sync(TapHeadSpin, {**CONFIG, "timezone": "America/Los_Angeles", "groupings": ["device"]})
    (record,) = result.records["usage_device"]
    assert record == {
        "device_address": "abcd123@dev-us-mv-0-proxy-2.headspin.io",
        "start_time": "2025-01-01T08:00:00.000000+00:00",
        "end_time": "2025-01-02T08:00:00.000000+00:00",
        "datetime": "2025-01-01 00:00:00",
        "total_time": 274974.12,
        "device_count": 1,
        "unit": "second",
    }
    assert result.final_state["bookmarks"]["usage_device"]["replication_key_value"] == record["start_time"]


def test_legacy_streams_make_one_request_per_metric_with_filter_on_parameters(
    requests_mock: rm.Mocker,
) -> None:
    mock_routes(requests_mock)
    requests_mock.get(f"{BASE}/v1/usage/country", json={"report": []})
    run_sync(TapHeadSpin, {**CONFIG, "groupings": ["country"], "filter_user_emails": ["a@example.com"]})
    legacy = [h for h in requests_mock.request_history if h.path == "/v1/usage/country"]
    assert [h.qs["metric"][0] for h in legacy] == [
        "total_time",
        "avg_session_length",
        "session_count",
        "device_count",
        "user_count",
        "team_count",
    ]
    assert legacy[0].qs["start_date"] == ["20250101"] and legacy[0].qs["filter_on.user_email"] == [
        "a@example.com"
    ]
    assert "filter_user_email" not in legacy[0].qs


def test_a_refused_token_stops_after_one_request_naming_the_setting(requests_mock: rm.Mocker) -> None:
    requests_mock.get(ANY_ROUTE, status_code=401, json={"message": "Unauthorized"})
    with pytest.raises(CredentialsError, match="`api_token`"):
        run_sync(TapHeadSpin, CONFIG)
    assert requests_mock.call_count == 1


def test_a_body_without_a_report_is_a_clear_error(requests_mock: rm.Mocker) -> None:
    requests_mock.get(ANY_ROUTE, json={"status": "error", "message": "nope"})
    with pytest.raises(APIRequestError, match="without a `report`"):
        run_sync(TapHeadSpin, CONFIG)


def test_events_ask_whole_utc_days_and_keep_only_their_window(requests_mock: rm.Mocker) -> None:
    inside = {"device_id": "d1", "hostname": "h", "start_time": "2025-01-02 23:59:59", "duration": 1}
    on_end = {"device_id": "d1", "hostname": "h", "start_time": "2025-01-03 00:00:00", "duration": 1}
    before = {"device_id": "d1", "hostname": "h", "start_time": "2024-12-31 23:00:00", "duration": 1}
    mock_routes(requests_mock)
    requests_mock.get(f"{BASE}/v2/usage/event", json={"report": [before, inside, on_end]})
    result = run_sync(TapHeadSpin, {**CONFIG, "groupings": ["org"], "events_window_days": 119})
    assert [r["start_time"] for r in result.records["usage_events"]] == ["2025-01-02T23:59:59.000000+00:00"]
    request = requests_mock.request_history[0]
    assert request.qs["start_date"] == ["2025-01-01"] and request.qs["end_date"] == ["2025-01-03"]
    assert request.qs["timezone"] == ["UTC"]


def test_connection_test_asks_for_todays_organisation_usage(requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE}/v2/usage/org", json={"report": [V2_ROW]})
    assert TapHeadSpin(config=CONFIG).check_connection() == "1 bin(s) of usage today"
    assert requests_mock.request_history[0].qs["bin_size"] == ["day"]

"""tap-unleash pieces on their own: parsing, auth, paging, settings (requests-mock)."""

from __future__ import annotations

import re
import typing as t

import pytest
from singer_sdk.exceptions import ConfigValidationError

from taps_common.errors import CredentialsError, SettingsError
from tap_unleash.streams import session_started_at, zip_keyed_rows
from tap_unleash.tap import TapUnleash
from tests.helpers import run_sync

if t.TYPE_CHECKING:
    import requests_mock as rm

BASE = "https://api.unleashlive.com/v1"
KEYS = ["class_name", "count", "device_id", "frame_number", "model_id", "session_id", "source_file_name", "timestamp"]
ROW = ["person", 1, "Wabcdb35be35bb72", 110251, "starter-ai", "1597622730877", "W.mp4", "2020-08-17T02:08:49.000Z"]
CONFIG = {
    "access_token": "ul_pat_unit-token",
    "start_date": "2020-08-17T00:00:00Z",
    "end_date": "2020-08-18T00:00:00Z",
    "max_tries": 2,
    "backoff_base_seconds": 0,
}
ANALYTICS = re.compile(r"/v1/analytics/(W\w+)/(\d+)/(\d+)/(\d+)$")


def test_size_optimized_rows_are_zipped_with_the_keys_the_body_gives() -> None:
    body = {"keys": list(reversed(KEYS)), "total_num_pages": 1, "data": [list(reversed(ROW))]}
    assert list(zip_keyed_rows(body)) == [dict(zip(KEYS, ROW))]


def test_missing_data_gives_no_rows() -> None:
    assert list(zip_keyed_rows({"total_num_pages": 0})) == []


@pytest.mark.parametrize(
    ("session_id", "expected"),
    [("1597622730877", "2020-08-17T00:05:30.877000+00:00"), ("abc", None), ("159762273", None)],
)
def test_session_start_is_read_from_epoch_millisecond_ids_only(session_id: str, expected: str | None) -> None:
    assert session_started_at(session_id) == expected


def mock_analytics(requests_mock: rm.Mocker, rows_by_page: dict[int, list[list]], devices: list[str]) -> None:
    requests_mock.get(f"{BASE}/analytics/devices", json=devices)
    requests_mock.get(f"{BASE}/analytics/sessions", json=[])

    def answer(request: t.Any, context: t.Any) -> dict:  # noqa: ANN401
        page = int(ANALYTICS.search(request.path).group(4))
        return {"keys": KEYS, "total_num_pages": len(rows_by_page), "data": rows_by_page.get(page, [])}

    requests_mock.get(ANALYTICS, json=answer)


def test_analytics_pages_stop_at_total_num_pages(requests_mock: rm.Mocker) -> None:
    rows = {1: [ROW], 2: [[*ROW[:3], 110252, *ROW[4:]]]}
    mock_analytics(requests_mock, rows, ["Wabcdb35be35bb72"])
    result = run_sync(TapUnleash, CONFIG)
    analytics = result.records["analytics"]
    assert [r["frame_number"] for r in analytics] == [110251, 110252]
    assert analytics[0]["timestamp"] == "2020-08-17T02:08:49.000000+00:00"
    pages = [int(ANALYTICS.search(h.path).group(4)) for h in requests_mock.request_history if ANALYTICS.search(h.path)]
    assert pages == [1, 2]


def test_window_asks_one_millisecond_wider_and_keeps_only_its_own_records(requests_mock: rm.Mocker) -> None:
    at_end = [*ROW[:7], "2020-08-18T00:00:00.000Z"]  # belongs to the next window
    mock_analytics(requests_mock, {1: [ROW, at_end]}, ["Wabcdb35be35bb72"])
    result = run_sync(TapUnleash, CONFIG)
    assert len(result.records["analytics"]) == 1
    request = next(h for h in requests_mock.request_history if ANALYTICS.search(h.path))
    _, start_ms, end_ms, _ = ANALYTICS.search(request.path).groups()
    assert int(start_ms) == 1597622400000 - 1
    assert int(end_ms) == 1597708800000


def test_access_token_is_sent_as_bearer_and_preferred(requests_mock: rm.Mocker) -> None:
    mock_analytics(requests_mock, {1: []}, [])
    run_sync(TapUnleash, {**CONFIG, "api_key": "legacy-key"})
    headers = requests_mock.request_history[0].headers
    assert headers["Authorization"] == "Bearer ul_pat_unit-token"
    assert "x-api-key" not in headers


def test_api_key_is_sent_as_x_api_key(requests_mock: rm.Mocker) -> None:
    mock_analytics(requests_mock, {1: []}, [])
    config = {k: v for k, v in CONFIG.items() if k != "access_token"}
    run_sync(TapUnleash, {**config, "api_key": "legacy-key"})
    headers = requests_mock.request_history[0].headers
    assert headers["x-api-key"] == "legacy-key"
    assert "Authorization" not in headers


def test_expired_token_says_so_after_one_request(requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE}/analytics/devices", status_code=401, json={"message": "The incoming token has expired"})
    with pytest.raises(CredentialsError, match="expired.*access_token"):
        run_sync(TapUnleash, CONFIG)
    assert requests_mock.call_count == 1


def test_wrong_key_names_the_setting_in_use(requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE}/analytics/devices", status_code=403, json={"message": "Forbidden"})
    with pytest.raises(CredentialsError, match="`access_token`") as failure:
        run_sync(TapUnleash, CONFIG)
    assert "expired" not in str(failure.value)


def test_unknown_configured_device_stops_the_sync_naming_it(requests_mock: rm.Mocker) -> None:
    mock_analytics(requests_mock, {1: []}, ["Waaaa"])
    with pytest.raises(SettingsError, match="Wbbbb"):
        run_sync(TapUnleash, {**CONFIG, "device_ids": ["Waaaa", "Wbbbb"]})


def test_configured_devices_restrict_devices_and_analytics(requests_mock: rm.Mocker) -> None:
    mock_analytics(requests_mock, {1: []}, ["Waaaa", "Wbbbb"])
    result = run_sync(TapUnleash, {**CONFIG, "device_ids": ["Wbbbb"]})
    assert result.records["devices"] == [{"device_id": "Wbbbb"}]
    asked = {ANALYTICS.search(h.path).group(1) for h in requests_mock.request_history if ANALYTICS.search(h.path)}
    assert asked == {"Wbbbb"}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"access_token": None}, "access_token"),
        ({"device_ids": []}, "device_ids"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2020-08-16"}, "end_date"),
        ({"window_days": 0}, "window_days"),
    ],
)
def test_bad_settings_fail_before_any_request(requests_mock: rm.Mocker, change: dict, named: str) -> None:
    config = {k: v for k, v in {**CONFIG, **change}.items() if v is not None}
    with pytest.raises(ConfigValidationError) as failure:
        TapUnleash(config=config)
    assert any(named in error for error in failure.value.errors), failure.value.errors
    assert requests_mock.call_count == 0


def test_connection_test_reads_the_version_from_a_non_json_body(requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE}/analytics/version", text='{"1.0.1"}')
    assert TapUnleash(config=CONFIG).check_connection() == "1.0.1"

"""tap-openspace pieces on their own: each OpenSpace quirk, paging, errors and settings (requests-mock)."""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from urllib.parse import parse_qs, urlsplit

import pytest
from singer_sdk.exceptions import ConfigValidationError

from taps_common.errors import APIRequestError, CredentialsError
from taps_common.records import snake_case
from taps_common.timestamps import normalise_timestamp
from tap_openspace.client import (
    as_text,
    base_url,
    is_newest_first,
    page_records,
    read_floor,
    spring_page_is_last,
)
from tap_openspace.streams import membership_key
from tap_openspace.tap import TapOpenSpace
from tests.helpers import CapturingWriter, run_sync

if t.TYPE_CHECKING:
    import requests_mock as rm

US = "https://api.us.openspace.ai"
REPORTS = f"{US}/api/external/v1/reports"
KEY = "unit-test-openspace-key"
CONFIG = {"api_key": KEY, "max_tries": 2, "backoff_base_seconds": 0}
Body = dict | list


# --- the quirk functions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("videoStart", "video_start"),
        ("videoNumberOfFrames", "video_number_of_frames"),
        ("siteID", "site_id"),
        ("URLPath", "url_path"),
        ("id", "id"),
        ("week", "week"),
    ],
)
def test_field_names_become_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00.000000+00:00"),
        ("2024-05-01T12:00:00.25Z", "2024-05-01T12:00:00.250000+00:00"),
        ("2024-05-01T14:00:00.123+02:00", "2024-05-01T12:00:00.123000+00:00"),
        ("2024-05-01T12:00:00.5", "2024-05-01T12:00:00.500000+00:00"),  # no zone: UTC
        ("2024-05-01T12:00:00.123456789Z", "2024-05-01T12:00:00.123456+00:00"),  # nanoseconds
        (1714564800123, "2024-05-01T12:00:00.123000+00:00"),  # epoch milliseconds
        (1714564800, "2024-05-01T12:00:00.000000+00:00"),  # epoch seconds
        ("1714564800123", "2024-05-01T12:00:00.123000+00:00"),
        (None, None),
        ("", None),
    ],
)
def test_every_timestamp_reading_gives_the_one_utc_form(value: t.Any, expected: str | None) -> None:  # noqa: ANN401
    assert normalise_timestamp(value) == expected


@pytest.mark.parametrize("value", ["soon", "2024-13-01", [2024, 5, 1], True])
def test_what_is_not_a_timestamp_is_refused(value: t.Any) -> None:  # noqa: ANN401
    with pytest.raises(ValueError):
        normalise_timestamp(value)


@pytest.mark.parametrize(
    ("body", "page", "expected"),
    [
        ({"content": [1], "last": True, "totalPages": 9}, 0, True),  # `last` decides
        ({"content": [1], "last": False, "totalPages": 1}, 0, False),
        ({"content": [1], "totalPages": 3}, 1, False),  # no `last`: totalPages
        ({"content": [1], "totalPages": 3}, 2, True),
        ({"content": [], "totalPages": 0}, 0, True),
        ({"content": [1]}, 4, False),  # neither: only an empty page ends it
        ({"content": []}, 4, True),
        ([{"a": 1}], 0, True),  # a bare list is the whole report
    ],
)
def test_a_page_is_last_by_what_the_body_says(body: Body, page: int, expected: bool) -> None:
    assert spring_page_is_last(body, page) is expected


def test_page_records_accepts_spring_pages_and_bare_lists_only() -> None:
    assert page_records({"content": [{"a": 1}], "last": True}) == [{"a": 1}]
    assert page_records([{"a": 1}]) == [{"a": 1}]
    for body in ({"data": []}, {"content": None}, "text", None):
        with pytest.raises(ValueError):
            page_records(body)


@pytest.mark.parametrize(
    ("times", "after", "expected"),
    [
        (["2024-05-03", "2024-05-02", "2024-05-02", "2024-05-01"], None, True),
        (["2024-05-01", "2024-05-02"], None, False),
        (["2024-05-02"], "2024-05-02", True),  # a tie across pages
        (["2024-05-03"], "2024-05-02", False),  # newer than the page before
        ([], "2024-05-02", True),
    ],
)
def test_newest_first_order_is_checked_across_pages(times: list[str], after: str | None, expected: bool) -> None:
    assert is_newest_first(times, after) is expected


@pytest.mark.parametrize(
    ("bookmark", "start_date", "hours", "expected"),
    [
        (None, None, 0, None),
        (None, "2024-01-01", 5, "2024-01-01T00:00:00.000000+00:00"),  # no lookback before start_date
        ("2024-05-01T12:00:00.000000+00:00", None, 0, "2024-05-01T12:00:00.000000+00:00"),
        ("2024-05-01T12:00:00.000000+00:00", "2024-01-01", 3, "2024-05-01T09:00:00.000000+00:00"),
        ("2024-05-01T12:00:00.000000+00:00", "2024-05-01T10:00:00Z", 3, "2024-05-01T10:00:00.000000+00:00"),
    ],
)
def test_the_read_floor_is_the_bookmark_less_lookback_never_before_start_date(
    bookmark: str | None, start_date: str | None, hours: float, expected: str | None
) -> None:
    assert read_floor(bookmark, start_date, dt.timedelta(hours=hours)) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, US),
        ({"region": "eu"}, "https://api.eu.openspace.ai"),
        ({"region": "eu", "api_url": "http://127.0.0.1:9/"}, "http://127.0.0.1:9"),
        ({"api_url": "https://proxy.example/openspace/api/external/v1/"}, "https://proxy.example/openspace"),
    ],
)
def test_the_host_comes_from_region_unless_api_url_overrides_it(config: dict, expected: str) -> None:
    assert base_url(config) == expected


def test_membership_key_joins_user_org_and_site_ids() -> None:
    assert membership_key({"user_id": "u1", "org_id": "o1", "site_id": "s1", "role": "Editor"}) == "u1/o1/s1"
    assert membership_key({"user_id": "u1", "org_id": "o1", "site_id": None}) == "u1/o1/"
    assert membership_key({"user_id": "u1"}) == "u1//"


def test_ids_of_any_type_become_text() -> None:
    assert [as_text(42), as_text("a-1"), as_text(None)] == ["42", "a-1", None]


# --- a mocked API ----------------------------------------------------------------------------------


def spring(content: list[dict], page: int, total_pages: int) -> dict:
    """A Spring Data page body (without the fields the tap does not read)."""
    return {
        "content": content,
        "number": page,
        "size": 1000,  # what was asked, whatever was sent: the tap must not trust it
        "numberOfElements": len(content),
        "totalPages": total_pages,
        "last": page + 1 >= total_pages,
    }


def serve(requests_mock: rm.Mocker, report: str, pages: list[Body], base: str = REPORTS) -> None:
    """Answer `report` with `pages` by the `page` parameter; past the end an empty last page."""

    def answer(request: t.Any, context: t.Any) -> Body:  # noqa: ANN401
        page = int(parse_qs(urlsplit(request.url).query).get("page", ["0"])[0])
        return pages[page] if page < len(pages) else spring([], page, len(pages))

    requests_mock.get(f"{base}/{report}", json=answer)


def serve_reports(requests_mock: rm.Mocker, base: str = REPORTS, **reports: list[Body]) -> None:
    """Every report, empty unless given (keyword names use `_` for `-`)."""
    for report in ("360-videos", "sites", "memberships", "field-notes"):
        pages = reports.get(report.replace("-", "_").replace("360_videos", "videos"), [spring([], 0, 0)])
        serve(requests_mock, report, pages, base)


def asked(requests_mock: rm.Mocker, report: str) -> list[dict[str, list[str]]]:
    """The query of every request made for `report`, in order."""
    return [
        parse_qs(urlsplit(request.url).query)
        for request in requests_mock.request_history
        if urlsplit(request.url).path.endswith(f"/reports/{report}")
    ]


def video(video_id: str, start: str | None) -> dict:
    return {"videoId": video_id, "videoStart": start, "videoNumberOfFrames": 10, "siteName": "S", "week": 18}


def videos_state(bookmark: str) -> dict:
    return {"bookmarks": {"videos_360": {"replication_key": "video_start", "replication_key_value": bookmark}}}


# --- paging --------------------------------------------------------------------------------------


def test_paging_follows_last_not_the_size_asked(requests_mock: rm.Mocker) -> None:
    sites = [[{"siteId": f"s{page}{i}", "siteName": "x"} for i in range(2)] for page in range(3)]
    serve_reports(requests_mock, sites=[spring(content, page, 3) for page, content in enumerate(sites)])
    result = run_sync(TapOpenSpace, {**CONFIG, "page_size": 1000})
    assert [r["site_id"] for r in result.records["sites"]] == ["s00", "s01", "s10", "s11", "s20", "s21"]
    queries = asked(requests_mock, "sites")
    assert [q["page"] for q in queries] == [["0"], ["1"], ["2"]]  # from 0, nothing past the last
    assert all(q["size"] == ["1000"] for q in queries)


def test_paging_without_last_follows_total_pages_and_skips_no_empty_page(requests_mock: rm.Mocker) -> None:
    pages = [
        {"content": [{"id": 1}], "totalPages": 3},
        {"content": [], "totalPages": 3},
        {"content": [{"id": 3}], "totalPages": 3},
    ]
    serve_reports(requests_mock, field_notes=pages)
    result = run_sync(TapOpenSpace, CONFIG)
    assert [r["id"] for r in result.records["field_notes"]] == ["1", "3"]
    assert len(asked(requests_mock, "field-notes")) == 3


def test_a_bare_list_is_read_as_the_whole_report(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock, sites=[[{"siteId": 7, "siteName": "x"}]])
    result = run_sync(TapOpenSpace, CONFIG)
    assert [r["site_id"] for r in result.records["sites"]] == ["7"]
    assert len(asked(requests_mock, "sites")) == 1


# --- 360 videos, newest first ----------------------------------------------------------------------


NEWEST_FIRST_PAGES = [
    spring([video("n4", "2024-05-03T00:00:00Z"), video("n3", "2024-05-02T12:00:00Z")], 0, 5),
    spring([video("n2", "2024-05-02T06:00:00Z"), video("tie", "2024-05-02T00:00:00Z")], 1, 5),
    spring([video("old-at-bookmark", "2024-05-02T00:00:00Z"), video("o1", "2024-05-01T00:00:00Z")], 2, 5),
    spring([video("o2", "2024-04-30T00:00:00Z"), video("o3", "2024-04-29T00:00:00Z")], 3, 5),
    spring([video("o4", "2024-04-28T00:00:00Z")], 4, 5),
]


def test_first_sync_asks_newest_first_reads_every_page_and_bookmarks_the_newest(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock, videos=NEWEST_FIRST_PAGES)
    result = run_sync(TapOpenSpace, CONFIG)
    assert len(result.records["videos_360"]) == 9
    queries = asked(requests_mock, "360-videos")
    assert [q["page"] for q in queries] == [["0"], ["1"], ["2"], ["3"], ["4"]]
    assert all(q["sort"] == ["videoStart,DESC"] for q in queries)
    bookmark = result.final_state["bookmarks"]["videos_360"]["replication_key_value"]
    assert bookmark == "2024-05-03T00:00:00.000000+00:00"


def test_incremental_sync_stops_at_the_page_older_than_the_bookmark_and_rereads_its_ties(
    requests_mock: rm.Mocker,
) -> None:
    serve_reports(requests_mock, videos=NEWEST_FIRST_PAGES)
    result = run_sync(TapOpenSpace, CONFIG, state=videos_state("2024-05-02T00:00:00.000000+00:00"))
    assert [r["video_id"] for r in result.records["videos_360"]] == ["n4", "n3", "n2", "tie", "old-at-bookmark"]
    assert [q["page"] for q in asked(requests_mock, "360-videos")] == [["0"], ["1"], ["2"]]
    assert result.final_state["bookmarks"]["videos_360"]["replication_key_value"] == "2024-05-03T00:00:00.000000+00:00"


def test_start_date_ends_the_first_sync_early(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock, videos=NEWEST_FIRST_PAGES)
    result = run_sync(TapOpenSpace, {**CONFIG, "start_date": "2024-05-02T06:00:00Z"})
    assert [r["video_id"] for r in result.records["videos_360"]] == ["n4", "n3", "n2"]
    assert len(asked(requests_mock, "360-videos")) == 2


def test_lookback_rereads_hours_before_the_bookmark(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock, videos=NEWEST_FIRST_PAGES)
    state = videos_state("2024-05-02T00:00:00.000000+00:00")
    result = run_sync(TapOpenSpace, {**CONFIG, "lookback_hours": 24}, state=state)
    assert [r["video_id"] for r in result.records["videos_360"]][-2:] == ["old-at-bookmark", "o1"]
    assert len(asked(requests_mock, "360-videos")) == 4


def test_a_server_that_ignores_sort_is_read_in_full_with_a_warning(
    requests_mock: rm.Mocker, caplog: pytest.LogCaptureFixture
) -> None:
    captures = [record for page in NEWEST_FIRST_PAGES for record in page["content"]][::-1]
    oldest_first = [spring(captures[first : first + 2], first // 2, 5) for first in range(0, 9, 2)]
    serve_reports(requests_mock, videos=oldest_first)
    with caplog.at_level(logging.WARNING):
        result = run_sync(TapOpenSpace, CONFIG, state=videos_state("2024-05-02T00:00:00.000000+00:00"))
    assert sorted(r["video_id"] for r in result.records["videos_360"]) == sorted(
        ["n4", "n3", "n2", "tie", "old-at-bookmark"]
    )
    assert len(asked(requests_mock, "360-videos")) == 5
    assert "did not return 360-videos newest first" in caplog.text


def test_a_capture_without_a_start_is_emitted_and_neither_stops_paging_nor_moves_the_bookmark(
    requests_mock: rm.Mocker,
) -> None:
    pages = [
        spring([video("pending", None), video("n1", "2024-05-03T00:00:00Z")], 0, 2),
        spring([video("o1", "2024-05-01T00:00:00Z")], 1, 2),
    ]
    serve_reports(requests_mock, videos=pages)
    result = run_sync(TapOpenSpace, CONFIG, state=videos_state("2024-05-02T00:00:00.000000+00:00"))
    assert [r["video_id"] for r in result.records["videos_360"]] == ["pending", "n1"]
    assert result.final_state["bookmarks"]["videos_360"]["replication_key_value"] == "2024-05-03T00:00:00.000000+00:00"


def test_an_interrupted_read_keeps_the_old_bookmark(requests_mock: rm.Mocker) -> None:
    pages: list[Body] = NEWEST_FIRST_PAGES[:1]
    serve_reports(requests_mock, videos=pages)
    requests_mock.get(f"{REPORTS}/360-videos?page=1", status_code=400, json={"status": 400, "error": "Bad Request"})
    writer = CapturingWriter()
    state = videos_state("2024-05-02T00:00:00.000000+00:00")
    tap = TapOpenSpace(config=CONFIG, state=state, message_writer=writer)
    with pytest.raises(APIRequestError):
        tap.sync_all()
    assert tap.state["bookmarks"]["videos_360"]["replication_key_value"] == "2024-05-02T00:00:00.000000+00:00"
    emitted = [
        m["record"]["video_id"] for m in writer.messages if m["type"] == "RECORD" and m["stream"] == "videos_360"
    ]
    assert emitted == ["n4", "n3"]
    for message in writer.messages:
        if message["type"] == "STATE" and "videos_360" in message["value"]["bookmarks"]:
            bookmark = message["value"]["bookmarks"]["videos_360"].get("replication_key_value")
            assert bookmark == "2024-05-02T00:00:00.000000+00:00"


def test_records_are_snake_case_with_ids_and_labels_as_text(
    requests_mock: rm.Mocker, caplog: pytest.LogCaptureFixture
) -> None:
    row = {**video("v1", "2024-05-01T12:00:00+02:00"), "siteId": 12, "userEmail": "a@b.c", "stitchQuality": "good"}
    serve_reports(requests_mock, videos=[spring([row], 0, 1)])
    with caplog.at_level(logging.WARNING):
        result = run_sync(TapOpenSpace, CONFIG)
    assert result.records["videos_360"] == [
        {
            "video_id": "v1",
            "video_start": "2024-05-01T10:00:00.000000+00:00",
            "video_number_of_frames": 10,
            "site_id": "12",
            "site_name": "S",
            "user_email": "a@b.c",
            "week": "18",
        }
    ]
    assert "stitch_quality" in caplog.text  # a new report column is named, not silently lost


def test_an_unreadable_timestamp_outside_the_key_becomes_null_with_a_warning(
    requests_mock: rm.Mocker, caplog: pytest.LogCaptureFixture
) -> None:
    serve_reports(requests_mock, sites=[spring([{"siteId": "s1", "siteCreated": "last week"}], 0, 1)])
    with caplog.at_level(logging.WARNING):
        result = run_sync(TapOpenSpace, CONFIG)
    assert result.records["sites"][0]["site_created"] is None
    assert "last week" in caplog.text


# --- memberships per org -----------------------------------------------------------------------------


def test_org_ids_read_memberships_one_org_at_a_time(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock)

    def by_org(request: t.Any, context: t.Any) -> dict:  # noqa: ANN401
        org = parse_qs(urlsplit(request.url).query)["orgs"][0]
        rows = [
            {"userId": f"u-{org}", "role": "Editor", "siteId": "s1"},
            {"userId": "u9", "orgId": "stated", "role": "Org Admin"},
        ]
        return spring(rows, 0, 1)

    requests_mock.get(f"{REPORTS}/memberships", json=by_org)
    result = run_sync(TapOpenSpace, {**CONFIG, "org_ids": ["o1", "o2"]})
    assert [q["orgs"] for q in asked(requests_mock, "memberships")] == [["o1"], ["o2"]]
    keys = [r["membership_key"] for r in result.records["memberships"]]
    assert keys == ["u-o1/o1/s1", "u9/stated/", "u-o2/o2/s1", "u9/stated/"]


def test_memberships_without_org_ids_send_no_orgs(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock, memberships=[spring([{"userId": "u1", "role": "Viewer"}], 0, 1)])
    result = run_sync(TapOpenSpace, CONFIG)
    assert "orgs" not in asked(requests_mock, "memberships")[0]
    assert result.records["memberships"][0]["membership_key"] == "u1//"


# --- where requests go, and errors -------------------------------------------------------------------


def test_key_travels_in_the_api_key_header_to_the_regions_host(requests_mock: rm.Mocker) -> None:
    eu = "https://api.eu.openspace.ai/api/external/v1/reports"
    serve_reports(requests_mock, base=eu)
    run_sync(TapOpenSpace, {**CONFIG, "region": "eu"})
    assert requests_mock.call_count == 4
    assert all(request.headers["api-key"] == KEY for request in requests_mock.request_history)


def test_api_url_overrides_region(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock, base="http://proxy.test/api/external/v1/reports")
    run_sync(TapOpenSpace, {**CONFIG, "region": "eu", "api_url": "http://proxy.test"})
    assert {urlsplit(r.url).netloc for r in requests_mock.request_history} == {"proxy.test"}


SPRING_401 = {
    "timestamp": "2024-05-01T12:00:00.000+00:00",
    "status": 401,
    "error": "Unauthorized",
    "message": "Invalid API key",
    "path": "/api/external/v1/reports/360-videos",
}


def test_a_refused_key_is_not_retried_and_names_api_key_and_region(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock)
    requests_mock.get(f"{REPORTS}/360-videos", status_code=401, json=SPRING_401)
    with pytest.raises(CredentialsError) as failure:
        run_sync(TapOpenSpace, CONFIG)
    message = str(failure.value)
    assert "`api_key`" in message and "Unauthorized: Invalid API key" in message
    assert "api.us.openspace.ai" in message and "`region`" in message
    assert len(asked(requests_mock, "360-videos")) == 1


def test_a_key_without_the_usage_api_says_so(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock)
    body = {**SPRING_401, "status": 403, "error": "Forbidden", "message": "Not licensed"}
    requests_mock.get(f"{REPORTS}/360-videos", status_code=403, json=body)
    with pytest.raises(CredentialsError, match=r"HTTP 403: Forbidden: Not licensed.*Usage API product.*`api_key`"):
        run_sync(TapOpenSpace, CONFIG)


def test_a_404_names_api_url(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock)
    body = {"status": 404, "error": "Not Found", "message": "No static resource", "path": "/x"}
    requests_mock.get(f"{REPORTS}/360-videos", status_code=404, json=body)
    with pytest.raises(APIRequestError, match=r"HTTP 404 .*Not Found: No static resource.*`api_url`"):
        run_sync(TapOpenSpace, CONFIG)


def test_memberships_that_need_orgs_name_org_ids(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock)
    body = {"status": 400, "error": "Bad Request", "message": "Required request parameter 'orgs' is not present"}
    requests_mock.get(f"{REPORTS}/memberships", status_code=400, json=body)
    with pytest.raises(APIRequestError, match="Set `org_ids`"):
        run_sync(TapOpenSpace, CONFIG)


def test_a_body_that_is_not_a_report_names_api_url(requests_mock: rm.Mocker) -> None:
    serve_reports(requests_mock)
    requests_mock.get(f"{REPORTS}/360-videos", json={"status": "UP"})
    with pytest.raises(APIRequestError, match=r"not a report.*`api_url`"):
        run_sync(TapOpenSpace, CONFIG)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"api_key": None}, "api_key"),
        ({"api_key": "  "}, "api_key"),
        ({"region": "ap"}, "region"),
        ({"api_url": "api.us.openspace.ai"}, "api_url"),
        ({"page_size": 0}, "page_size"),
        ({"start_date": "last monday"}, "start_date"),
        ({"lookback_hours": -1}, "lookback_hours"),
        ({"org_ids": []}, "org_ids"),
        ({"org_ids": ["o1", ""]}, "org_ids"),
    ],
)
def test_bad_settings_fail_before_any_request(requests_mock: rm.Mocker, change: dict, named: str) -> None:
    config = {k: v for k, v in {**CONFIG, **change}.items() if v is not None}
    with pytest.raises(ConfigValidationError) as failure:
        TapOpenSpace(config=config)
    assert any(named in error for error in failure.value.errors), failure.value.errors
    assert requests_mock.call_count == 0


def test_connection_test_reads_one_site(requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{REPORTS}/sites", json={**spring([{"siteId": "s1"}], 0, 7), "totalElements": 7})
    assert TapOpenSpace(config=CONFIG).check_connection() == "7 site(s) visible to this key"
    (request,) = requests_mock.request_history
    assert parse_qs(urlsplit(request.url).query) == {"page": ["0"], "size": ["1"]}

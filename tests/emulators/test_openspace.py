"""The OpenSpace emulator over real loopback HTTP, checked against the vendor docs and its ground truth."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from emulators import emulator_class
from emulators.framework import EmulatorServer, Fault
from emulators.openspace import API_PREFIX, REPORTS, TIMESTAMP_FORMATS, OpenSpaceEmulator

ANCHOR = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
KEY = {"api-key": "test-openspace-key"}
CAP = 30  # the server's cap on `size` in these tests
SPRING_PAGE_FIELDS = {
    "content",
    "pageable",
    "last",
    "totalPages",
    "totalElements",
    "first",
    "size",
    "number",
    "sort",
    "numberOfElements",
    "empty",
}

Served = tuple[OpenSpaceEmulator, EmulatorServer]


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start an OpenSpace emulator with the given options (test defaults otherwise)."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> Served:  # noqa: ANN401
        app = OpenSpaceEmulator(**{"anchor": ANCHOR, "max_page_size": CAP, "seed": 4, **options})
        servers.append(EmulatorServer(app).start())
        return app, servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as client:
        client.headers.update(KEY)
        yield client


def report_url(server: EmulatorServer, report: str) -> str:
    return f"{server.url}{API_PREFIX}{report}"


def read_all(session: requests.Session, url: str, **params: Any) -> list[dict[str, Any]]:  # noqa: ANN401
    """Every page of a report, checking the Spring page contract on the way."""
    records: list[dict[str, Any]] = []
    page = 0
    while True:
        body = session.get(url, params={**params, "page": page}).json()
        assert set(body) == SPRING_PAGE_FIELDS
        assert body["number"] == page and body["first"] == (page == 0)
        assert body["numberOfElements"] == len(body["content"]) <= body["size"]
        records.extend(body["content"])
        if body["last"]:
            assert page + 1 >= body["totalPages"]
            assert len(records) == body["totalElements"]
            return records
        page += 1


def instant(value: str | int) -> datetime:
    """Any served time as an aware datetime, read without the tap's code."""
    if isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# Authentication -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "Unauthorized"),
        ({"api-key": ""}, 401, "Unauthorized"),
        ({"api-key": "wrong"}, 401, "Unauthorized"),
        ({"Authorization": "Bearer test-openspace-key"}, 401, "Unauthorized"),
        ({"api-key": "no-usage-api-key"}, 403, "Forbidden"),
    ],
)
@pytest.mark.parametrize("path", [f"{API_PREFIX}sites", f"{API_PREFIX}360-videos", "/nowhere"])
def test_bad_keys_get_spring_boot_error_bodies(
    serve: Callable[..., Served], headers: dict[str, str], status: int, error: str, path: str
) -> None:
    _, server = serve()
    response = requests.get(f"{server.url}{path}", headers=headers, timeout=5)
    body = response.json()
    assert (response.status_code, body["status"], body["error"], body["path"]) == (status, status, error, path)
    assert body["message"] and datetime.fromisoformat(body["timestamp"])


def test_the_key_header_name_is_case_insensitive(serve: Callable[..., Served]) -> None:
    _, server = serve()
    response = requests.get(report_url(server, "sites"), headers={"API-KEY": "test-openspace-key"}, timeout=5)
    assert response.status_code == 200


@pytest.mark.parametrize("path", [f"{API_PREFIX}videos", "/api/external/v1/reports", "/api/external/v2/reports/sites"])
def test_unknown_paths_get_spring_404(serve: Callable[..., Served], session: requests.Session, path: str) -> None:
    _, server = serve()
    response = session.get(f"{server.url}{path}")
    assert (response.status_code, response.json()["error"], response.json()["path"]) == (404, "Not Found", path)


def test_only_get_is_served(serve: Callable[..., Served], session: requests.Session) -> None:
    _, server = serve()
    assert session.post(report_url(server, "sites")).status_code == 405


# Spring pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("report", REPORTS)
def test_all_pages_together_are_the_truth_in_stored_order(
    serve: Callable[..., Served], session: requests.Session, report: str
) -> None:
    app, server = serve()
    truth = app.truth(report)
    assert len(truth) == app.record_count(report) > 0
    assert read_all(session, report_url(server, report), size=CAP) == truth


def test_size_is_silently_capped_and_pages_count_from_zero(
    serve: Callable[..., Served], session: requests.Session
) -> None:
    app, server = serve()
    total = app.record_count("360-videos")
    body = session.get(report_url(server, "360-videos"), params={"size": 1000}).json()
    assert body["size"] == body["numberOfElements"] == CAP  # asked 1000, got 30, no error
    assert body["totalPages"] == -(-total // CAP) > 5
    assert (body["number"], body["first"], body["last"]) == (0, True, False)
    assert body["content"] == app.truth("360-videos")[:CAP]


@pytest.mark.parametrize(
    ("params", "size", "page"),
    [
        ({}, 20, 0),
        ({"size": "x", "page": "y"}, 20, 0),
        ({"size": 0, "page": -3}, 20, 0),
        ({"size": 7, "page": 2}, 7, 2),
    ],
)
def test_unreadable_page_and_size_fall_back_to_springs_defaults(
    serve: Callable[..., Served], session: requests.Session, params: dict[str, Any], size: int, page: int
) -> None:
    app, server = serve()
    body = session.get(report_url(server, "360-videos"), params=params).json()
    assert (body["size"], body["number"]) == (size, page)
    assert body["content"] == app.truth("360-videos")[page * size : (page + 1) * size]


def test_a_page_past_the_end_is_empty_and_last(serve: Callable[..., Served], session: requests.Session) -> None:
    app, server = serve()
    body = session.get(report_url(server, "sites"), params={"page": 9, "size": 5}).json()
    assert body["content"] == [] and body["empty"] and body["last"]
    assert body["totalElements"] == app.record_count("sites")


# Sorting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["videoStart,DESC", "videoStart,desc"])
def test_newest_first_sort_is_stable_on_ties(
    serve: Callable[..., Served], session: requests.Session, sort: str
) -> None:
    app, server = serve()
    truth = app.truth("360-videos")
    served = read_all(session, report_url(server, "360-videos"), size=CAP, sort=sort)
    expected = sorted(truth, key=lambda record: instant(record["videoStart"]), reverse=True)  # stable
    assert served == expected
    starts = [record["videoStart"] for record in served]
    assert starts[0] == starts[1]  # the newest two share a start: every first bookmark sits on a tie
    assert len(set(starts)) < len(starts) - 1  # and there are other ties


def test_several_sorts_apply_in_order(serve: Callable[..., Served], session: requests.Session) -> None:
    app, server = serve()
    truth = app.truth("360-videos")
    url = report_url(server, "360-videos")
    served = read_all(session, url, size=CAP, sort=["siteName,ASC", "videoStart,DESC"])
    by_start = sorted(truth, key=lambda record: instant(record["videoStart"]), reverse=True)
    assert served == sorted(by_start, key=lambda record: record["siteName"])
    assert read_all(session, url, size=CAP, sort="siteName,videoNumberOfFrames,DESC") == sorted(
        truth, key=lambda record: (record["siteName"], record["videoNumberOfFrames"]), reverse=True
    )


def test_memberships_sort_on_email_as_the_vendor_does(serve: Callable[..., Served], session: requests.Session) -> None:
    app, server = serve()
    served = read_all(session, report_url(server, "memberships"), size=CAP, sort="email,ASC")
    assert served == sorted(app.truth("memberships"), key=lambda record: record["userEmail"])


def test_an_unknown_sort_property_is_a_400(serve: Callable[..., Served], session: requests.Session) -> None:
    _, server = serve()
    response = session.get(report_url(server, "360-videos"), params={"sort": "capturedAt,DESC"})
    assert response.status_code == 400
    assert "capturedAt" in response.json()["message"]


def test_a_server_that_ignores_sort_serves_stored_order(
    serve: Callable[..., Served], session: requests.Session
) -> None:
    app, server = serve(honour_sort=False)
    served = read_all(session, report_url(server, "360-videos"), size=CAP, sort="videoStart,DESC")
    assert served == app.truth("360-videos")


# Memberships and orgs -----------------------------------------------------------------------------


def test_orgs_filters_memberships_in_either_spelling(serve: Callable[..., Served], session: requests.Session) -> None:
    app, server = serve()
    first, second = app.org_ids()
    url = report_url(server, "memberships")
    only_first = read_all(session, url, size=CAP, orgs=first)
    assert only_first == app.truth("memberships", orgs=[first]) and 0 < len(only_first) < app.record_count(
        "memberships"
    )
    assert read_all(session, url, size=CAP, orgs=f"{first},{second}") == app.truth("memberships")
    assert read_all(session, url, size=CAP, orgs=[first, second]) == app.truth("memberships")


def test_memberships_can_require_orgs(serve: Callable[..., Served], session: requests.Session) -> None:
    app, server = serve(memberships_require_orgs=True)
    response = session.get(report_url(server, "memberships"))
    assert response.status_code == 400 and "'orgs'" in response.json()["message"]
    assert session.get(report_url(server, "memberships"), params={"orgs": app.org_ids()[0]}).status_code == 200


def test_memberships_hold_org_admins_without_a_site() -> None:
    memberships = OpenSpaceEmulator(anchor=ANCHOR).truth("memberships")
    admins = [record for record in memberships if record["role"] == "Org Admin"]
    assert admins and all(record["siteId"] is None for record in admins)
    assert all(record["siteId"] for record in memberships if record["role"] != "Org Admin")


# Data -----------------------------------------------------------------------------------------------


PATTERNS = {
    "instant": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z",
    "offset": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00",
    "local": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?",
}


@pytest.mark.parametrize("timestamp_format", TIMESTAMP_FORMATS)
def test_timestamp_formats_write_the_same_instants(timestamp_format: str) -> None:
    reference = OpenSpaceEmulator(anchor=ANCHOR, seed=2).truth("360-videos")
    served = OpenSpaceEmulator(anchor=ANCHOR, seed=2, timestamp_format=timestamp_format).truth("360-videos")
    for expected, record in zip(reference, served, strict=True):
        value = record["videoStart"]
        if timestamp_format == "epoch_ms":
            assert isinstance(value, int)
        else:
            assert re.fullmatch(PATTERNS[timestamp_format], value), value
        assert instant(value) == instant(expected["videoStart"])
    fractions = {instant(record["videoStart"]).microsecond == 0 for record in reference}
    assert fractions == {True, False}  # whole seconds and milliseconds both occur


def test_captures_lie_in_the_span_oldest_first() -> None:
    app = OpenSpaceEmulator(anchor=ANCHOR, span_days=30, videos=500)
    starts = [instant(record["videoStart"]) for record in app.truth("360-videos")]
    assert starts == sorted(starts)
    assert ANCHOR - timedelta(days=30) <= starts[0] and starts[-1] <= ANCHOR
    ids = [record["videoId"] for record in app.truth("360-videos")]
    assert len(set(ids)) == len(ids) == 500


def test_the_same_seed_gives_the_same_data() -> None:
    def everything(seed: int) -> list[list[dict[str, Any]]]:
        app = OpenSpaceEmulator(anchor=ANCHOR, seed=seed)
        return [app.truth(report) for report in REPORTS]

    assert everything(3) == everything(3)
    assert everything(3) != everything(4)


def test_added_videos_are_served_in_their_place(serve: Callable[..., Served], session: requests.Session) -> None:
    app, server = serve()
    url = report_url(server, "360-videos")
    before = read_all(session, url, size=CAP, sort="videoStart,DESC")  # caches the order
    newest = instant(before[0]["videoStart"])
    added = app.add_videos([newest + timedelta(hours=1), "2024-03-01T00:00:00Z", newest])
    assert len(added) == 3 and {record["videoId"] for record in added}.isdisjoint(r["videoId"] for r in before)
    after = read_all(session, url, size=CAP, sort="videoStart,DESC")
    assert after[0] == added[0]
    assert after == sorted(before + added, key=lambda record: instant(record["videoStart"]), reverse=True)
    assert app.record_count("360-videos") == len(before) + 3


@pytest.mark.parametrize(
    "options",
    [{"timestamp_format": "rfc822"}, {"max_page_size": 0}, {"sites": 0}, {"videos": -1}, {"span_days": 0}],
)
def test_invalid_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        OpenSpaceEmulator(**options)


def test_openspace_is_registered() -> None:
    assert emulator_class("openspace") is OpenSpaceEmulator


def test_faults_and_the_request_counter_work(serve: Callable[..., Served], session: requests.Session) -> None:
    app, server = serve()
    app.inject(Fault(kind="status", status=503, retry_after="2", path_regex="360-videos"))
    assert session.get(report_url(server, "sites")).status_code == 200
    failed = session.get(report_url(server, "360-videos"))
    assert (failed.status_code, failed.headers["Retry-After"]) == (503, "2")
    assert session.get(report_url(server, "360-videos")).status_code == 200
    assert app.request_count("360-videos$") == 2 and app.request_count() == 3


@pytest.mark.skipif(os.environ.get("EMULATOR_BIG") != "1", reason="set EMULATOR_BIG=1 to time 1M captures")
def test_a_million_captures(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    app = OpenSpaceEmulator(videos=1_000_000, max_page_size=2000)
    generated = time.perf_counter() - started
    with EmulatorServer(app) as server, requests.Session() as client:
        client.headers.update(KEY)
        started = time.perf_counter()
        for page in range(10):
            body = client.get(
                report_url(server, "360-videos"), params={"page": page, "size": 2000, "sort": "videoStart,DESC"}
            ).json()
            assert body["numberOfElements"] == 2000
        served = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n1M captures generated in {generated:.2f} s; first 10 sorted pages of 2000 in {served:.2f} s")
    assert app.record_count("360-videos") == 1_000_000

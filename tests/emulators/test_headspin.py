"""The HeadSpin emulator, checked against its docs and against totals computed here from its sessions.

The direct computation below puts each session in its bin on its own (local wall clock, bin by
bin size) and sums; the emulator walks sorted sessions along generated bin edges. They must agree
for every bin size and time zone, DST changes included.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from emulators import emulator_class
from emulators.framework import EmulatorServer
from emulators.headspin import HeadSpinEmulator

UTC = timezone.utc
TOKEN = {"Authorization": "Bearer test-api-token"}
# Spans that cross DST changes: US fall-back (2024-11-03), Lord Howe's half-hour spring
# (2024-10-06), and US spring-forward (2024-03-10).
AUTUMN = HeadSpinEmulator(seed=7, anchor="2024-11-10T00:00:00Z", span_days=45, sessions=500)
SPRING = HeadSpinEmulator(seed=8, anchor="2024-03-20T00:00:00Z", span_days=20, sessions=300)
ZONES = ("UTC", "America/Los_Angeles", "Asia/Kolkata", "Australia/Lord_Howe", "Asia/Kathmandu")
BIN_SIZES: tuple[str | int, ...] = ("hour", "day", "week", "month", 3600, 7000, 900)
KEYS = {
    "org": (),
    "device": ("device_address",),
    "team": ("team",),
    "device_user": ("device_address", "user"),
}


def local_text(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def direct_bin_start(moment: datetime, bin_size: str | int, zone: ZoneInfo, origin: datetime) -> datetime:
    """The bin of one session, straight from the definition."""
    if isinstance(bin_size, int):
        return origin + timedelta(seconds=bin_size * ((moment - origin).total_seconds() // bin_size))
    local = moment.astimezone(zone)
    if bin_size == "hour":
        return local.replace(minute=0, second=0).astimezone(UTC)
    day = local.date()
    if bin_size == "week":
        day -= timedelta(days=day.weekday())
    if bin_size == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def direct_totals(
    app: HeadSpinEmulator,
    keys: tuple[str, ...],
    bin_size: str | int,
    zone: ZoneInfo,
    start_day: date,
    keep: Any = lambda session: True,  # noqa: ANN401
) -> dict[tuple[str, tuple], tuple[int, int]]:
    """{(local bin start, group): (total ms, devices)} from the sessions one by one."""
    origin = datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone).astimezone(UTC)
    totals: dict[tuple[str, tuple], int] = defaultdict(int)
    devices: dict[tuple[str, tuple], set[str]] = defaultdict(set)
    for session in app.sessions():
        if session["start"] < origin or not keep(session):
            continue
        group = tuple(session[key] for key in keys)
        if None in group:
            continue
        key = (local_text(direct_bin_start(session["start"], bin_size, zone, origin), zone), group)
        totals[key] += session["duration_ms"]
        devices[key].add(session["device_address"])
    return {key: (total, len(devices[key])) for key, total in totals.items()}


def served_totals(
    rows: list[dict[str, Any]], keys: tuple[str, ...]
) -> dict[tuple[str, tuple], tuple[int, int]]:
    return {
        (row["start_time"], tuple(row[key] for key in keys)): (
            round(row["total_time"] * 1000),
            row["device_count"],
        )
        for row in rows
    }


@pytest.mark.parametrize("app", [AUTUMN, SPRING], ids=["autumn", "spring"])
@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("bin_size", BIN_SIZES, ids=str)
def test_bins_agree_with_a_direct_computation_from_the_sessions(
    app: HeadSpinEmulator, zone_name: str, bin_size: str | int
) -> None:
    zone = ZoneInfo(zone_name)
    start_day = app.span_start.date() + timedelta(days=1)  # some sessions fall before the range
    for grouping, keys in KEYS.items():
        rows = app.report(
            grouping, {"start_date": start_day.isoformat(), "bin_size": str(bin_size), "timezone": zone_name}
        )
        assert served_totals(rows, keys) == direct_totals(app, keys, bin_size, zone, start_day), grouping
    org = app.report(
        "org", {"start_date": start_day.isoformat(), "bin_size": str(bin_size), "timezone": zone_name}
    )
    origin = datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone)
    in_range = [s["duration_ms"] for s in app.sessions() if s["start"] >= origin]
    assert round(sum(row["total_time"] for row in org) * 1000) == sum(in_range)


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("bin_size", ["hour", "day", "week", "month", 7000])
def test_each_bin_ends_where_the_next_one_starts(zone_name: str, bin_size: str | int) -> None:
    zone = ZoneInfo(zone_name)
    start_day = AUTUMN.span_start.date()
    origin = datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone).astimezone(UTC)
    rows = AUTUMN.report(
        "org", {"start_date": start_day.isoformat(), "bin_size": str(bin_size), "timezone": zone_name}
    )
    bins = {
        local_text(start, zone): start
        for start in (
            direct_bin_start(s["start"], bin_size, zone, origin)
            for s in AUTUMN.sessions()
            if s["start"] >= origin
        )
    }
    assert len(rows) == len(bins)
    for row in rows:
        assert row["end_time"] == local_text(_next_bin(bins[row["start_time"]], bin_size, zone, origin), zone)
        assert row["datetime"] == row["start_time"]


def _next_bin(start: datetime, bin_size: str | int, zone: ZoneInfo, origin: datetime) -> datetime:
    """Step forward a quarter hour at a time until the bin changes (slow, but plainly right)."""
    moment = start
    while direct_bin_start(moment, bin_size, zone, origin) == start:
        moment += timedelta(minutes=15)
    return direct_bin_start(moment, bin_size, zone, origin)


def test_the_hour_repeated_when_clocks_go_back_is_two_bins() -> None:
    app = HeadSpinEmulator(seed=1, anchor="2024-11-03T12:00:00Z", span_days=0.2, sessions=0)
    app.add_session(datetime(2024, 11, 3, 8, 30, tzinfo=UTC), 60)  # 01:30 PDT
    app.add_session(datetime(2024, 11, 3, 9, 30, tzinfo=UTC), 120)  # 01:30 PST
    rows = app.report(
        "org", {"start_date": "2024-11-03", "bin_size": "hour", "timezone": "America/Los_Angeles"}
    )
    assert [(r["start_time"], r["end_time"], r["total_time"]) for r in rows] == [
        ("2024-11-03 01:00:00", "2024-11-03 01:00:00", 60.0),
        ("2024-11-03 01:00:00", "2024-11-03 02:00:00", 120.0),
    ]


def test_before_august_2022_usage_by_teams_plus_users_is_the_total_and_since_then_each_is() -> None:
    app = HeadSpinEmulator(seed=4, anchor="2022-08-15T00:00:00Z", span_days=30, sessions=300)
    params = {"start_date": "2022-07-16", "bin_size": "month"}
    by = {
        g: {r["start_time"]: r["total_time"] for r in app.report(g, params)} for g in ("org", "team", "user")
    }
    team_rows = app.report("team", params)
    user_rows = app.report("user", params)
    for month in by["org"]:
        teams = sum(r["total_time"] for r in team_rows if r["start_time"] == month)
        users = sum(r["total_time"] for r in user_rows if r["start_time"] == month)
        if month.startswith("2022-07"):
            assert teams + users == pytest.approx(by["org"][month])
            assert teams < by["org"][month] and users < by["org"][month]
        else:
            assert teams == pytest.approx(by["org"][month]) == pytest.approx(users)


# --- over HTTP, as the docs describe the routes --------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    app = HeadSpinEmulator(seed=2, anchor="2024-05-20T00:00:00Z", span_days=20, sessions=300)
    with EmulatorServer(app) as running:
        yield running


def get(server: EmulatorServer, path: str, params: Any = None, **kwargs: Any) -> requests.Response:  # noqa: ANN401
    headers = kwargs.pop("headers", TOKEN)
    return requests.get(f"{server.url}{path}", params=params, headers=headers, timeout=10, **kwargs)


def test_registered_under_its_vendor_name() -> None:
    assert emulator_class("headspin") is HeadSpinEmulator


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-api-token"}]
)
def test_a_bad_or_missing_token_answers_401(server: EmulatorServer, headers: dict[str, str]) -> None:
    response = get(server, "/v2/usage/device", {"start_date": "2024-05-01"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_the_docs_example_and_its_post_form_give_the_same_report(server: EmulatorServer) -> None:
    by_get = get(server, "/v2/usage/device", {"start_date": "2024-05-01"}).json()
    by_post = requests.post(
        f"{server.url}/v2/usage/device", data={"start_date": "2024-05-01"}, headers=TOKEN, timeout=10
    ).json()
    assert by_get == by_post
    first = by_get["report"][0]
    assert list(first) == [
        "datetime",
        "start_time",
        "end_time",
        "total_time",
        "device_count",
        "device_address",
        "unit",
    ]
    assert (
        first["start_time"] == "2024-05-01 00:00:00" and first["end_time"] == "2024-06-01 00:00:00"
    )  # month bins
    assert first["unit"] == "second"


def test_filters_are_anded_across_kinds_and_ored_within_one(server: EmulatorServer) -> None:
    app: HeadSpinEmulator = server.app  # type: ignore[assignment]
    teams = [app.teams[0].name, app.teams[1].name]
    device = app.devices[0].address
    params = {
        "start_date": "2024-05-01",
        "bin_size": "day",
        "filter_team_name": teams,
        "filter_device_address": [device],
    }
    rows = get(server, "/v2/usage/team", params).json()["report"]
    expected = direct_totals(
        app,
        ("team",),
        "day",
        ZoneInfo("UTC"),
        date(2024, 5, 1),
        keep=lambda s: s["team"] in teams and s["device_address"] == device,
    )
    assert expected and served_totals(rows, ("team",)) == expected
    by_id = get(
        server, "/v2/usage/org", {"start_date": "2024-05-01", "filter_user_id": app.users[2].user_id}
    ).json()
    by_email = get(
        server, "/v2/usage/org", {"start_date": "2024-05-01", "filter_user_email": app.users[2].email}
    ).json()
    assert by_id == by_email and by_id["report"]


def test_grouping_aliases_are_the_same_grouping(server: EmulatorServer) -> None:
    reports = [
        get(server, f"/v2/usage/{g}", {"start_date": "2024-05-01"}).json()
        for g in ("device_team", "device-team", "team/device")
    ]
    assert reports[0] == reports[1] == reports[2]
    assert (
        get(server, "/v2/usage", {"start_date": "2024-05-01"}).json()
        == get(server, "/v2/usage/org", {"start_date": "2024-05-01"}).json()
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start_date": "2024-05-01", "timezone": "Mars/Olympus"}, "Unknown timezone"),
        ({"start_date": "2024-05-01", "bin_size": "60"}, "bin_size"),
        ({"start_date": "01/05/2024"}, "Invalid date"),
        ({"bin_size": "day"}, "start_date is required"),
        ({"start_date": "2024-05-01", "unit": "fortnight"}, "unit"),
    ],
)
def test_bad_parameters_answer_400(server: EmulatorServer, params: dict[str, str], message: str) -> None:
    response = get(server, "/v2/usage/org", params)
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_units_and_csv(server: EmulatorServer) -> None:
    seconds = get(server, "/v2/usage/org", {"start_date": "2024-05-01"}).json()["report"][0]["total_time"]
    hours = get(server, "/v2/usage/org", {"start_date": "2024-05-01", "unit": "hour"}).json()["report"][0]
    assert hours["total_time"] == pytest.approx(seconds / 3600) and hours["unit"] == "hour"
    text = get(server, "/v2/usage/org", {"start_date": "2024-05-01", "format": "csv"}).text
    assert text.splitlines()[0] == "datetime,start_time,end_time,total_time,device_count,unit"


def test_display_all_lists_every_team_in_every_bin(server: EmulatorServer) -> None:
    app: HeadSpinEmulator = server.app  # type: ignore[assignment]
    params = {"start_date": "2024-05-10", "end_date": "2024-05-12", "bin_size": "day"}
    rows = get(server, "/v2/usage/team", {**params, "display_all": "true"}).json()["report"]
    assert len(rows) == 2 * len(app.teams)
    used = get(server, "/v2/usage/team", params).json()["report"]
    assert [r for r in rows if r["total_time"]] == used


def test_legacy_metrics_one_per_call_with_their_units(server: EmulatorServer) -> None:
    app: HeadSpinEmulator = server.app  # type: ignore[assignment]
    params = {"start_date": "20240501", "bin_size": "day", "timezone": "US/Pacific"}
    answers = {
        metric: get(server, "/v1/usage/country", {**params, "metric": metric}).json()["report"]
        for metric in ("total_time", "avg_session_length", "session_count", "user_count")
    }
    first = answers["total_time"][0]
    assert set(first) == {"datetime", "country", "total_time", "unit"} and first["unit"] == "hour"
    assert len(first["datetime"]) == len("2024-05-01")
    for total, average, count in zip(
        answers["total_time"], answers["avg_session_length"], answers["session_count"], strict=True
    ):
        assert average["avg_session_length"] == pytest.approx(
            total["total_time"] * 60 / count["session_count"]
        )
        assert average["unit"] == "minute" and "unit" not in count
    zone = ZoneInfo("US/Pacific")
    origin = datetime(2024, 5, 1, tzinfo=zone)
    country_users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for s in app.sessions():
        if s["start"] >= origin and s["user"]:
            country_users[s["start"].astimezone(zone).date().isoformat(), s["country"]].add(s["user"])
    assert {(r["datetime"], r["country"]): r["user_count"] for r in answers["user_count"]} == {
        key: len(users) for key, users in country_users.items()
    }
    hourly = get(server, "/v1/usage/devicemodel", {**params, "bin_size": "hour"}).json()["report"][0]
    assert hourly["unit"] == "minute" and len(hourly["datetime"]) == len("2024-05-01 00:00:00")
    assert get(server, "/v1/usage/country", {**params, "bin_size": "3600"}).status_code == 400


def test_legacy_filter_on_and_device_model_options(server: EmulatorServer) -> None:
    app: HeadSpinEmulator = server.app  # type: ignore[assignment]
    team = app.teams[0].name
    rows = get(
        server, "/v1/usage/team/devicemodel", {"start_date": "20240501", "filter_on.team_name": team}
    ).json()["report"]
    assert rows and {r["team"] for r in rows} == {team}
    combined = get(
        server, "/v1/usage/devicemodel", {"start_date": "20240501", "combine_phone_os": "true"}
    ).json()["report"]
    assert {r["device_model"] for r in combined} <= {"iPhone", "AndroidPhone", "iPad Air"}


def test_events_route_gives_the_v0_fields_and_refuses_more_than_120_days(server: EmulatorServer) -> None:
    app: HeadSpinEmulator = server.app  # type: ignore[assignment]
    rows = get(server, "/v2/usage/event", {"start_date": "2024-04-30", "end_date": "2024-05-21"}).json()[
        "report"
    ]
    assert len(rows) == app.session_count()
    manual = next(r for r in rows if "email" in r)
    automated = next(r for r in rows if "team" in r)
    assert {"user", "email", "device_id", "hostname", "start_time", "end_time", "duration", "date"} <= set(
        manual
    )
    assert "user" not in automated and "email" not in automated
    refused = get(server, "/v2/usage/event", {"start_date": "2024-01-01", "end_date": "2024-05-01"})
    assert refused.status_code == 400 and "120 days" in refused.json()["message"]
    assert (
        get(server, "/v2/usage/event", {"start_date": "2024-01-02", "end_date": "2024-05-01"}).status_code
        == 200
    )


def test_v0_events_take_a_json_body_on_a_get(server: EmulatorServer) -> None:
    app: HeadSpinEmulator = server.app  # type: ignore[assignment]
    device = app.devices[1].address
    body = {"start_date": "2024/05/01", "end_date": "20240521", "devices": [device]}
    rows = get(server, "/v0/usage/events", data=json.dumps(body)).json()["report"]
    assert rows and {f"{r['device_id']}@{r['hostname']}" for r in rows} == {device}
    assert "session_id" not in rows[0]
    text = get(server, "/v0/usage/events", data=json.dumps({**body, "format": "csv"})).text
    assert text.splitlines()[0] == "User/Team,Email,Device Id,Hostname,Start time,End time,Duration,Date"
    too_long = get(
        server, "/v0/usage/events", data=json.dumps({"start_date": "20240101", "end_date": "20240701"})
    )
    assert too_long.status_code == 400


@pytest.mark.parametrize("inclusive", [False, True])
def test_end_date_reading_is_an_option(inclusive: bool) -> None:
    app = HeadSpinEmulator(seed=3, anchor="2024-05-20T00:00:00Z", span_days=10, end_inclusive=inclusive)
    rows = app.report("org", {"start_date": "2024-05-12", "end_date": "2024-05-14", "bin_size": "day"})
    assert [r["start_time"][:10] for r in rows] == ["2024-05-12", "2024-05-13"] + (
        ["2024-05-14"] if inclusive else []
    )


def test_same_seed_same_data_and_a_million_sessions_fit() -> None:
    assert (
        HeadSpinEmulator(seed=5, anchor="2024-05-01T00:00:00Z").sessions()
        == HeadSpinEmulator(seed=5, anchor="2024-05-01T00:00:00Z").sessions()
    )
    big = HeadSpinEmulator(seed=1, sessions=100_000, devices=100)
    assert big.session_count() == 100_000


def test_shuffled_events_are_the_same_events_in_another_order() -> None:
    options = {"seed": 6, "anchor": "2024-05-01T00:00:00Z", "span_days": 5}
    params = {"start_date": "2024-04-26", "end_date": "2024-05-02"}
    in_time = HeadSpinEmulator(**options).events(params)
    shuffled = HeadSpinEmulator(**options, event_order="shuffled").events(params)
    assert shuffled != in_time
    assert sorted(shuffled, key=repr) == sorted(in_time, key=repr)

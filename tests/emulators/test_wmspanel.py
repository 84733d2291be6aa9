"""The WMSPanel emulator over real loopback HTTP, checked against the docs and its ground truth."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from emulators import emulator_class
from emulators.framework import EmulatorServer, Fault
from emulators.wmspanel import DAILY_STATS_KEYS, DEVICES, PLAYERS, WMSPanelEmulator

ANCHOR = dt.date(2024, 5, 10)
CREDENTIALS = {"client_id": "test-client-id", "api_key": "test-api-key"}
USER_CREDENTIALS = {"client_id": "test-user-client-id", "api_key": "test-user-api-key"}
FORBIDDEN = {"status": "error", "description": "Access denied"}

Served = tuple[WMSPanelEmulator, EmulatorServer]
ServeFactory = Callable[..., Served]


@pytest.fixture
def serve() -> Iterator[ServeFactory]:
    """Start a WMSPanel emulator with the given options (test defaults otherwise)."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> Served:
        emulator = WMSPanelEmulator(**{"seed": 3, "anchor": ANCHOR, "days": 30, **options})
        servers.append(EmulatorServer(emulator).start())
        return emulator, servers[-1]

    yield start
    for server in servers:
        server.stop()


def get(
    running: EmulatorServer, route: str, credentials: dict[str, str] | None = None, /, **params: str
) -> requests.Response:
    """GET a route with credentials (the account's by default) and query parameters."""
    query = {**(CREDENTIALS if credentials is None else credentials), **params}
    return requests.get(f"{running.url}/v1/{route}", params=query, timeout=5)


def stats(running: EmulatorServer, route: str, data_slice: str, first: str, last: str, /, **params: str) -> dict[str, Any]:
    response = get(running, route, data_slice=data_slice, **{"from": first, "to": last}, **params)
    assert response.status_code == 200
    return response.json()


# Credentials ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [{}, {"client_id": "test-client-id"}, {"api_key": "test-api-key"}, {"client_id": "test-client-id", "api_key": "wrong"},
     {"client_id": "wrong", "api_key": "test-api-key"}, {"client_id": "test-user-client-id", "api_key": "test-api-key"}],
)  # fmt: skip
@pytest.mark.parametrize("route", ["data_slices", "server", "players_stats", "nowhere"])
def test_wrong_or_missing_credentials_get_403(serve: ServeFactory, credentials: dict[str, str], route: str) -> None:
    _, server = serve()
    response = get(server, route, credentials)
    assert (response.status_code, response.json()) == (403, FORBIDDEN)


def test_a_caller_outside_the_whitelist_gets_403_even_with_the_right_credentials(serve: ServeFactory) -> None:
    _, server = serve(whitelisted=False)
    assert get(server, "data_slices").status_code == 403


def test_the_query_string_credentials_are_read_url_decoded(serve: ServeFactory) -> None:
    _, server = serve(api_key="k/e+y &=x")
    assert get(server, "data_slices", {"client_id": "test-client-id", "api_key": "k/e+y &=x"}).status_code == 200


# Listings ---------------------------------------------------------------------------------------


def test_data_slices_as_the_docs_show_them_and_with_server_ids_on_request(serve: ServeFactory) -> None:
    emulator, server = serve(data_slices=3, servers=4)
    plain = get(server, "data_slices").json()
    assert plain["status"] == "Ok"
    assert [set(item) for item in plain["data_slices"]] == [{"id", "name"}] * 3
    assert [item["id"] for item in plain["data_slices"]] == emulator.data_slice_ids()
    assert plain["data_slices"][0]["name"] == "Full data slice"
    assert all(len(item["id"]) == 24 for item in plain["data_slices"])
    with_servers = get(server, "data_slices", show_servers="true").json()["data_slices"]
    assert with_servers == emulator.data_slices()
    server_ids = {s["id"] for s in emulator.servers()}
    assert set(with_servers[0]["server_ids"]) == server_ids  # the full slice has every server
    assert all(set(item["server_ids"]) <= server_ids and item["server_ids"] for item in with_servers)


def test_servers_are_listed_at_slash_server(serve: ServeFactory) -> None:
    emulator, server = serve(servers=5)
    body = get(server, "server").json()
    assert body == {"status": "Ok", "servers": emulator.servers()}
    assert len(body["servers"]) == 5 and all({"id", "name"} <= set(s) for s in body["servers"])


def test_user_credentials_see_only_their_slices_and_may_leave_out_data_slice(serve: ServeFactory) -> None:
    emulator, server = serve(data_slices=3, user_slices=1)
    own, other = emulator.data_slice_ids()[0], emulator.data_slice_ids()[1]
    listed = get(server, "data_slices", USER_CREDENTIALS).json()["data_slices"]
    assert [item["id"] for item in listed] == [own]
    implicit = get(server, "players_stats", USER_CREDENTIALS, **{"from": "2024-05-01", "to": "2024-05-10"}).json()
    assert implicit["stats"] == stats(server, "players_stats", own, "2024-05-01", "2024-05-10")["stats"]
    refused = get(server, "players_stats", USER_CREDENTIALS, data_slice=other, **{"from": "2024-05-01", "to": "2024-05-10"})
    assert refused.json() == {"status": "error", "description": "Data slice not found"}


# Stats ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["players_stats", "devices_stats", "daily_stats"])
def test_a_range_is_its_days_with_data_ascending_as_the_truth_says(serve: ServeFactory, route: str) -> None:
    emulator, server = serve()
    data_slice = emulator.data_slice_ids()[1]
    body = stats(server, route, data_slice, "2024-04-20", "2024-05-10")
    assert body["status"] == "Ok"
    days = [day["date"] for day in body["stats"]]
    assert days == sorted(days) and days[0] >= "2024-04-20" and days[-1] <= "2024-05-10"
    assert len(days) < 21  # days without data are absent...
    assert len(days) > 10  # ...but most days have some
    expected = emulator.day_objects(route, data_slice, dt.date(2024, 4, 20), dt.date(2024, 5, 10))
    assert body["stats"] == expected


def test_both_ends_of_the_range_are_included(serve: ServeFactory) -> None:
    emulator, server = serve(data_day_ratio=1.0)
    data_slice = emulator.data_slice_ids()[0]
    days = [d["date"] for d in stats(server, "players_stats", data_slice, "2024-05-03", "2024-05-05")["stats"]]
    assert days == ["2024-05-03", "2024-05-04", "2024-05-05"]


def test_days_are_pivoted_unused_names_absent_and_zeros_reported(serve: ServeFactory) -> None:
    emulator, server = serve(players=10, devices=8, days=60)
    data_slice = emulator.data_slice_ids()[0]
    players = stats(server, "players_stats", data_slice, "2024-03-01", "2024-05-10")["stats"]
    devices = stats(server, "devices_stats", data_slice, "2024-03-01", "2024-05-10")["stats"]
    for days, catalog in ((players, PLAYERS[:10]), (devices, DEVICES[:8])):
        names_per_day = [set(day) - {"date"} for day in days]
        assert all(names and names <= set(catalog) for names in names_per_day)
        assert any(len(names) < len(catalog) for names in names_per_day)  # unused ones are left out
        assert any(0 in day.values() for day in days)  # as in the docs' example, a used one may be 0
        assert all(isinstance(v, int) for day in days for k, v in day.items() if k != "date")
        assert {list(day).index("date") for day in days} != {0}  # `date` is anywhere among the keys


def test_long_rows_are_the_days_unpivoted(serve: ServeFactory) -> None:
    emulator, _ = serve()
    data_slice = emulator.data_slice_ids()[0]
    rows = emulator.truth_long_rows("devices_stats", data_slice)
    days = emulator.day_objects("devices_stats", data_slice)
    assert len(rows) == sum(len(day) - 1 for day in days)
    assert {(r["date"], r["device"]): r["connections"] for r in rows} == {
        (day["date"], name): count for day in days for name, count in day.items() if name != "date"
    }


def test_daily_stats_hold_viewers_protocols_time_bytes_and_durations(serve: ServeFactory) -> None:
    emulator, server = serve()
    days = stats(server, "daily_stats", emulator.data_slice_ids()[0], "2024-04-01", "2024-05-10")["stats"]
    for day in days:
        assert set(day) - {"date"} <= set(DAILY_STATS_KEYS)
        protocols = sum(v for k, v in day.items() if k.endswith("_viewers"))
        durations = sum(v for k, v in day.items() if k.startswith("duration_"))
        assert protocols == durations == day["viewers"]
        assert day["total_view_time"] > 0 and day["bytes_out"] > 0
    assert any("mpeg_dash_viewers" not in day for day in days)  # unused protocols are absent


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"to": "2024-05-10"}, "Parameters 'from' and 'to' are required"),
        ({"from": "2024-05-01"}, "Parameters 'from' and 'to' are required"),
        ({"from": "01.05.2024", "to": "2024-05-10"}, "Wrong date format, use YYYY-MM-DD"),
        ({"from": "2024-02-30", "to": "2024-05-10"}, "Wrong date format, use YYYY-MM-DD"),
        ({"from": "2024-05-10", "to": "2024-05-01"}, "Parameter 'from' must not be later than 'to'"),
        ({"from": "2024-05-01", "to": "2024-05-10", "data_slice": ""}, "Parameter 'data_slice' is required"),
        ({"from": "2024-05-01", "to": "2024-05-10", "data_slice": "0" * 24}, "Data slice not found"),
        ({"from": "2024-05-01", "to": "2024-05-10", "server": "0" * 24}, "Server not found"),
    ],
)
def test_bad_parameters_get_http_200_with_an_error_body(serve: ServeFactory, params: dict[str, str], description: str) -> None:
    emulator, server = serve()
    query = {"data_slice": emulator.data_slice_ids()[0], **params}
    response = get(server, "players_stats", **query)
    assert (response.status_code, response.json()) == (200, {"status": "error", "description": description})


def test_max_range_days_refuses_longer_ranges_in_a_200_body(serve: ServeFactory) -> None:
    emulator, server = serve(max_range_days=7)
    data_slice = emulator.data_slice_ids()[0]
    assert stats(server, "devices_stats", data_slice, "2024-05-01", "2024-05-07")["status"] == "Ok"
    assert stats(server, "devices_stats", data_slice, "2024-05-01", "2024-05-08") == {
        "status": "error",
        "description": "Date range is too long: at most 7 days per request",
    }


def test_a_server_filter_gives_that_servers_own_numbers(serve: ServeFactory) -> None:
    emulator, server = serve(servers=4, data_slices=6)
    data_slice = next(s for s in emulator.data_slices() if len(s["server_ids"]) < 4)
    inside = data_slice["server_ids"][0]
    outside = next(s["id"] for s in emulator.servers() if s["id"] not in data_slice["server_ids"])
    whole = stats(server, "players_stats", data_slice["id"], "2024-04-11", "2024-05-10")["stats"]
    filtered = stats(server, "players_stats", data_slice["id"], "2024-04-11", "2024-05-10", server=inside)["stats"]
    assert filtered and filtered != whole
    assert filtered == emulator.day_objects("players_stats", data_slice["id"], server_id=inside)
    assert stats(server, "players_stats", data_slice["id"], "2024-04-11", "2024-05-10", server=outside)["stats"] == []
    daily_filtered = stats(server, "daily_stats", data_slice["id"], "2024-04-11", "2024-05-10", server=inside)
    assert daily_filtered["stats"] == emulator.day_objects("daily_stats", data_slice["id"])  # no server filter there


def test_shuffled_day_order_serves_the_same_days(serve: ServeFactory) -> None:
    emulator, server = serve(day_order="shuffled")
    data_slice = emulator.data_slice_ids()[0]
    served = stats(server, "players_stats", data_slice, "2024-04-11", "2024-05-10")["stats"]
    assert served != emulator.day_objects("players_stats", data_slice)
    assert sorted(served, key=lambda d: d["date"]) == emulator.day_objects("players_stats", data_slice)


def test_unknown_routes_are_404_with_an_error_body(serve: ServeFactory) -> None:
    _, server = serve()
    response = get(server, "servers")
    assert (response.status_code, response.json()["status"]) == (404, "error")


# Changes, quota, framework ----------------------------------------------------------------------


def test_set_day_changes_filling_days_adds_and_removes_days(serve: ServeFactory) -> None:
    emulator, server = serve(data_day_ratio=1.0)
    data_slice = emulator.data_slice_ids()[0]
    emulator.set_day("players_stats", data_slice, ANCHOR, {"Flash": 5000})
    emulator.set_day("players_stats", data_slice, "2024-05-09", None)
    emulator.advance_days(1)
    emulator.set_day("players_stats", data_slice, ANCHOR + dt.timedelta(days=1), {"Safari": 1})
    days = stats(server, "players_stats", data_slice, "2024-05-08", "2024-05-11")["stats"]
    assert [d["date"] for d in days] == ["2024-05-08", "2024-05-10", "2024-05-11"]
    assert days[1] == {"date": "2024-05-10", "Flash": 5000}
    assert days[2] == {"date": "2024-05-11", "Safari": 1}
    assert emulator.anchor == ANCHOR + dt.timedelta(days=1)
    assert emulator.first_day == ANCHOR - dt.timedelta(days=29)


def test_quota_counts_authenticated_calls_and_then_refuses(serve: ServeFactory) -> None:
    emulator, server = serve(daily_quota=3)
    for _ in range(3):
        assert get(server, "server").json()["status"] == "Ok"
    get(server, "server", {"client_id": "x", "api_key": "y"})  # refused credentials use no quota
    assert emulator.quota_used == 3
    over = get(server, "server")
    assert (over.status_code, over.json()) == (
        200,
        {"status": "error", "description": "API requests limit exceeded: 3 requests per 24 hours"},
    )
    emulator.reset_quota()
    assert get(server, "server").json()["status"] == "Ok"


def test_quota_can_answer_429(serve: ServeFactory) -> None:
    _, server = serve(daily_quota=0, quota_reply="429")
    assert get(server, "data_slices").status_code == 429


def test_faults_and_the_request_counter_work_through_the_framework(serve: ServeFactory) -> None:
    emulator, server = serve()
    emulator.inject(Fault(kind="status", status=503, path_regex="players_stats"))
    data_slice = emulator.data_slice_ids()[0]
    first = get(server, "players_stats", data_slice=data_slice, **{"from": "2024-05-01", "to": "2024-05-10"})
    assert first.status_code == 503
    assert stats(server, "players_stats", data_slice, "2024-05-01", "2024-05-10")["status"] == "Ok"
    assert emulator.request_count("players_stats") == 2
    assert emulator.quota_used == 1  # the injected failure never reached the API


# Data -------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_data() -> None:
    def truth(seed: int) -> list[dict[str, Any]]:
        return WMSPanelEmulator(seed=seed, anchor=ANCHOR).truth_long_rows("players_stats")

    assert truth(7) == truth(7)
    assert truth(7) != truth(8)


def test_volume_options_scale_the_data() -> None:
    small = WMSPanelEmulator(seed=1, anchor=ANCHOR, data_slices=1, days=10, players=3)
    large = WMSPanelEmulator(seed=1, anchor=ANCHOR, data_slices=4, days=100, players=30)
    assert large.long_row_count("players_stats") > 30 * small.long_row_count("players_stats")
    assert {r["player"] for r in large.truth_long_rows("players_stats")} >= {"Player 30", "Unknown"}


def test_anchor_defaults_to_today_utc() -> None:
    assert WMSPanelEmulator().anchor == dt.datetime.now(dt.timezone.utc).date()


@pytest.mark.parametrize(
    "options",
    [{"days": 0}, {"data_slices": 0}, {"usage_ratio": 1.5}, {"max_range_days": 0}, {"quota_reply": "503"}, {"day_order": "random"}],
)
def test_invalid_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WMSPanelEmulator(**options)


def test_wmspanel_is_registered() -> None:
    assert emulator_class("wmspanel") is WMSPanelEmulator


@pytest.mark.skipif(os.environ.get("EMULATOR_BIG") != "1", reason="set EMULATOR_BIG=1 to time 1M long rows")
def test_a_million_long_rows(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    emulator = WMSPanelEmulator(data_slices=10, days=3650, players=25, devices=25)
    rows = emulator.long_row_count("players_stats") + emulator.long_row_count("devices_stats")
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n{rows:,} WMSPanel long rows generated in {elapsed:.2f} s")
    assert rows > 900_000

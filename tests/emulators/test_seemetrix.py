"""The Seemetrix emulator over real loopback HTTP, checked against its docs and its ground truth."""

from __future__ import annotations

import email.utils
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from emulators import emulator_class
from emulators.framework import EmulatorServer, Fault
from emulators.seemetrix import AGE_NAMES, EMOTION_NAMES, GENDER_NAMES, SeemetrixEmulator

ANCHOR = datetime(2024, 5, 10, 12, 30, tzinfo=timezone.utc)
KEY = "test-user-key"
RANGE = {"b": "2024/05/07 00:00:00", "e": "2024/05/10 12:30:00", "tzo": "0"}
B, E = datetime(2024, 5, 7, tzinfo=timezone.utc), ANCHOR
ALL_FLAGS = dict.fromkeys(("sex", "age", "movies", "intervals"), "1")

Served = tuple[SeemetrixEmulator, "Client"]


class Client:
    """GETs under the emulator's /api with the key, as a tap would send them."""

    def __init__(self, server: EmulatorServer, session: requests.Session) -> None:
        self.base = f"{server.url}/api"
        self.session = session

    def get(self, path: str, key: str | None = KEY, **params: Any) -> requests.Response:  # noqa: ANN401
        query = {**params, **({"key": key} if key is not None else {})}
        return self.session.get(self.base + path, params=query, timeout=10)

    def json(self, path: str, **params: Any) -> Any:  # noqa: ANN401
        response = self.get(path, **params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start emulators with the given options (anchored at ANCHOR unless told otherwise)."""
    servers: list[EmulatorServer] = []
    sessions: list[requests.Session] = []

    def start(**options: Any) -> Served:  # noqa: ANN401
        app = SeemetrixEmulator(**{"seed": 1, "anchor": ANCHOR, "days": 3, "sessions_per_day": 30, **options})
        servers.append(EmulatorServer(app).start())
        sessions.append(requests.Session())
        return app, Client(servers[-1], sessions[-1])

    yield start
    for session in sessions:
        session.close()
    for server in servers:
        server.stop()


def tree(client: Client, path: str, **params: Any) -> dict[str, Any]:  # noqa: ANN401
    return client.json(f"/v2/statistics/user/632/{path}/", **{**RANGE, **params})


def leaves(node: dict[str, Any], depth: int) -> Iterator[dict[str, Any]]:
    children = node["o"].values() if isinstance(node["o"], dict) else node["o"]
    if depth == 0:
        yield node
    for child in children:
        yield from leaves(child, depth - 1)


# --- the docs' rules: key, ids, trailing slash --------------------------------------------------------


def test_seemetrix_is_registered() -> None:
    assert emulator_class("seemetrix") is SeemetrixEmulator


@pytest.mark.parametrize(
    "path",
    [
        "/user/632/devices/",
        "/user/632/counters",
        "/statistics/user/632/",
        "/statistics/user/632/raw/data/",
        "/v2/statistics/user/632/devices/",
    ],
)
def test_a_wrong_or_missing_key_is_401(serve: Callable[..., Served], path: str) -> None:
    _, client = serve()
    assert client.get(path, key="nope", **RANGE).status_code == 401
    assert client.get(path, key=None, **RANGE).status_code == 401
    assert client.get(path, **RANGE).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/user/631/devices/",
        "/user/631/counters",
        "/statistics/user/631/",
        "/statistics/user/x/raw/data/",
        "/v2/statistics/user/631/devices/",
        "/statistics/device/1/",
    ],
)
def test_a_wrong_user_or_device_id_is_403(serve: Callable[..., Served], path: str) -> None:
    _, client = serve()
    assert client.get(path, **RANGE).status_code == 403


def test_a_device_filter_the_user_does_not_own_is_403(serve: Callable[..., Served]) -> None:
    app, client = serve()
    assert client.get("/statistics/user/632/raw/data/", device_id=1, **RANGE).status_code == 403
    assert client.get("/v2/statistics/user/632/devices/", d=1, **RANGE).status_code == 403
    assert client.get("/v2/statistics/user/632/devices/", d=app.device_ids()[0], **RANGE).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/user/632/devices",
        "/statistics/user/632",
        "/statistics/user/632/raw/data",
        "/v2/statistics/user/632/devices",
        f"/statistics/device/{0}",
    ],
)
def test_dropping_the_trailing_slash_is_404(serve: Callable[..., Served], path: str) -> None:
    app, client = serve()
    path = path.replace("/0", f"/{app.device_ids()[0]}")
    assert client.get(path, **RANGE).status_code == 404
    assert client.get(path + "/", **RANGE).status_code == 200


@pytest.mark.parametrize(
    ("mode", "without", "with_slash"), [("forbidden", 200, 404), ("required", 404, 200), ("either", 200, 200)]
)
def test_counters_slash_modes(serve: Callable[..., Served], mode: str, without: int, with_slash: int) -> None:
    _, client = serve(counters_slash=mode)
    assert client.get("/user/632/counters").status_code == without
    assert client.get("/user/632/counters/").status_code == with_slash


def test_unknown_routes_and_methods(serve: Callable[..., Served]) -> None:
    _, client = serve()
    assert client.get("/user/632/nothing/").status_code == 404
    assert client.get("/v2/statistics/user/632/planets/").status_code == 404
    assert client.session.post(client.base + "/user/632/devices/", params={"key": KEY}).status_code == 405


# --- devices and counters ------------------------------------------------------------------------------


def test_devices_are_listed_by_status_with_the_docs_keys(serve: Callable[..., Served]) -> None:
    app, client = serve(devices=5)
    body = client.json("/user/632/devices/")
    assert set(body) == {"online", "online_total", "offline", "offline_total", "frozen", "frozen_total"}
    listed = [device for status in ("online", "offline", "frozen") for device in body[status]]
    assert sorted(device["d"] for device in listed) == app.device_ids()
    assert sum(body[f"{status}_total"] for status in ("online", "offline", "frozen")) == 5
    for status in ("online", "offline", "frozen"):
        for device in body[status]:
            assert {"acl", "created", "d", "f", "ip", "k", "modified", "n", "o", "or", "sid"} <= set(device)
            assert device["o"] == (status == "online") and device["f"] == (status == "frozen")
            assert email.utils.parsedate_to_datetime(device["created"]) <= email.utils.parsedate_to_datetime(
                device["modified"]
            )
            assert device["created"].endswith(" GMT")
            assert ("s" in device) == (device["sid"] != 0)
            assert app.user_id in device["acl"]
    assert body["offline"][0]["ip"] == "-"


def test_counters_count_views_of_all_time_and_of_the_current_periods(serve: Callable[..., Served]) -> None:
    app, client = serve()
    body = client.json("/user/632/counters")
    views = [s for s in app.truth_sessions() if s["viewed"]]
    assert body["usr_num"] == len(views) > 0
    assert body["usr_cur_month"] == sum(s["start"] >= ANCHOR.replace(day=1, hour=0, minute=0) for s in views)
    assert body["usr_cur_day"] == sum(s["start"] >= ANCHOR.replace(hour=0, minute=0) for s in views)
    assert body["usr_cur_hour"] == sum(s["start"] >= ANCHOR.replace(minute=0) for s in views)
    assert body["dev_num"] == 3 and body["online_device_num"] == 1 and body["movies_num"] == 6
    assert body["avg_duration"] == round(sum(s["duration_ms"] for s in views) / len(views) / 1000, 2)


# --- hourly statistics ---------------------------------------------------------------------------------


def test_hourly_statistics_follow_the_docs_shape(serve: Callable[..., Served]) -> None:
    app, client = serve()
    body = client.json("/statistics/user/632/", **RANGE, **ALL_FLAGS)
    assert body["begin"] == "2024/05/07 00:00:00" and body["end_iso"] == "2024-05-10T12:30:00+00:00"
    assert body["total"] == len(body["objects"]) > 24
    units = [obj["i"] for obj in body["objects"]]
    assert units == sorted(units, key=lambda i: (i["y"], i["m"], i["d"], i["h"]))
    first = body["objects"][0]
    assert set(first) == {"i", "t", "fl", "ml", "us", "k", "m", "m2", "o", "u", "v", "va", "ia"} | {
        g + a for g in "fmu" for a in ("k", "m", "m2", "o", "u")
    }
    for obj in body["objects"]:
        assert obj["t"] == obj["fl"] + obj["ml"] + obj["us"] == obj["k"] + obj["m"] + obj["m2"] + obj["o"] + obj["u"]
        assert obj["fl"] == sum(obj[f"f{a}"] for a in ("k", "m", "m2", "o", "u"))
    totals = body["total_counters"]
    assert totals["total"] == sum(obj["t"] for obj in body["objects"])
    assert (totals["middle"], totals["middle2"]) == (
        sum(obj["m"] for obj in body["objects"]),
        sum(obj["m2"] for obj in body["objects"]),
    )


def test_hourly_statistics_give_only_the_counters_asked_for(serve: Callable[..., Served]) -> None:
    _, client = serve()
    plain = client.json("/statistics/user/632/", **RANGE)["objects"][0]
    assert set(plain) == {"i", "t"}
    assert set(client.json("/statistics/user/632/", **RANGE, sex="1")["objects"][0]) == {"i", "t", "fl", "ml", "us"}
    assert set(client.json("/statistics/user/632/", **RANGE, movies="1")["objects"][0]) == {"i", "t", "v", "va"}


def test_hourly_statistics_arrangements(serve: Callable[..., Served]) -> None:
    _, client = serve()
    by_weekday = client.json("/statistics/user/632/", **RANGE, day="1")["objects"]
    assert {tuple(obj["i"]) for obj in by_weekday} == {("d",)} and all(1 <= obj["i"]["d"] <= 7 for obj in by_weekday)
    by_hour = client.json("/statistics/user/632/", **RANGE, hour="1")["objects"]
    assert len(by_hour) <= 24 and {tuple(obj["i"]) for obj in by_hour} == {("h",)}
    by_day = client.json("/statistics/user/632/", **RANGE, year="1", month="1", day="1")["objects"]
    assert [obj["i"]["d"] for obj in by_day] == [7, 8, 9, 10]
    assert sum(obj["t"] for obj in by_day) == sum(obj["t"] for obj in by_weekday) == sum(obj["t"] for obj in by_hour)


def test_hours_with_faces_but_no_views_are_listed_with_zero(serve: Callable[..., Served]) -> None:
    app, client = serve(days=5, sessions_per_day=4)
    objects = client.json("/statistics/user/632/", **{**RANGE, "b": "2024/05/05 12:30:00"})["objects"]
    hours = Counter()
    for session in app.truth_sessions():
        hours[session["start"].replace(minute=0, second=0, microsecond=0)] += session["viewed"]
    assert {(o["i"]["d"], o["i"]["h"]): o["t"] for o in objects} == {(h.day, h.hour): v for h, v in hours.items()}
    assert 0 in {o["t"] for o in objects}  # at least one hour of faces that never looked


def test_tzo_shifts_the_range_and_the_hours(serve: Callable[..., Served]) -> None:
    _, client = serve()
    utc = client.json("/statistics/user/632/", **RANGE)
    shifted = client.json("/statistics/user/632/", b="2024/05/07 03:00:00", e="2024/05/10 15:30:00", tzo="3")
    assert shifted["begin_iso"] == "2024-05-07T03:00:00+03:00"
    assert [o["t"] for o in shifted["objects"]] == [o["t"] for o in utc["objects"]]
    assert shifted["objects"][0]["i"]["h"] == (utc["objects"][0]["i"]["h"] + 3) % 24


def test_a_missing_tzo_means_the_servers_zone(serve: Callable[..., Served]) -> None:
    _, client = serve(default_tzo=3)
    without = client.json("/statistics/user/632/", b=RANGE["b"], e=RANGE["e"])
    assert without["begin_iso"].endswith("+03:00")


@pytest.mark.parametrize(
    "params", [{"b": "2024-05-07", "e": "2024/05/08 00:00:00"}, {"b": "2024/05/07 00:00:00"}, {"tzo": "x"}]
)
def test_bad_ranges_are_400(serve: Callable[..., Served], params: dict[str, str]) -> None:
    _, client = serve()
    response = client.get("/statistics/user/632/", **{**RANGE, **params} if "tzo" in params else params)
    assert response.status_code == 400
    assert response.json()["ok"] == 0


def test_last_week_is_the_week_up_to_this_hour(serve: Callable[..., Served]) -> None:
    _, client = serve(days=10)
    body = client.json("/statistics/user/632/", last_week="", tzo="0")
    assert (body["begin"], body["end"]) == ("2024/05/03 12:00:00", "2024/05/10 12:00:00")


# --- raw sessions --------------------------------------------------------------------------------------


def test_raw_sessions_are_the_ground_truth_in_the_docs_form(serve: Callable[..., Served]) -> None:
    app, client = serve()
    objects = client.json("/statistics/user/632/raw/data/", **RANGE)["objects"]
    truth = app.truth_sessions()
    assert len(objects) == len(truth) == 270
    for served, session in zip(objects, truth, strict=True):
        assert set(served) == {"a", "at", "b", "d", "e", "em", "i", "o", "s", "v"}
        assert (served["d"], served["o"], served["i"], served["a"], served["s"]) == (
            session["device_id"],
            session["session_number"],
            session["duration_ms"],
            session["age"],
            session["gender"],
        )
        assert served["b"] == session["start"].replace(tzinfo=None).isoformat(timespec="microseconds")
        assert sum(i["d"] for i in served["at"]) == sum(i["d"] for i in served["em"]) == served["i"]
        assert {i["a"] for i in served["at"]} <= {0, 1} and (1 in {i["a"] for i in served["at"]}) == session["viewed"]
        assert {i["e"] for i in served["em"]} <= set(EMOTION_NAMES)
        assert all(m["s"] >= 0 and m["s"] + m["d"] <= served["i"] for m in served["v"])
    assert {o["a"] for o in objects} <= set(AGE_NAMES) and {o["s"] for o in objects} <= set(GENDER_NAMES)
    assert len({o["a"] for o in objects}) == 5 and -1 in {o["s"] for o in objects}


def test_raw_sessions_filter_by_device_and_movie(serve: Callable[..., Served]) -> None:
    app, client = serve()
    device = app.device_ids()[1]
    mine = client.json("/statistics/user/632/raw/data/", device_id=device, **RANGE)["objects"]
    assert {o["d"] for o in mine} == {device} and len(mine) == 90
    with_movie = client.json("/statistics/user/632/raw/data/", movie_id=2, **RANGE)["objects"]
    assert with_movie and all(2 in {m["i"] for m in o["v"]} for o in with_movie)


def test_the_same_seed_gives_the_same_sessions() -> None:
    def fingerprint(app: SeemetrixEmulator) -> list[tuple]:
        return [
            (s["device_id"], s["session_number"], s["start"], s["attention"], s["movies"]) for s in app.truth_sessions()
        ]

    assert fingerprint(SeemetrixEmulator(seed=4, anchor=ANCHOR)) == fingerprint(
        SeemetrixEmulator(seed=4, anchor=ANCHOR)
    )
    assert fingerprint(SeemetrixEmulator(seed=4, anchor=ANCHOR)) != fingerprint(
        SeemetrixEmulator(seed=5, anchor=ANCHOR)
    )


def test_volume_options_size_the_data() -> None:
    app = SeemetrixEmulator(anchor=ANCHOR, devices=4, days=2.5, sessions_per_day=10)
    assert len(app.device_ids()) == 4 and app.session_count() == 4 * 25
    starts = [s["start"] for s in app.truth_sessions()]
    assert min(starts) >= ANCHOR - timedelta(days=2.5) and max(starts) < ANCHOR


@pytest.mark.parametrize("mode", ["both", "start", "end", "neither"])
def test_range_ends_modes_on_sessions_that_start_exactly_on_b_and_e(serve: Callable[..., Served], mode: str) -> None:
    app, client = serve(range_ends=mode, days=1, sessions_per_day=2)
    device = app.device_ids()[0]
    on_b = app.add_session(device, datetime(2024, 5, 10, 1, tzinfo=timezone.utc))
    on_e = app.add_session(device, datetime(2024, 5, 10, 2, tzinfo=timezone.utc))
    raw = client.json("/statistics/user/632/raw/data/", b="2024/05/10 01:00:00", e="2024/05/10 02:00:00", tzo="0")
    numbers = {o["o"] for o in raw["objects"]}
    assert (on_b["session_number"] in numbers) == (mode in ("both", "start"))
    assert (on_e["session_number"] in numbers) == (mode in ("both", "end"))


@pytest.mark.parametrize("selection", ["start", "end", "overlap"])
def test_raw_selection_by_start_end_or_overlap(serve: Callable[..., Served], selection: str) -> None:
    app, client = serve(raw_selects_by=selection, days=1, sessions_per_day=1)
    device = app.device_ids()[0]
    across = app.add_session(device, datetime(2024, 5, 10, 1, 59, 59, tzinfo=timezone.utc))  # ends after 02:00
    raw = client.json("/statistics/user/632/raw/data/", b="2024/05/10 02:00:00", e="2024/05/10 03:00:00", tzo="0")
    found = across["session_number"] in {o["o"] for o in raw["objects"]}
    assert found == (selection in ("end", "overlap"))


# --- the v2 tree ----------------------------------------------------------------------------------------


def test_the_tree_follows_the_docs_shape(serve: Callable[..., Served]) -> None:
    app, client = serve()
    body = tree(client, "devices/dates/emotions")
    assert (
        body["ok"] == 1
        and body["levels"] == ["devices", "dates", "emotions"]
        and body["path"] == "devices/dates/emotions"
    )
    assert (body["page"], body["pages_total"], body["obj_in_page"], body["user_id"]) == (0, 1, 10, 632)
    assert body["dt_format"] == "YYYY-MM-DD"
    root = body["data"]
    assert root["t"] == "root" and isinstance(root["v"], float) and isinstance(root["ots"], float)
    device = root["o"][0]
    assert device["t"] == "device" and device["n"] == str(app.device_ids()[0]) and isinstance(device["v"], float)
    date = device["o"][0]
    assert date["t"] == "date" and date["n"] == "2024-05-07" and isinstance(date["v"], int) and "ots" in date
    assert [leaf["n"] for leaf in date["o"]] == ["angry", "happy", "neutral", "surprise", "undefined"]
    assert all("ots" not in leaf and leaf["t"] == "emotion" for leaf in date["o"])


def test_to_object_keys_children_by_name(serve: Callable[..., Served]) -> None:
    _, client = serve()
    as_list = tree(client, "devices/genders", to_object="0")["data"]
    as_object = tree(client, "devices/genders", to_object="1")["data"]
    assert isinstance(as_object["o"], dict)
    assert list(as_object["o"]) == [device["n"] for device in as_list["o"]]
    first_female = list(as_object["o"].values())[0]["o"]["female"]
    assert {**first_female, "o": []} == as_list["o"][0]["o"][0]


def test_the_top_level_is_paged_from_zero(serve: Callable[..., Served]) -> None:
    app, client = serve(devices=5)
    pages = [tree(client, "devices/dates", page=str(page), obj_in_page="2") for page in range(4)]
    assert [p["pages_total"] for p in pages] == [3, 3, 3, 3]
    names = [device["n"] for page in pages for device in page["data"]["o"]]
    assert names == [str(device) for device in app.device_ids()]
    assert pages[3]["data"]["o"] == []
    assert len({p["data"]["v"] for p in pages}) == 1  # the root counts every page's devices


def test_nodes_without_views_are_not_decomposed(serve: Callable[..., Served]) -> None:
    app, client = serve(days=1, sessions_per_day=1)  # nothing before 2024-05-09 12:30
    device = app.device_ids()[0]
    looked_away, looked = 0x1000, 0x1000 | 1 << 22  # bits 22-25 say whether the face looked
    app.add_session(device, datetime(2024, 5, 8, 18, tzinfo=timezone.utc), bits=looked_away)
    app.add_session(device, datetime(2024, 5, 8, 20, tzinfo=timezone.utc), bits=looked)
    body = tree(
        client,
        "devices/dates/genders/ages",
        dt_format="YYYY-MM-DD HH",
        b="2024/05/08 00:00:00",
        e="2024/05/09 00:00:00",
    )
    (device_node,) = body["data"]["o"]
    dates = {date["n"]: date for date in device_node["o"]}
    assert (dates["2024-05-08 18"]["v"], dates["2024-05-08 18"]["ots"], dates["2024-05-08 18"]["o"]) == (0, 1, [])
    assert dates["2024-05-08 20"]["v"] == 1 and len(dates["2024-05-08 20"]["o"]) == 3


def test_below_a_viewer_level_only_viewers_count_and_ots_is_gone(serve: Callable[..., Served]) -> None:
    _, client = serve(days=5, sessions_per_day=4)
    body = tree(client, "genders/dates", b="2024/05/05 12:30:00")
    dates = [date for gender in body["data"]["o"] for date in gender["o"]]
    assert dates and all(date["v"] > 0 and "ots" not in date for date in dates)
    assert sum(date["v"] for date in dates) == body["data"]["v"]


def test_genders_ages_and_emotions_list_every_name_even_at_zero(serve: Callable[..., Served]) -> None:
    _, client = serve()
    body = tree(client, "genders/ages")
    assert [g["n"] for g in body["data"]["o"]] == ["female", "male", "undefined"]
    assert all(
        [a["n"] for a in g["o"]] == ["adult", "kid", "old", "undefined", "young"] for g in body["data"]["o"] if g["v"]
    )


@pytest.mark.parametrize(
    ("dt_format", "label"),
    [
        ("YYYY-MM-DD HH", "2024-05-08 13"),
        ("YYYY-MM", "2024-05"),
        ("YYYY", "2024"),
        ("MM", "05"),
        ("HH", "13"),
        ("DD", "3"),
    ],
)
def test_date_formats(serve: Callable[..., Served], dt_format: str, label: str) -> None:
    app, client = serve()
    app.add_session(app.device_ids()[0], datetime(2024, 5, 8, 13, 10, tzinfo=timezone.utc))  # a Wednesday
    body = tree(client, "dates", dt_format=dt_format, b="2024/05/08 13:00:00", e="2024/05/08 13:59:59")
    assert label in [date["n"] for date in body["data"]["o"]]
    assert len(body["data"]["o"]) == 1


def test_looping_and_ranges_over_six_months_are_refused(serve: Callable[..., Served]) -> None:
    _, client = serve()
    looping = client.get("/v2/statistics/user/632/devices/dates/devices/", **RANGE)
    assert looping.status_code == 400
    too_long = client.get("/v2/statistics/user/632/devices/", **{**RANGE, "b": "2023/11/01 00:00:00"})
    assert too_long.status_code == 400 and too_long.json()["ok"] == 0


def test_every_route_tells_the_same_story(serve: Callable[..., Served]) -> None:
    app, client = serve(devices=4)
    truth = app.truth_sessions(B, E)
    viewed = [s for s in truth if s["viewed"]]
    raw = client.json("/statistics/user/632/raw/data/", **RANGE)["objects"]
    assert len(raw) == len(truth)
    assert sum(1 in {i["a"] for i in o["at"]} for o in raw) == len(viewed)

    user_hours = client.json("/statistics/user/632/", **RANGE, **ALL_FLAGS)["objects"]
    device_hours = [
        obj
        for device in app.device_ids()
        for obj in client.json(f"/statistics/device/{device}/", **RANGE, **ALL_FLAGS)["objects"]
    ]
    demographic = tree(client, "devices/dates/genders/ages")["data"]
    emotions = tree(client, "devices/dates/emotions")["data"]
    movies = tree(client, "movies")["data"]
    counters = client.json("/user/632/counters")

    views = len(viewed)
    assert sum(o["t"] for o in user_hours) == sum(o["t"] for o in device_hours) == views
    assert sum(leaf["v"] for leaf in leaves(demographic, 4)) == sum(leaf["v"] for leaf in leaves(emotions, 3)) == views
    assert demographic["v"] == emotions["v"] == views == counters["usr_num"]
    assert demographic["ots"] == len(truth)
    assert sum(date["ots"] for date in leaves(demographic, 2)) == len(truth)
    duration = sum(s["duration_ms"] for s in viewed)
    assert (
        sum(leaf["vd"] for leaf in leaves(demographic, 4))
        == sum(leaf["vd"] for leaf in leaves(emotions, 3))
        == duration
    )
    assert sum(o["fl"] for o in user_hours) == sum(
        leaf["v"] for gender in leaves(demographic, 3) if gender["n"] == "female" for leaf in gender["o"]
    )
    assert sum(o["v"] for o in user_hours) == sum(m["v"] for m in movies["o"]) == sum(len(s["movies"]) for s in viewed)


# --- the framework around it -------------------------------------------------------------------------


def test_faults_and_the_request_counter_work(serve: Callable[..., Served]) -> None:
    app, client = serve()
    app.inject(Fault(kind="status", status=503, retry_after="1", path_regex="/raw/data/"))
    assert client.get("/statistics/user/632/raw/data/", **RANGE).status_code == 503
    assert client.get("/statistics/user/632/raw/data/", **RANGE).status_code == 200
    assert app.request_count("/raw/data/") == 2 and app.pending_faults == 0


@pytest.mark.parametrize(
    "options",
    [{"range_ends": "sometimes"}, {"raw_selects_by": "mood"}, {"counters_slash": "maybe"}, {"devices": -1}],
)
def test_invalid_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        SeemetrixEmulator(**options)


@pytest.mark.skipif(os.environ.get("EMULATOR_BIG") != "1", reason="set EMULATOR_BIG=1 to time 1M sessions")
def test_generating_a_million_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    app = SeemetrixEmulator(devices=10, days=365, sessions_per_day=274)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n{app.session_count():,} Seemetrix sessions generated in {elapsed:.2f} s")
    assert app.session_count() > 1_000_000
    assert elapsed < 10

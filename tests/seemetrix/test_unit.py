"""tap-seemetrix pieces on their own: each flattening and code mapping, requests and errors (requests-mock)."""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from singer_sdk.exceptions import ConfigValidationError

from taps_common.errors import APIRequestError, CredentialsError, SettingsError
from taps_common.timestamps import ceil_timestamp, floor_timestamp
from taps_common.windows import DateWindow, records_inside
from tap_seemetrix.client import (
    format_range_bound,
    range_params,
    refused_device,
)
from tap_seemetrix.streams import (
    TreeLeaf,
    age_group_of,
    as_count,
    as_milliseconds,
    attention_intervals,
    counters_row,
    date_label_start,
    device_row,
    device_rows,
    emotion_intervals,
    emotion_of,
    flatten_tree,
    gender_of,
    hourly_counters,
    ip_address_or_none,
    movie_intervals,
    period_start_of,
    rfc1123_to_utc_iso,
    session_row,
    tree_children,
)
from tap_seemetrix.tap import TapSeemetrix
from tests.helpers import run_sync

if t.TYPE_CHECKING:
    import requests_mock as rm

BASE = "https://analytics.3divi.ru/api"
KEY = "d482d4c3c4bd4dd796abccf726ae1266"
CONFIG = {
    "user_id": 632,
    "user_key": KEY,
    "start_date": "2017-09-12T00:00:00Z",
    "end_date": "2017-09-13T00:00:00Z",
    "max_tries": 2,
    "backoff_base_seconds": 0,
}
UTC = dt.timezone.utc
ANY_URL = re.compile(".")

# The docs' samples, as printed there.
DOCS_DEVICES = {
    "frozen": [
        {
            "acl": [436, 632],
            "created": "Fri, 08 Sep 2017 04:35:12 GMT",
            "d": 3035,
            "f": 1,
            "ip": "87.249.208.18",
            "k": "9909e1d0933740f0811913647e3662e8",
            "modified": "Fri, 15 Sep 2017 07:36:38 GMT",
            "n": "Device #1",
            "o": 0,
            "or": 0,
            "s": "bc862d09e7cb682c0d7e923d8c751d16",
            "sid": 2,
        }
    ],
    "frozen_total": 1,
    "offline": [
        {
            "acl": [632, 436],
            "created": "Thu, 27 Jul 2017 04:29:20 GMT",
            "d": 2899,
            "f": 0,
            "ip": "-",
            "k": "a4424dad66f144cb818823f90a40f35b",
            "modified": "Thu, 27 Jul 2017 04:29:20 GMT",
            "n": "Device #5",
            "o": 0,
            "or": 0,
            "sid": 0,
        }
    ],
    "offline_total": 1,
    "online": [
        {
            "acl": [436, 632],
            "created": "Thu, 07 Sep 2017 10:40:21 GMT",
            "d": 3024,
            "f": 0,
            "ip": "87.249.208.18",
            "k": "23f69c44cd964dcc9caac2d08217705d",
            "modified": "Fri, 15 Sep 2017 07:24:12 GMT",
            "n": "Device #3",
            "o": 1,
            "or": 0,
            "s": "ca514a44ddc4a77afff71541564fd958",
            "sid": 2,
        }
    ],
    "online_total": 1,
}
DOCS_SESSION = {
    "a": 1,
    "at": [{"a": 1, "d": 19334}, {"a": 0, "d": 1044}, {"a": 1, "d": 14853}],
    "b": "2019-07-01T11:16:07.052000",
    "d": 5315,
    "e": "2019-07-01T11:16:42.283000",
    "em": [{"d": 1458, "e": 3}, {"d": 3948, "e": 1}, {"d": 1221, "e": 0}, {"d": 1278, "e": -1}, {"d": 2020, "e": 2}],
    "i": 35231,
    "o": 1331,
    "s": 0,
    "v": [{"d": 35231, "i": 8482, "s": 0}, {"d": 35231, "i": 9457, "s": 0}],
}
DOCS_COUNTERS = {
    "avg_duration": 6.38,
    "dev_num": 3,
    "movies_num": 0,
    "online_device_num": 1,
    "usr_cur_day": 8,
    "usr_cur_hour": 1,
    "usr_cur_month": 324,
    "usr_num": 324,
}


def emotion_leaf(name: str, views: int, duration: int) -> dict[str, t.Any]:
    return {"n": name, "o": [], "t": "emotion", "v": views, "vd": duration}


# The docs' full sample (devices/dates/emotions), its month label swapped for a day.
DOCS_TREE = {
    "n": "root",
    "o": [
        {
            "n": "1842",
            "o": [
                {
                    "n": "2017-05-02",
                    "o": [
                        emotion_leaf("angry", 0, 0),
                        emotion_leaf("happy", 0, 0),
                        emotion_leaf("neutral", 63, 1359042),
                        emotion_leaf("surprise", 0, 0),
                        emotion_leaf("undefined", 0, 0),
                    ],
                    "ots": 63,
                    "otsd": 1359042,
                    "t": "date",
                    "v": 63,
                    "vd": 1359042,
                }
            ],
            "ots": 64.0,
            "otsd": 1360572,
            "t": "device",
            "v": 64.0,
            "vd": 1360572,
        }
    ],
    "ots": 63,
    "otsd": 1359042,
    "t": "root",
    "v": 63,
    "vd": 1359042,
}
EMOTION_LEVELS = ("devices", "dates", "emotions")


# --- devices ------------------------------------------------------------------------------------------


def test_rfc1123_dates_become_utc_iso() -> None:
    assert rfc1123_to_utc_iso("Fri, 08 Sep 2017 04:35:12 GMT") == "2017-09-08T04:35:12.000000+00:00"
    assert rfc1123_to_utc_iso("Fri, 08 Sep 2017 07:35:12 +0300") == "2017-09-08T04:35:12.000000+00:00"
    assert rfc1123_to_utc_iso("yesterday") is None
    assert rfc1123_to_utc_iso(None) is None


def test_a_dash_means_no_ip_address() -> None:
    assert ip_address_or_none("-") is None
    assert ip_address_or_none("") is None
    assert ip_address_or_none("87.249.208.18") == "87.249.208.18"


def test_device_row_names_every_flag_and_leaves_out_the_device_credentials() -> None:
    row = device_row(DOCS_DEVICES["frozen"][0], "frozen", include_keys=False)
    assert row == {
        "device_id": 3035,
        "name": "Device #1",
        "status": "frozen",
        "ip": "87.249.208.18",
        "acl": [436, 632],
        "created_at": "2017-09-08T04:35:12.000000+00:00",
        "modified_at": "2017-09-15T07:36:38.000000+00:00",
        "is_online": False,
        "is_frozen": True,
        "or_flag": 0,
        "sid": 2,
    }


def test_device_credentials_only_when_asked_and_none_where_absent() -> None:
    frozen = device_row(DOCS_DEVICES["frozen"][0], "frozen", include_keys=True)
    assert (frozen["device_key"], frozen["device_secret"]) == (
        "9909e1d0933740f0811913647e3662e8",
        "bc862d09e7cb682c0d7e923d8c751d16",
    )
    offline = device_row(DOCS_DEVICES["offline"][0], "offline", include_keys=True)
    assert offline["device_secret"] is None
    assert offline["ip"] is None


def test_device_rows_take_every_list_and_tag_the_status() -> None:
    rows = list(device_rows(DOCS_DEVICES, include_keys=False))
    assert [(r["device_id"], r["status"], r["is_online"]) for r in rows] == [
        (3024, "online", True),
        (2899, "offline", False),
        (3035, "frozen", False),
    ]
    assert list(device_rows({"online": None, "online_total": 0}, include_keys=False)) == []


# --- hourly statistics --------------------------------------------------------------------------------


def test_period_start_is_built_from_the_time_unit_id() -> None:
    assert period_start_of({"d": 15, "h": 8, "m": 9, "y": 2017}) == "2017-09-15T08:00:00.000000+00:00"


@pytest.mark.parametrize("unit", [{"d": 15, "m": 9, "y": 2017}, {"h": 3}, {"d": 31, "h": 0, "m": 2, "y": 2017}])
def test_a_time_unit_that_is_not_an_hour_of_a_date_is_an_error(unit: dict[str, int]) -> None:
    with pytest.raises(APIRequestError, match="not an hour of a date"):
        period_start_of(unit)


def test_hourly_counters_get_readable_names() -> None:
    unit = {
        "i": {},
        "t": 7,
        "fl": 4,
        "ml": 2,
        "us": 1,
        "k": 0,
        "m": 5,
        "m2": 1,
        "o": 1,
        "u": 0,
        "v": 3,
        "va": 2,
        "ia": 3.29,
    }
    unit.update({"fk": 0, "fm": 3, "fm2": 1, "mo": 1, "uu": 1})
    row = hourly_counters(unit)
    assert {k: row[k] for k in ("views", "female", "male", "undefined_gender")} == {
        "views": 7,
        "female": 4,
        "male": 2,
        "undefined_gender": 1,
    }
    assert {k: row[k] for k in ("kid", "young", "adult", "old", "undefined_age")} == {
        "kid": 0,
        "young": 5,
        "adult": 1,
        "old": 1,
        "undefined_age": 0,
    }
    assert (row["movie_views"], row["movie_views_va"], row["average_view_duration_seconds"]) == (3, 2, 3.29)
    assert (row["female_young"], row["female_adult"], row["male_old"], row["undefined_gender_undefined_age"]) == (
        3,
        1,
        1,
        1,
    )
    assert row["male_kid"] is None  # absent from the answer: null, never 0
    assert len(row) == 12 + 15


def test_hourly_counters_without_the_optional_flags_are_null() -> None:
    row = hourly_counters({"i": {}, "t": 0})
    assert row["views"] == 0
    assert {value for key, value in row.items() if key != "views"} == {None}


# --- raw sessions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "age", "gender"),
    [
        (0, "kid", "female"),
        (1, "young", "male"),
        (2, "adult", "unknown:2"),
        (3, "old", "unknown:3"),
        (-1, "undefined", "undefined"),
        (None, "undefined", "undefined"),
        (7, "unknown:7", "unknown:7"),
    ],
)
def test_age_and_gender_codes_become_words(code: int | None, age: str, gender: str) -> None:
    assert age_group_of(code) == age
    assert gender_of(code) == gender


@pytest.mark.parametrize(
    ("code", "emotion"),
    [
        (-1, "undefined"),
        (0, "neutral"),
        (1, "happy"),
        (2, "angry"),
        (3, "surprise"),
        (None, "undefined"),
        (9, "unknown:9"),
    ],
)
def test_emotion_codes_become_the_trees_words(code: int | None, emotion: str) -> None:
    assert emotion_of(code) == emotion


def test_attention_intervals_say_looking_and_carry_their_offsets() -> None:
    assert attention_intervals(DOCS_SESSION["at"]) == [
        {"looking": True, "offset_ms": 0, "duration_ms": 19334},
        {"looking": False, "offset_ms": 19334, "duration_ms": 1044},
        {"looking": True, "offset_ms": 20378, "duration_ms": 14853},
    ]
    assert attention_intervals(None) == []


def test_emotion_intervals_name_the_emotion() -> None:
    rows = emotion_intervals(DOCS_SESSION["em"])
    assert [r["emotion"] for r in rows] == ["surprise", "happy", "neutral", "undefined", "angry"]
    assert [r["offset_ms"] for r in rows] == [0, 1458, 5406, 6627, 7905]


def test_movies_keep_their_id_offset_and_duration() -> None:
    assert movie_intervals(DOCS_SESSION["v"]) == [
        {"movie_id": 8482, "offset_ms": 0, "duration_ms": 35231},
        {"movie_id": 9457, "offset_ms": 0, "duration_ms": 35231},
    ]


def test_session_row_is_the_docs_session_with_named_columns() -> None:
    row = session_row(DOCS_SESSION)
    assert {k: v for k, v in row.items() if not isinstance(v, list)} == {
        "device_id": 5315,
        "session_number": 1331,
        "started_at": "2019-07-01T11:16:07.052000+00:00",
        "ended_at": "2019-07-01T11:16:42.283000+00:00",
        "duration_ms": 35231,
        "age_group": "young",
        "gender": "female",
    }
    assert sum(i["duration_ms"] for i in row["attention_intervals"]) == DOCS_SESSION["i"]


# --- the v2 tree -----------------------------------------------------------------------------------


def test_counts_sent_as_floats_become_integers() -> None:
    assert (as_count(64.0), as_count(3), as_count(None)) == (64, 3, None)
    assert (as_milliseconds(1360572.0), as_milliseconds(12.5), as_milliseconds(None)) == (1360572, 12.5, None)


def test_children_come_as_a_list_or_an_object_keyed_by_name() -> None:
    as_list = {"o": [{"n": "a"}, {"n": "b"}]}
    as_object = {"o": {"a": {"n": "a"}, "b": {"n": "b"}}}
    assert tree_children(as_list) == tree_children(as_object) == [{"n": "a"}, {"n": "b"}]
    assert tree_children({"n": "leaf"}) == []


def test_the_docs_tree_flattens_to_one_leaf_per_emotion_with_every_levels_name() -> None:
    leaves = list(flatten_tree(DOCS_TREE, EMOTION_LEVELS))
    assert [leaf.names["emotions"] for leaf in leaves] == ["angry", "happy", "neutral", "surprise", "undefined"]
    neutral = leaves[2]
    assert neutral == TreeLeaf(
        names={"devices": "1842", "dates": "2017-05-02", "emotions": "neutral"},
        views=63,
        views_duration_ms=1359042,
        ots={"devices": (64, 1360572), "dates": (63, 1359042)},
    )


def test_to_object_trees_flatten_the_same() -> None:
    def keyed(node: dict[str, t.Any]) -> dict[str, t.Any]:
        return {**node, "o": {child["n"]: keyed(child) for child in node["o"]}}

    assert list(flatten_tree(keyed(DOCS_TREE), EMOTION_LEVELS)) == list(flatten_tree(DOCS_TREE, EMOTION_LEVELS))


def test_a_node_with_no_views_gives_zero_leaves_that_keep_its_ots() -> None:
    date = {"n": "2017-05-03", "o": [], "ots": 4, "otsd": 9000, "t": "date", "v": 0, "vd": 0}
    root = {"n": "root", "o": [{"n": "7", "o": [date], "ots": 4, "otsd": 9000, "t": "device", "v": 0.0, "vd": 0}]}
    leaves = list(flatten_tree(root, ("devices", "dates", "genders", "ages")))
    assert len(leaves) == 3 * 5
    assert {(leaf.views, leaf.views_duration_ms, leaf.ots["dates"]) for leaf in leaves} == {(0, 0, (4, 9000))}
    assert {(leaf.names["genders"], leaf.names["ages"]) for leaf in leaves} >= {("female", "kid"), ("undefined", "old")}


def test_a_device_with_no_views_gives_no_leaves() -> None:
    root = {"n": "root", "o": [{"n": "7", "o": [], "ots": 2, "otsd": 10, "t": "device", "v": 0, "vd": 0}]}
    assert list(flatten_tree(root, EMOTION_LEVELS)) == []


@pytest.mark.parametrize(
    ("label", "start"),
    [("2017-06-02", "2017-06-02T00:00:00.000000+00:00"), ("2017-06-02 13", "2017-06-02T13:00:00.000000+00:00")],
)
def test_date_labels_give_the_period_start(label: str, start: str) -> None:
    assert date_label_start(label) == start


@pytest.mark.parametrize("label", ["05", "2017-06", "2017", "4"])
def test_other_date_labels_are_errors(label: str) -> None:
    with pytest.raises(APIRequestError, match=re.escape(repr(label))):
        date_label_start(label)


def test_counters_get_readable_names() -> None:
    assert counters_row(DOCS_COUNTERS) == {
        "average_view_duration_seconds": 6.38,
        "devices": 3,
        "movies": 0,
        "online_devices": 1,
        "views_current_hour": 1,
        "views_current_day": 8,
        "views_current_month": 324,
        "views_total": 324,
        **{
            name: None
            for name in counters_row({})
            if "_" in name and name.split("_")[0] in ("female", "male", "undefined")
        },
    }
    assert counters_row({**DOCS_COUNTERS, "fk": 2, "mo": 1})["female_kid"] == 2


# --- ranges and windows ---------------------------------------------------------------------------


def test_range_bounds_use_the_docs_format() -> None:
    assert format_range_bound(dt.datetime(2017, 9, 12, 12, 0, 5, 999, tzinfo=UTC)) == "2017/09/12 12:00:05"


def test_a_window_is_asked_a_second_wider_at_the_start_and_rounded_up_at_the_end() -> None:
    window = DateWindow(dt.datetime(2017, 9, 12, tzinfo=UTC), dt.datetime(2017, 9, 13, 0, 0, 0, 1, tzinfo=UTC))
    assert range_params(window) == {"b": "2017/09/11 23:59:59", "e": "2017/09/13 00:00:01", "tzo": 0}
    assert range_params(window, dt.timedelta(minutes=10))["e"] == "2017/09/13 00:10:01"


def test_floor_and_ceil_to_whole_steps() -> None:
    moment = dt.datetime(2017, 9, 12, 13, 45, 10, tzinfo=UTC)
    assert floor_timestamp(moment, dt.timedelta(hours=1)) == dt.datetime(2017, 9, 12, 13, tzinfo=UTC)
    assert floor_timestamp(moment, dt.timedelta(days=1)) == dt.datetime(2017, 9, 12, tzinfo=UTC)
    assert ceil_timestamp(moment, dt.timedelta(hours=1)) == dt.datetime(2017, 9, 12, 14, tzinfo=UTC)
    assert ceil_timestamp(moment.replace(minute=0, second=0), dt.timedelta(hours=1)) == moment.replace(
        minute=0, second=0
    )


def test_records_inside_keeps_start_drops_end() -> None:
    window = DateWindow(dt.datetime(2017, 9, 12, tzinfo=UTC), dt.datetime(2017, 9, 13, tzinfo=UTC))
    records = [{"at": f"2017-09-1{day}T00:00:00.000000+00:00"} for day in (1, 2, 3)]
    assert [r["at"][:10] for r in records_inside(records, "at", window)] == ["2017-09-12"]


def refused(url: str) -> requests.Response:
    response = requests.Response()
    response.request = requests.Request("GET", url).prepare()
    return response


@pytest.mark.parametrize(
    ("url", "device"),
    [
        (f"{BASE}/statistics/device/3024/?key={KEY}&tzo=0", "3024"),
        (f"{BASE}/v2/statistics/user/632/devices/?key={KEY}&d=1842", "1842"),
        (f"{BASE}/statistics/user/632/raw/data/?device_id=5315&key={KEY}", "5315"),
        (f"{BASE}/statistics/user/632/?key={KEY}", None),
    ],
)
def test_the_refused_device_is_read_from_the_path_or_query(url: str, device: str | None) -> None:
    assert refused_device(refused(url)) == device


# --- requests and errors (requests-mock) ---------------------------------------------------------------


def mock_api(requests_mock: rm.Mocker, devices: dict[str, t.Any] | None = None) -> None:
    """Every route answering its docs' shape, with no data."""
    requests_mock.get(f"{BASE}/user/632/devices/", json=devices if devices is not None else DOCS_DEVICES)
    requests_mock.get(f"{BASE}/user/632/counters", json=DOCS_COUNTERS)
    requests_mock.get(re.compile(r"/statistics/(device|user)/\d+/(\?|$)"), json={"objects": [], "total": 0})
    requests_mock.get(f"{BASE}/statistics/user/632/raw/data/", json={"objects": []})
    requests_mock.get(
        re.compile(r"/v2/statistics/user/632/"),
        json={"ok": 1, "page": 0, "pages_total": 0, "data": {"n": "root", "o": []}},
    )


def queries(requests_mock: rm.Mocker, path_pattern: str) -> list[dict[str, list[str]]]:
    return [
        parse_qs(urlsplit(request.url).query)
        for request in requests_mock.request_history
        if re.search(path_pattern, urlsplit(request.url).path)
    ]


def test_the_key_goes_in_the_query_and_paths_keep_their_trailing_slash(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    run_sync(TapSeemetrix, CONFIG)
    for request in requests_mock.request_history:
        assert parse_qs(urlsplit(request.url).query)["key"] == [KEY]
        assert "Authorization" not in request.headers
        path = urlsplit(request.url).path
        assert path.endswith("/") or path.endswith("/counters")


def test_statistics_ask_every_counter_hourly_in_utc(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    run_sync(TapSeemetrix, CONFIG)
    (query,) = queries(requests_mock, r"/statistics/user/632/$")
    assert {name: query[name] for name in ("tzo", "b", "e")} == {
        "tzo": ["0"],
        "b": ["2017/09/11 23:59:59"],
        "e": ["2017/09/13 00:00:00"],
    }
    assert {name for name, value in query.items() if value == ["1"]} >= {
        "year",
        "month",
        "day",
        "hour",
        "sex",
        "age",
        "movies",
        "intervals",
    }


def test_hourly_rows_come_from_the_docs_answer(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    objects = [
        {"i": {"d": 11, "h": 23, "m": 9, "y": 2017}, "t": 9},  # the second before the window
        {"i": {"d": 12, "h": 12, "m": 9, "y": 2017}, "t": 3},
        {"i": {"d": 12, "h": 16, "m": 9, "y": 2017}, "t": 6},
        {"i": {"d": 13, "h": 0, "m": 9, "y": 2017}, "t": 1},  # the window's end, if inclusive
    ]
    requests_mock.get(f"{BASE}/statistics/user/632/", json={"objects": objects, "total": 4})
    result = run_sync(TapSeemetrix, CONFIG)
    rows = result.records["user_statistics"]
    assert [(r["period_start"][11:13], r["views"], r["user_id"]) for r in rows] == [("12", 3, 632), ("16", 6, 632)]


def test_tree_pages_are_zero_based_and_stop_at_pages_total(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)

    def page(request: t.Any, context: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
        number = int(parse_qs(urlsplit(request.url).query)["page"][0])
        device = {**DOCS_TREE["o"][0], "n": str(1842 + number)}
        device["o"] = [{**device["o"][0], "n": "2017-09-12"}]
        return {"ok": 1, "page": number, "pages_total": 3, "obj_in_page": 1, "data": {**DOCS_TREE, "o": [device]}}

    requests_mock.get(f"{BASE}/v2/statistics/user/632/devices/dates/emotions/", json=page)
    result = run_sync(TapSeemetrix, {**CONFIG, "tree_devices_per_page": 1})
    asked = queries(requests_mock, r"/devices/dates/emotions/$")
    assert [q["page"] for q in asked] == [["0"], ["1"], ["2"]]
    assert {q["obj_in_page"][0] for q in asked} == {"1"}
    assert {q["to_object"][0] for q in asked} == {"0"}
    assert {q["dt_format"][0] for q in asked} == {"YYYY-MM-DD"}
    rows = result.records["emotion_statistics"]
    assert sorted({r["device_id"] for r in rows}) == [1842, 1843, 1844]
    neutral = next(r for r in rows if r["emotion"] == "neutral")
    assert neutral == {
        "device_id": 1842,
        "date": "2017-09-12",
        "period_start": "2017-09-12T00:00:00.000000+00:00",
        "emotion": "neutral",
        "views": 63,
        "views_duration_ms": 1359042,
        "ots": 63,
        "ots_duration_ms": 1359042,
    }


def test_ok_zero_inside_a_200_is_an_error(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    requests_mock.get(re.compile(r"/v2/"), json={"ok": 0, "error": "range too long"})
    with pytest.raises(APIRequestError, match="ok=0.*range too long"):
        run_sync(TapSeemetrix, CONFIG)


def test_wrong_key_names_user_key(requests_mock: rm.Mocker) -> None:
    requests_mock.get(ANY_URL, status_code=401, text="Unauthorized")
    with pytest.raises(CredentialsError, match="`user_key`") as failure:
        run_sync(TapSeemetrix, CONFIG)
    assert "user_id" not in str(failure.value)
    assert KEY not in str(failure.value)
    assert requests_mock.call_count == 1


def test_wrong_user_names_user_id(requests_mock: rm.Mocker) -> None:
    requests_mock.get(ANY_URL, status_code=403, text="Forbidden")
    with pytest.raises(CredentialsError, match="refused user 632.*`user_id`") as failure:
        run_sync(TapSeemetrix, CONFIG)
    assert "user_key" not in str(failure.value)


def test_a_refused_device_names_it_and_device_ids(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    requests_mock.get(f"{BASE}/statistics/device/2899/", status_code=403, text="Forbidden")
    with pytest.raises(CredentialsError, match="refused device 2899.*`device_ids`"):
        run_sync(TapSeemetrix, CONFIG)


def test_a_404_points_at_api_url(requests_mock: rm.Mocker) -> None:
    requests_mock.get(ANY_URL, status_code=404, text="<h1>Not Found</h1>")
    with pytest.raises(APIRequestError, match="HTTP 404.*`api_url`") as failure:
        run_sync(TapSeemetrix, CONFIG)
    assert KEY not in str(failure.value)


def test_counters_are_asked_as_written_then_with_the_slash(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    requests_mock.get(f"{BASE}/user/632/counters", status_code=404, text="<h1>Not Found</h1>")
    requests_mock.get(f"{BASE}/user/632/counters/", json=DOCS_COUNTERS)
    result = run_sync(TapSeemetrix, CONFIG)
    assert result.records["counters"][0]["views_total"] == 324
    asked = [urlsplit(r.url).path for r in requests_mock.request_history if "counters" in r.url]
    assert asked == ["/api/user/632/counters", "/api/user/632/counters/"]


def test_counters_404_with_the_slash_too_is_an_error(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    requests_mock.get(re.compile(r"/counters/?(\?|$)"), status_code=404, text="nope")
    with pytest.raises(APIRequestError, match="404"):
        run_sync(TapSeemetrix, CONFIG)


def test_an_unknown_configured_device_stops_the_sync_naming_it(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    with pytest.raises(SettingsError, match="`device_ids`.*9999"):
        run_sync(TapSeemetrix, {**CONFIG, "device_ids": [3024, 9999]})


def test_configured_devices_are_asked_one_by_one(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    result = run_sync(TapSeemetrix, {**CONFIG, "device_ids": [3035, 3024]})
    assert [r["device_id"] for r in result.records["devices"]] == [3024, 3035]
    assert [q["device_id"] for q in queries(requests_mock, r"/raw/data/$")] == [["3035"], ["3024"]]
    assert [q["d"] for q in queries(requests_mock, r"/dates/genders/ages/$")] == [["3035"], ["3024"]]
    device_paths = {urlsplit(r.url).path for r in requests_mock.request_history if "/statistics/device/" in r.url}
    assert device_paths == {"/api/statistics/device/3024/", "/api/statistics/device/3035/"}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"user_key": None}, "user_key"),
        ({"user_key": "   "}, "user_key"),
        ({"user_id": None}, "user_id"),
        ({"user_id": 0}, "user_id"),
        ({"user_id": "abc"}, "user_id"),
        ({"device_ids": []}, "device_ids"),
        ({"device_ids": [1, 1]}, "device_ids"),
        ({"device_ids": ["W123"]}, "device_ids"),
        ({"start_date": "last week"}, "start_date"),
        ({"end_date": "2017-09-01"}, "end_date"),
        ({"window_days": 181}, "window_days"),
        ({"window_days": 0}, "window_days"),
        ({"sessions_window_hours": 0}, "sessions_window_hours"),
        ({"tree_granularity": "month"}, "tree_granularity"),
    ],
)
def test_bad_settings_fail_before_any_request(requests_mock: rm.Mocker, change: dict, named: str) -> None:
    config = {k: v for k, v in {**CONFIG, **change}.items() if v is not None}
    with pytest.raises(ConfigValidationError) as failure:
        TapSeemetrix(config=config)
    assert any(named in error for error in failure.value.errors), failure.value.errors
    assert requests_mock.call_count == 0


def test_connection_test_reads_the_device_list(requests_mock: rm.Mocker) -> None:
    mock_api(requests_mock)
    assert TapSeemetrix(config=CONFIG).check_connection() == "3 devices (1 online, 1 offline, 1 frozen)"
    assert requests_mock.call_count == 1

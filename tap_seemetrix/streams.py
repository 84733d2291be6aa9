"""Seemetrix streams: devices, hourly statistics, raw sessions, counters, and the v2 trees.

The API packs meaning into one-letter keys and numeric codes; each function in the first part
of this module undoes one such quirk, so that the streams hand a warehouse plain, named columns.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import itertools
import typing as t
from functools import cached_property, lru_cache
from dataclasses import dataclass
from http import HTTPStatus

from singer_sdk import typing as th

from taps_common.errors import APIRequestError, SettingsError
from taps_common.records import required_timestamp
from taps_common.rest import TotalPagesPaginator, decoded_json
from taps_common.timestamps import UTC, to_utc_iso, utc_now
from tap_seemetrix.client import SeemetrixStream, WindowedSeemetrixStream

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    import requests
    from singer_sdk.helpers.types import Context

    from taps_common.windows import DateWindow

# --- codes and one-letter keys ------------------------------------------------------------------------

DEVICE_STATUSES = ("online", "offline", "frozen")
AGE_GROUPS = {0: "kid", 1: "young", 2: "adult", 3: "old"}
GENDERS = {0: "female", 1: "male"}
# The raw route's codes; names as the v2 tree spells them ("surprise", not the prose's "surprised").
EMOTIONS = {-1: "undefined", 0: "neutral", 1: "happy", 2: "angry", 3: "surprise"}
UNDEFINED = "undefined"

#: Hourly statistics keys, by the query flag that asks for them (`t` always comes).
HOURLY_COUNTERS = {
    "t": "views",
    "fl": "female",
    "ml": "male",
    "us": "undefined_gender",
    "k": "kid",
    "m": "young",
    "m2": "adult",
    "o": "old",
    "u": "undefined_age",
    "v": "movie_views",
    "va": "movie_views_va",
}
_COMBO_GENDERS = {"f": "female", "m": "male", "u": "undefined_gender"}
_COMBO_AGES = {"k": "kid", "m": "young", "m2": "adult", "o": "old", "u": "undefined_age"}
#: With `sex` and `age` both set: "fk" (female-kid), "mo" (male-old), ..., one column each.
GENDER_AGE_COUNTERS = {
    gender_key + age_key: f"{gender}_{age}"
    for gender_key, gender in _COMBO_GENDERS.items()
    for age_key, age in _COMBO_AGES.items()
}
#: Dashboard counters (`/user/{id}/counters`); the docs call views "visits" there.
COUNTERS = {
    "avg_duration": "average_view_duration_seconds",
    "dev_num": "devices",
    "movies_num": "movies",
    "online_device_num": "online_devices",
    "usr_cur_hour": "views_current_hour",
    "usr_cur_day": "views_current_day",
    "usr_cur_month": "views_current_month",
    "usr_num": "views_total",
}
#: The names a v2 level lists in full (zeros included), for leaves under a node with no views.
TREE_VOCABULARIES = {
    "genders": ("female", "male", "undefined"),
    "ages": ("adult", "kid", "old", "undefined", "young"),
    "emotions": ("angry", "happy", "neutral", "surprise", "undefined"),
}


def as_count(value: t.Any) -> int | None:  # noqa: ANN401
    """A count as an integer: the v2 tree sends some as floats (`64.0`)."""
    if value is None:
        return None
    if value.__class__ is int:  # most counts: nothing to round
        return value
    return int(round(float(value)))


def as_milliseconds(value: t.Any) -> float | int | None:  # noqa: ANN401
    """A duration in ms (a double, by the docs): whole values as integers."""
    if value is None or value.__class__ is int:
        return value
    number = float(value)
    return int(number) if number.is_integer() else number


def rfc1123_to_utc_iso(text: str | None) -> str | None:
    """The devices route's `Fri, 08 Sep 2017 04:35:12 GMT` in the one UTC form; None if unreadable."""
    if not text:
        return None
    try:
        return to_utc_iso(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError):
        return None


def ip_address_or_none(text: str | None) -> str | None:
    """A device's IP address; the API writes `-` for a device that never reported one."""
    return None if text in (None, "", "-") else text


def device_row(device: Mapping[str, t.Any], status: str, *, include_keys: bool) -> dict[str, t.Any]:
    """One device of the online, offline or frozen list, with named columns.

    `k` (the device key) and `s` are credentials of the device: left out unless asked for.
    """
    row = {
        "device_id": device.get("d"),
        "name": device.get("n"),
        "status": status,
        "ip": ip_address_or_none(device.get("ip")),
        "acl": device.get("acl"),
        "created_at": rfc1123_to_utc_iso(device.get("created")),
        "modified_at": rfc1123_to_utc_iso(device.get("modified")),
        "is_online": None if device.get("o") is None else bool(device["o"]),
        "is_frozen": None if device.get("f") is None else bool(device["f"]),
        "or_flag": device.get("or"),
        "sid": device.get("sid"),
    }
    if include_keys:
        row["device_key"] = device.get("k")
        row["device_secret"] = device.get("s")
    return row


def device_rows(body: Mapping[str, t.Any], *, include_keys: bool) -> Iterator[dict[str, t.Any]]:
    """Every device of the three lists (`online`, `offline`, `frozen`), each with its status."""
    for status in DEVICE_STATUSES:
        for device in body.get(status) or []:
            yield device_row(device, status, include_keys=include_keys)


def period_start_of(time_unit_id: Mapping[str, int]) -> str:
    """The UTC start of an hourly time unit `{"y", "m", "d", "h"}` (asked with `tzo=0`).

    Raises:
        APIRequestError: if the unit is not an hour of a date (the API ignored the query).
    """
    try:
        moment = dt.datetime(
            int(time_unit_id["y"]), int(time_unit_id["m"]), int(time_unit_id["d"]), int(time_unit_id["h"]), tzinfo=UTC
        )
    except (KeyError, TypeError, ValueError):
        msg = f"Seemetrix answered a time unit that is not an hour of a date: {dict(time_unit_id)!r}"
        raise APIRequestError(msg) from None
    return to_utc_iso(moment)


def hourly_counters(time_unit: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A time unit's counters under readable names; a counter the answer lacks is None."""
    row: dict[str, t.Any] = {name: as_count(time_unit.get(key)) for key, name in HOURLY_COUNTERS.items()}
    row.update({name: as_count(time_unit.get(key)) for key, name in GENDER_AGE_COUNTERS.items()})
    duration = time_unit.get("ia")
    row["average_view_duration_seconds"] = None if duration is None else float(duration)
    return row


def age_group_of(code: int | None) -> str:
    """The raw route's age code as a word; -1 or none is `undefined`, an unknown code `unknown:<n>`."""
    return _code_name(code, AGE_GROUPS)


def gender_of(code: int | None) -> str:
    """The raw route's gender code as a word (`female`, `male`, `undefined`)."""
    return _code_name(code, GENDERS)


def emotion_of(code: int | None) -> str:
    """The raw route's emotion code as the v2 tree's word for it."""
    return _code_name(code, EMOTIONS)


def _code_name(code: int | None, names: Mapping[int, str]) -> str:
    if code is None or code == -1:
        return names.get(-1, UNDEFINED)
    return names.get(code, f"unknown:{code}")


def attention_intervals(intervals: Iterable[Mapping[str, t.Any]] | None) -> list[dict[str, t.Any]]:
    """`at` pairs as `{looking, offset_ms, duration_ms}`: `a` is 1 while the face looks at the screen.

    The offset (from the session start) is the sum of the durations before it, as the
    intervals follow one another.
    """
    rows, offset = [], 0
    for interval in intervals or []:
        duration = int(interval.get("d") or 0)
        rows.append({"looking": interval.get("a") == 1, "offset_ms": offset, "duration_ms": duration})
        offset += duration
    return rows


def emotion_intervals(intervals: Iterable[Mapping[str, t.Any]] | None) -> list[dict[str, t.Any]]:
    """`em` pairs as `{emotion, offset_ms, duration_ms}`, the emotion named, not coded."""
    rows, offset = [], 0
    for interval in intervals or []:
        duration = int(interval.get("d") or 0)
        rows.append({"emotion": emotion_of(interval.get("e")), "offset_ms": offset, "duration_ms": duration})
        offset += duration
    return rows


def movie_intervals(intervals: Iterable[Mapping[str, t.Any]] | None) -> list[dict[str, t.Any]]:
    """`v` entries as `{movie_id, offset_ms, duration_ms}` (`s` is the offset from the session start)."""
    return [
        {"movie_id": interval.get("i"), "offset_ms": interval.get("s"), "duration_ms": interval.get("d")}
        for interval in intervals or []
    ]


def session_row(session: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """One raw session with named columns; its times (local to `tzo=0`, naive) in UTC."""
    return {
        "device_id": session.get("d"),
        "session_number": session.get("o"),
        "started_at": required_timestamp(session, "b", "Seemetrix answered /statistics/user/{user_id}/raw/data/"),
        "ended_at": to_utc_iso(session["e"]) if session.get("e") else None,
        "duration_ms": session.get("i"),
        "age_group": age_group_of(session.get("a")),
        "gender": gender_of(session.get("s")),
        "attention_intervals": attention_intervals(session.get("at")),
        "emotion_intervals": emotion_intervals(session.get("em")),
        "movies": movie_intervals(session.get("v")),
    }


@lru_cache(maxsize=4096)  # every leaf under a date node carries its label: parse each once
def date_label_start(label: str) -> str:
    """The UTC start of a v2 date node: `2017-06-02` (a day) or `2017-06-02 13` (an hour).

    Raises:
        APIRequestError: for any other form (the tap asks only for those two).
    """
    for form in ("%Y-%m-%d", "%Y-%m-%d %H"):
        try:
            return to_utc_iso(dt.datetime.strptime(label, form).replace(tzinfo=UTC))
        except ValueError:
            continue
    msg = f"Seemetrix answered a date node {label!r} that is neither YYYY-MM-DD nor YYYY-MM-DD HH"
    raise APIRequestError(msg)


def tree_children(node: Mapping[str, t.Any]) -> list[Mapping[str, t.Any]]:
    """A node's `o`: a list (`to_object=0`) or an object keyed by name (`to_object=1`)."""
    children = node.get("o")
    if isinstance(children, dict):
        return list(children.values())
    return list(children or [])


@dataclass(slots=True)  # not frozen: a frozen dataclass costs a microsecond per leaf to build
class TreeLeaf:
    """One leaf of a v2 tree: every level's name, its counts, and the OTS of the levels that had them."""

    names: dict[str, str]
    views: int | None
    views_duration_ms: float | int | None
    ots: dict[str, tuple[int | None, float | int | None]]


def flatten_tree(
    root: Mapping[str, t.Any],
    levels: Sequence[str],
    vocabularies: Mapping[str, Sequence[str]] = TREE_VOCABULARIES,
) -> Iterator[TreeLeaf]:
    """The leaves of a v2 tree, one per path through `levels`.

    The API stops decomposing a node with zero views. Where every level below such a node has a
    known, fixed set of names (genders, ages, emotions), its leaves are given with zero views,
    so the node's OTS (people who passed without looking) still reach the warehouse.
    """

    last_depth = len(levels) - 1

    def walk(
        node: Mapping[str, t.Any], depth: int, names: dict[str, str], ots: dict[str, tuple[t.Any, t.Any]]
    ) -> Iterator[TreeLeaf]:
        children = tree_children(node)
        remaining = levels[depth:]
        if not children:
            if as_count(node.get("v")) == 0 and all(level in vocabularies for level in remaining):
                for combination in itertools.product(*(vocabularies[level] for level in remaining)):
                    yield TreeLeaf({**names, **dict(zip(remaining, combination, strict=True))}, 0, 0, ots)
            return
        level = levels[depth]
        for child in children:
            child_ots = ots
            if "ots" in child:
                child_ots = {**ots, level: (as_count(child.get("ots")), as_milliseconds(child.get("otsd")))}
            child_names = {**names, level: str(child.get("n"))}
            if depth == last_depth:  # a leaf: made here, not by one more generator per leaf
                yield TreeLeaf(child_names, as_count(child.get("v")), as_milliseconds(child.get("vd")), child_ots)
            else:
                yield from walk(child, depth + 1, child_names, child_ots)

    if not levels:
        yield TreeLeaf({}, as_count(root.get("v")), as_milliseconds(root.get("vd")), {})
        return
    yield from walk(root, 0, {}, {})


def pages_total(response: requests.Response) -> int:
    """The page count a v2 answer announces (pages are 0-based)."""
    body = decoded_json(response)
    return int(body.get("pages_total") or 0) if isinstance(body, dict) else 0


def counters_row(body: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The dashboard counters under readable names (gender/age pairs too, should they come)."""
    row: dict[str, t.Any] = {name: as_count(body.get(key)) for key, name in COUNTERS.items()}
    duration = body.get("avg_duration")
    row["average_view_duration_seconds"] = None if duration is None else float(duration)
    row.update({name: as_count(body.get(key)) for key, name in GENDER_AGE_COUNTERS.items()})
    return row


# --- schema fragments ---------------------------------------------------------------------------------

_COUNT = th.IntegerType
HOURLY_PROPERTIES = [
    th.Property("period_start", th.DateTimeType, required=True, description="Start of the hour (UTC)."),
    th.Property("views", _COUNT, description="Views in the hour (`t`)."),
    th.Property("female", _COUNT, description="Views by women (`fl`)."),
    th.Property("male", _COUNT, description="Views by men (`ml`)."),
    th.Property("undefined_gender", _COUNT, description="Views of undefined gender (`us`)."),
    th.Property("kid", _COUNT, description="Views by kids (`k`)."),
    th.Property("young", _COUNT, description="Views by young adults (`m`, `middle`)."),
    th.Property("adult", _COUNT, description="Views by adults (`m2`, `middle2`)."),
    th.Property("old", _COUNT, description="Views by seniors (`o`)."),
    th.Property("undefined_age", _COUNT, description="Views of undefined age (`u`)."),
    *(
        th.Property(name, _COUNT, description=f"Views by {name.replace('_', ' ')} (`{key}`).")
        for key, name in GENDER_AGE_COUNTERS.items()
    ),
    th.Property("movie_views", _COUNT, description="Movie views (`v`)."),
    th.Property(
        "movie_views_va", _COUNT, description="The API's second movie-views counter (`va`); the docs do not define it."
    ),
    th.Property(
        "average_view_duration_seconds",
        th.NumberType,
        description="Average view duration (`ia`), in seconds as the docs' samples suggest.",
    ),
]

_INTERVAL_BASE = [
    th.Property("offset_ms", th.IntegerType, description="Start, in ms after the session start."),
    th.Property("duration_ms", th.IntegerType, description="Length in ms."),
]


# --- streams ------------------------------------------------------------------------------------------


class DevicesStream(SeemetrixStream):
    """Devices of the user, from the online, offline and frozen lists (or those in `device_ids`)."""

    name = "devices"
    path = "/user/{user_id}/devices/"
    primary_keys = ("device_id",)
    replication_key = None

    @property
    def schema(self) -> dict[str, t.Any]:  # type: ignore[override]
        """The device columns; the device's own credentials only when `include_device_keys` is set."""
        properties = [
            th.Property("device_id", th.IntegerType, required=True, description="Device id (`d`)."),
            th.Property("name", th.StringType, description="Device name (`n`)."),
            th.Property("status", th.StringType, required=True, description="`online`, `offline` or `frozen`."),
            th.Property("ip", th.StringType, description="Last IP address; null where the API says `-`."),
            th.Property("acl", th.ArrayType(th.IntegerType), description="Ids of the users with access."),
            th.Property("created_at", th.DateTimeType, description="When the device was created (UTC)."),
            th.Property("modified_at", th.DateTimeType, description="When the device was last modified (UTC)."),
            th.Property("is_online", th.BooleanType, description="The `o` flag."),
            th.Property("is_frozen", th.BooleanType, description="The `f` flag."),
            th.Property("or_flag", th.IntegerType, description="The undocumented `or` flag, as sent."),
            th.Property("sid", th.IntegerType, description="The undocumented `sid` value, as sent."),
        ]
        if self.config.get("include_device_keys"):
            properties += [
                th.Property("device_key", th.StringType, description="The device key (`k`): a credential."),
                th.Property("device_secret", th.StringType, description="The device's `s` value: a credential."),
            ]
        return th.PropertiesList(*properties).to_dict()

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        """Every device, or the configured ones; an id the user does not own stops the sync."""
        include_keys = bool(self.config.get("include_device_keys"))
        rows = list(device_rows(decoded_json(response), include_keys=include_keys))
        wanted = self.config.get("device_ids")
        if wanted:
            missing = sorted(set(wanted) - {row["device_id"] for row in rows})
            if missing:
                msg = (
                    f"`device_ids` lists devices user {self.config['user_id']} does not have: "
                    f"{', '.join(map(str, missing))}. The user has {len(rows)} device(s); fix "
                    "`device_ids` or leave it unset."
                )
                raise SettingsError(msg)
            rows = [row for row in rows if row["device_id"] in wanted]
        yield from rows

    def generate_child_contexts(self, record: dict, context: Context | None) -> Iterable[dict | None]:  # noqa: ARG002, D102
        yield {"device_id": record["device_id"]}


class HourlyStatisticsStream(WindowedSeemetrixStream):
    """Hourly rows of `/statistics/...`, every counter asked for at once, in windows."""

    replication_key = "period_start"
    period = dt.timedelta(hours=1)
    #: Arranged by year, month, day and hour (the default, asked explicitly), with every counter.
    COUNTER_FLAGS: t.ClassVar[dict[str, int]] = dict.fromkeys(
        ("year", "month", "day", "hour", "sex", "age", "movies", "intervals"), 1
    )

    def window_queries(self, context: Context | None, window: DateWindow) -> list[dict[str, t.Any]]:  # noqa: D102
        return [{**query, **self.COUNTER_FLAGS} for query in super().window_queries(context, window)]

    def parse_response(self, response: requests.Response) -> Iterable[dict]:  # noqa: D102
        for time_unit in decoded_json(response).get("objects") or []:
            yield {"period_start": period_start_of(time_unit.get("i") or {}), **hourly_counters(time_unit)}


class DeviceStatisticsStream(HourlyStatisticsStream):
    """Hourly statistics of each device (`/statistics/device/{device_id}/`)."""

    name = "device_statistics"
    path = "/statistics/device/{device_id}/"
    primary_keys = ("device_id", "period_start")
    parent_stream_type = DevicesStream
    state_partitioning_keys = ("device_id",)
    schema = th.PropertiesList(
        th.Property("device_id", th.IntegerType, required=True, description="The device."),
        *HOURLY_PROPERTIES,
    ).to_dict()

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:  # noqa: D102
        assert context is not None  # always a device partition  # noqa: S101
        return super().post_process({"device_id": context["device_id"], **row}, context)


class UserStatisticsStream(HourlyStatisticsStream):
    """Hourly statistics of all the user's devices together (`/statistics/user/{user_id}/`)."""

    name = "user_statistics"
    path = "/statistics/user/{user_id}/"
    primary_keys = ("user_id", "period_start")
    schema = th.PropertiesList(
        th.Property("user_id", th.IntegerType, required=True, description="The user (`user_id` setting)."),
        *HOURLY_PROPERTIES,
    ).to_dict()

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:  # noqa: D102
        return super().post_process({"user_id": self.config["user_id"], **row}, context)


class SessionsStream(WindowedSeemetrixStream):
    """Raw viewing sessions (`/statistics/user/{user_id}/raw/data/`), one row each.

    The route has no paging and grows with the range, so it is read in windows of
    `sessions_window_hours`. Each window asks `sessions_overlap_minutes` past its end and keeps
    the sessions that start inside it: whether the API selects sessions by their start, their
    end or any overlap (the docs do not say), each session is read in exactly one window.
    """

    name = "sessions"
    path = "/statistics/user/{user_id}/raw/data/"
    primary_keys = ("device_id", "session_number")
    replication_key = "started_at"
    schema = th.PropertiesList(
        th.Property("device_id", th.IntegerType, required=True, description="The device (`d`)."),
        th.Property(
            "session_number", th.IntegerType, required=True, description="The device's all-time session number (`o`)."
        ),
        th.Property("started_at", th.DateTimeType, required=True, description="When the face was found (UTC)."),
        th.Property("ended_at", th.DateTimeType, description="When the face was lost (UTC)."),
        th.Property("duration_ms", th.IntegerType, description="Session length (`i`)."),
        th.Property("age_group", th.StringType, description="`kid`, `young`, `adult`, `old` or `undefined`."),
        th.Property("gender", th.StringType, description="`female`, `male` or `undefined`."),
        th.Property(
            "attention_intervals",
            th.ArrayType(
                th.ObjectType(
                    th.Property("looking", th.BooleanType, description="Whether the face looked at the screen."),
                    *_INTERVAL_BASE,
                )
            ),
            description="Attention intervals (`at`), in order.",
        ),
        th.Property(
            "emotion_intervals",
            th.ArrayType(
                th.ObjectType(
                    th.Property(
                        "emotion", th.StringType, description="`neutral`, `happy`, `angry`, `surprise` or `undefined`."
                    ),
                    *_INTERVAL_BASE,
                )
            ),
            description="Emotion intervals (`em`), in order.",
        ),
        th.Property(
            "movies",
            th.ArrayType(
                th.ObjectType(th.Property("movie_id", th.IntegerType, description="The movie (`i`)."), *_INTERVAL_BASE)
            ),
            description="Movies played during the session (`v`).",
        ),
    ).to_dict()

    @property
    def window_size(self) -> dt.timedelta:  # noqa: D102
        return dt.timedelta(hours=float(self.config.get("sessions_window_hours", 24)))

    @property
    def extra_after(self) -> dt.timedelta:  # type: ignore[override]  # noqa: D102
        return dt.timedelta(minutes=float(self.config.get("sessions_overlap_minutes", 10)))

    def window_queries(self, context: Context | None, window: DateWindow) -> list[dict[str, t.Any]]:
        """One request per window, or one per configured device (`device_id=`)."""
        queries = super().window_queries(context, window)
        device_ids = self.config.get("device_ids")
        if not device_ids:
            return queries
        return [{**query, "device_id": device_id} for query in queries for device_id in device_ids]

    def parse_response(self, response: requests.Response) -> Iterable[dict]:  # noqa: D102
        for session in decoded_json(response).get("objects") or []:
            yield session_row(session)


class CountersStream(SeemetrixStream):
    """The dashboard counters (`/user/{user_id}/counters`): one snapshot row per sync.

    The docs write this route without the trailing slash their general rule requires; the tap
    asks as written and, on a 404, once more with the slash.
    """

    name = "counters"
    #: As the docs write it; `path` becomes this plus "/" when that answers 404.
    DOCUMENTED_PATH = "/user/{user_id}/counters"
    path = DOCUMENTED_PATH
    primary_keys = ("user_id", "taken_at")
    replication_key = None
    schema = th.PropertiesList(
        th.Property("user_id", th.IntegerType, required=True, description="The user."),
        th.Property("taken_at", th.DateTimeType, required=True, description="When the snapshot was read (UTC)."),
        th.Property(
            "average_view_duration_seconds", th.NumberType, description="Average view duration (`avg_duration`)."
        ),
        th.Property("devices", _COUNT, description="Registered devices (`dev_num`)."),
        th.Property("movies", _COUNT, description="Registered movies (`movies_num`)."),
        th.Property("online_devices", _COUNT, description="Devices online now (`online_device_num`)."),
        th.Property("views_current_hour", _COUNT, description="Views this hour (`usr_cur_hour`)."),
        th.Property("views_current_day", _COUNT, description="Views today (`usr_cur_day`)."),
        th.Property("views_current_month", _COUNT, description="Views this month (`usr_cur_month`)."),
        th.Property("views_total", _COUNT, description="Views of all time (`usr_num`)."),
        *(
            th.Property(name, _COUNT, description=f"Views by {name.replace('_', ' ')} (`{key}`), if the API sends it.")
            for key, name in GENDER_AGE_COUNTERS.items()
        ),
    ).to_dict()

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:  # noqa: D102
        for path in (self.DOCUMENTED_PATH, self.DOCUMENTED_PATH + "/"):
            self.path = path
            try:
                yield from self.request_records(context)
            except _CountersRouteNotFound:
                continue
            return

    def validate_response(self, response: requests.Response) -> None:  # noqa: D102
        if response.status_code == HTTPStatus.NOT_FOUND and self.path == self.DOCUMENTED_PATH:
            raise _CountersRouteNotFound
        super().validate_response(response)

    def parse_response(self, response: requests.Response) -> Iterable[dict]:  # noqa: D102
        yield {
            "user_id": self.config["user_id"],
            "taken_at": to_utc_iso(utc_now()),
            **counters_row(decoded_json(response)),
        }


class _CountersRouteNotFound(Exception):
    """The counters route answered 404 as written: try it with the trailing slash."""


class TreeStream(WindowedSeemetrixStream):
    """A v2 tree (`/v2/statistics/user/{user_id}/<levels>/`), one row per leaf, in windows.

    Dates are days by default (`tree_granularity`); windows (`window_days`, at most 180) stay
    inside the API's six-month limit. The top level (devices) is paged with `page`/`pages_total`.
    """

    replication_key = "period_start"
    numbers_are_parsed = True  # `leaf_row` makes every count and duration a number
    #: The path's levels; the last one's name becomes the leaf's column.
    levels: t.ClassVar[tuple[str, ...]] = ()
    #: Column of each level's name.
    LEVEL_COLUMNS: t.ClassVar[dict[str, str]] = {
        "devices": "device_id",
        "dates": "date",
        "genders": "gender",
        "ages": "age_group",
        "emotions": "emotion",
    }

    @property
    def hourly(self) -> bool:
        """Whether dates are hours (`tree_granularity: hour`) rather than days."""
        return self.config.get("tree_granularity", "day") == "hour"

    @property
    def period(self) -> dt.timedelta:  # type: ignore[override]  # noqa: D102
        return dt.timedelta(hours=1) if self.hourly else dt.timedelta(days=1)

    def get_new_paginator(self) -> TotalPagesPaginator:  # type: ignore[override]  # noqa: D102
        return self.page_count_paginator(pages_total, first_page=0)

    def get_url_params(self, context: Context | None, next_page_token: t.Any | None) -> dict[str, t.Any]:  # noqa: ANN401, D102
        params = super().get_url_params(context, next_page_token)
        params["page"] = next_page_token if next_page_token is not None else 0
        return params

    def window_queries(self, context: Context | None, window: DateWindow) -> list[dict[str, t.Any]]:
        """Lists (`to_object=0`), the date format, the page size; one device each if configured."""
        tree_query = {
            "dt_format": "YYYY-MM-DD HH" if self.hourly else "YYYY-MM-DD",
            "to_object": 0,
            "obj_in_page": int(self.config.get("tree_devices_per_page", 10)),
        }
        queries = [{**query, **tree_query} for query in super().window_queries(context, window)]
        device_ids = self.config.get("device_ids")
        if not device_ids:
            return queries
        return [{**query, "d": device_id} for query in queries for device_id in device_ids]

    def parse_response(self, response: requests.Response) -> Iterable[dict]:  # noqa: D102
        root = decoded_json(response).get("data") or {}
        for leaf in flatten_tree(root, self.levels):
            yield self.leaf_row(leaf)

    @cached_property
    def _level_columns(self) -> tuple[str, ...]:
        return tuple(self.LEVEL_COLUMNS[level] for level in self.levels)

    def leaf_row(self, leaf: TreeLeaf) -> dict[str, t.Any]:
        """A leaf with every level's name in its column, and the date level's OTS."""
        row: dict[str, t.Any] = dict(zip(self._level_columns, map(leaf.names.get, self.levels)))
        row["device_id"] = int(row["device_id"])
        row["period_start"] = date_label_start(row["date"])
        row["views"] = leaf.views
        row["views_duration_ms"] = leaf.views_duration_ms
        row["ots"], row["ots_duration_ms"] = leaf.ots.get("dates", (None, None))
        return row


def _tree_schema(*leaf_properties: th.Property) -> dict[str, t.Any]:
    return th.PropertiesList(
        th.Property("device_id", th.IntegerType, required=True, description="The device."),
        th.Property(
            "date",
            th.StringType,
            required=True,
            description="The period as the API names it (`2024-05-01` or `2024-05-01 13`).",
        ),
        th.Property("period_start", th.DateTimeType, required=True, description="Start of the period (UTC)."),
        *leaf_properties,
        th.Property("views", _COUNT, description="Views (`v`)."),
        th.Property("views_duration_ms", th.NumberType, description="Total view time in ms (`vd`)."),
        th.Property(
            "ots",
            _COUNT,
            description="Opportunities to see of the device in the period, lookers or not (date-level `ots`).",
        ),
        th.Property("ots_duration_ms", th.NumberType, description="Their total dwell time in ms (date-level `otsd`)."),
    ).to_dict()


class DemographicStatisticsStream(TreeStream):
    """Views per device, date, gender and age group (path `devices/dates/genders/ages`)."""

    name = "demographic_statistics"
    path = "/v2/statistics/user/{user_id}/devices/dates/genders/ages/"
    levels = ("devices", "dates", "genders", "ages")
    primary_keys = ("device_id", "date", "gender", "age_group")
    schema = _tree_schema(
        th.Property("gender", th.StringType, required=True, description="`female`, `male` or `undefined`."),
        th.Property(
            "age_group", th.StringType, required=True, description="`kid`, `young`, `adult`, `old` or `undefined`."
        ),
    )


class EmotionStatisticsStream(TreeStream):
    """Views per device, date and emotion (path `devices/dates/emotions`)."""

    name = "emotion_statistics"
    path = "/v2/statistics/user/{user_id}/devices/dates/emotions/"
    levels = ("devices", "dates", "emotions")
    primary_keys = ("device_id", "date", "emotion")
    schema = _tree_schema(
        th.Property(
            "emotion",
            th.StringType,
            required=True,
            description="`angry`, `happy`, `neutral`, `surprise` or `undefined`, as the API names it.",
        ),
    )

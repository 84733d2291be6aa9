"""WMSPanel streams: data slices, servers, and players, devices and daily statistics per slice and day."""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import typing as t

from singer_sdk import typing as th

from taps_common.errors import APIRequestError, SettingsError
from taps_common.rest import decoded_json, lazily_decoded_items
from taps_common.records import split_known_fields
from taps_common.timestamps import as_day
from taps_common.windows import first_and_last_day, whole_day_windows
from tap_wmspanel.client import (
    WMSPanelStream,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    import requests
    from singer_sdk.helpers.types import Context

    from taps_common.windows import DateWindow

#: Readable daily_stats columns, each with the API names it is read from (compared
#: case-insensitively, punctuation as `_`). The first name of each is the one the vendor notes
#: suggest; the others are spellings the same metric plausibly has, since no public source
#: shows a `/daily_stats` body. Any other metric goes to `other_metrics`.
DAILY_STATS_COLUMNS: dict[str, tuple[str, ...]] = {
    "viewers": ("viewers", "total_viewers"),
    "viewers_rtmp": ("rtmp_viewers", "viewers_rtmp", "rtmp"),
    "viewers_hls": ("hls_viewers", "viewers_hls", "hls"),
    "viewers_mpeg_dash": ("mpeg_dash_viewers", "mpegdash_viewers", "dash_viewers", "viewers_mpeg_dash", "viewers_dash"),
    "viewers_rtsp": ("rtsp_viewers", "viewers_rtsp", "rtsp"),
    "viewers_icecast": ("icecast_viewers", "viewers_icecast", "icecast"),
    "viewers_srt": ("srt_viewers", "viewers_srt", "srt"),
    "viewers_webrtc": ("webrtc_viewers", "viewers_webrtc", "webrtc"),
    "total_view_time": ("total_view_time", "view_time", "total_duration"),
    "bytes_sent": ("bytes_out", "bytes_sent", "traffic_out", "outgoing_bytes"),
    "bytes_received": ("bytes_in", "bytes_received", "traffic_in", "incoming_bytes"),
    "views_under_1_min": ("duration_less_1_min", "duration_0_1_min", "duration_less_1", "duration_0_1"),
    "views_1_to_5_min": ("duration_1_5_min", "duration_1_5"),
    "views_5_to_10_min": ("duration_5_10_min", "duration_5_10"),
    "views_10_to_30_min": ("duration_10_30_min", "duration_10_30"),
    "views_30_to_60_min": ("duration_30_60_min", "duration_30_60"),
    "views_over_60_min": ("duration_more_60_min", "duration_more_60", "duration_60_plus_min", "duration_over_60_min"),
}
#: Columns whose values may be fractional (a view time in minutes or hours, say); the rest are counts.
FRACTIONAL_DAILY_COLUMNS = frozenset({"total_view_time"})
_DAILY_COLUMN_OF = {api_name: column for column, names in DAILY_STATS_COLUMNS.items() for api_name in names}
_NOT_WORD = re.compile(r"[^a-z0-9]+")


# --- WMSPanel quirks --------------------------------------------------------------------------


def listed_items(body: object, key: str) -> list[dict[str, t.Any]]:
    """The objects a body lists under `key` (`{"status": "Ok", key: [...]}`), or a bare list's objects."""
    items = body.get(key) if isinstance(body, dict) else body
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def stats_days(body: object) -> list[dict[str, t.Any]]:
    """The day objects of a stats body: `stats` as a list, as the docs show it.

    Tolerated too: no `stats` at all (no days), and days keyed by date
    (`{"2014-10-17": {...}}`), whose key then gives the missing `date`.
    """
    stats = body.get("stats") if isinstance(body, dict) else None
    if isinstance(stats, dict):
        return [{"date": day, **values} for day, values in stats.items() if isinstance(values, dict)]
    return listed_items(body, "stats")


def day_of(value: object) -> str:
    """A day object's `date` as `YYYY-MM-DD` (a datetime there gives its day).

    Raises:
        ValueError: if the day has no readable date: its rows could not be placed.
    """
    if not isinstance(value, str):
        msg = f"a day object without a readable `date` ({value!r})"
        raise ValueError(msg)  # noqa: TRY004  # the caller reports every format surprise alike
    return _day_of_text(value)


@functools.lru_cache(maxsize=8192)
def _day_of_text(text: str) -> str:
    # Cached: a day's date is read once to keep the day, once more to give its rows, and the same
    # dates come for every data slice.
    try:
        return as_day(text).isoformat()
    except ValueError:
        msg = f"a day object whose `date` is not a date ({text!r})"
        raise ValueError(msg) from None


def connection_count(value: object) -> int | None:
    """A player's or device's value as a whole number of connections; None if it is not a count."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def metric_number(value: object) -> int | float | None:
    """A metric as a number: whole numbers as int, others as float; None if it is not a number."""
    count = connection_count(value)
    if count is not None:
        return count
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return value if isinstance(value, float) and math.isfinite(value) else None


def pivoted_days_to_long_rows(
    days: Iterable[Mapping[str, t.Any]], name_column: str, shared: Mapping[str, t.Any] | None = None
) -> Iterator[dict[str, t.Any]]:
    """Turn WMSPanel's one object per day, one key per player or device, into one row per name.

    `{"Safari": 9, "date": "2014-10-17", "MSIE": 3}` becomes `{"date": "2014-10-17",
    <name_column>: "Safari", "connections": 9}` and the same for MSIE, each row with the fields of
    `shared` too. `date` may be anywhere among the keys. A name reported as 0 gives a row with 0
    (the API said so); names and days the API leaves out give no row. A value that is not a count
    is not a player or device, and is skipped.

    Days are read one at a time, as their rows are taken: a whole range of one slice is a hundred
    thousand rows and more. A day without a readable date raises a ValueError when it is reached.
    """
    shared = shared or {}
    for day in days:
        date = day_of(day.get("date"))
        for name, value in day.items():
            if name == "date":
                continue
            connections = value if value.__class__ is int else connection_count(value)  # ints: most values
            if connections is not None:
                yield {"date": date, name_column: name, "connections": connections, **shared}


def readable_daily_stats(day: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """One `/daily_stats` day under readable column names (see `DAILY_STATS_COLUMNS`).

    A metric the day leaves out is None, not 0. Metrics without a column, and values that are not
    numbers of the column's kind, are kept under their API names in `other_metrics` (None when
    there are none).
    """
    row: dict[str, t.Any] = {"date": day_of(day.get("date"))}
    row.update(dict.fromkeys(DAILY_STATS_COLUMNS))
    other: dict[str, t.Any] = {}
    for name, value in day.items():
        if name == "date":
            continue
        column = _DAILY_COLUMN_OF.get(_NOT_WORD.sub("_", name.lower()).strip("_"))
        parse = metric_number if column in FRACTIONAL_DAILY_COLUMNS else connection_count
        if column is not None and value is None:
            continue  # a null metric is the column's null, not another metric
        if column is not None and row[column] is None and (number := parse(value)) is not None:
            row[column] = number
        else:
            other[name] = value
    row["other_metrics"] = other or None
    return row


def server_ids_of(data_slice: Mapping[str, t.Any]) -> list[str] | None:
    """The servers of a data slice, when the listing offers them (`show_servers=true`).

    Seen as `server_ids` (a list of ids); `servers`, as ids or as objects with `id`, is read too.
    None when neither is there: unknown, not "no servers".
    """
    listed = data_slice.get("server_ids", data_slice.get("servers"))
    if not isinstance(listed, list):
        return None
    return [str(item.get("id")) if isinstance(item, dict) else str(item) for item in listed]


# --- streams ----------------------------------------------------------------------------------


class DataSlicesStream(WMSPanelStream):
    """Data slices (`/data_slices?show_servers=true`), or those in `data_slice_ids`."""

    name = "data_slices"
    path = "/data_slices"
    primary_keys = ("data_slice_id",)
    replication_key = None
    schema = th.PropertiesList(
        th.Property("data_slice_id", th.StringType, required=True, description="WMSPanel data slice id."),
        th.Property("name", th.StringType, description="The slice's name."),
        th.Property(
            "server_ids",
            th.ArrayType(th.StringType),
            description="Ids of the servers in the slice; null when the API does not list them.",
        ),
    ).to_dict()

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:  # noqa: ANN401, D102
        return {"show_servers": "true"}

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        """The slices, restricted to `data_slice_ids`; fail if any of those is not listed."""
        slices = [
            {"data_slice_id": str(item.get("id")), "name": item.get("name"), "server_ids": server_ids_of(item)}
            for item in listed_items(decoded_json(response), "data_slices")
            if item.get("id") is not None
        ]
        wanted = self.config.get("data_slice_ids")
        if wanted:
            listed = {data_slice["data_slice_id"] for data_slice in slices}
            missing = [slice_id for slice_id in wanted if slice_id not in listed]
            if missing:
                msg = (
                    f"`data_slice_ids` names data slices these credentials cannot see: {', '.join(missing)}. "
                    f"WMSPanel lists {len(slices)} slice(s) for them; fix `data_slice_ids` or leave it unset."
                )
                raise SettingsError(msg)
            slices = [data_slice for data_slice in slices if data_slice["data_slice_id"] in wanted]
        yield from slices

    def generate_child_contexts(  # noqa: D102
        self, record: dict[str, t.Any], context: Context | None
    ) -> Iterable[dict[str, t.Any] | None]:
        yield {"data_slice_id": record["data_slice_id"]}


class ServersStream(WMSPanelStream):
    """Servers of the account (`/server`)."""

    name = "servers"
    path = "/server"
    primary_keys = ("server_id",)
    replication_key = None
    schema = th.PropertiesList(
        th.Property("server_id", th.StringType, required=True, description="WMSPanel server id."),
        th.Property("name", th.StringType, description="The server's name."),
        th.Property(
            "attributes",
            th.ObjectType(),
            description="Every other field WMSPanel gives for the server, as it gives it (undocumented).",
        ),
    ).to_dict()

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:  # noqa: D102
        for server in listed_items(decoded_json(response), "servers"):
            known, others = split_known_fields(server, ("id", "name"))
            if known.get("id") is not None:
                yield {"server_id": str(known["id"]), "name": known.get("name"), "attributes": others}


class DailyRangeStream(WMSPanelStream):
    """Statistics per data slice and day, one call per slice for the whole range.

    Every call is quota, so the range is never split by day: one call per slice from the
    bookmark (less `lookback_days`, for days still filling) to `end_date` or today, or ranges of
    `max_days_per_request` days when that is set. Days come in no guaranteed order, so the
    bookmark (one per slice) moves only when a range is complete.
    """

    parent_stream_type = DataSlicesStream
    state_partitioning_keys = ("data_slice_id",)
    replication_key = "date"
    bookmark_at_window_ends = True
    #: A whole range of days comes in one body: its days are decoded as they are read.
    items_decoded_when_taken = "stats"
    #: Whether the route is documented with the `server` filter.
    filters_by_server = True

    #: The call being read: its first and last day, and the fields its rows share (`_read_days`).
    _reading: tuple[str, str, dict[str, t.Any]] = ("", "", {})

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:  # noqa: D102
        assert context is not None  # always a data slice partition  # noqa: S101
        windows = self.partition_windows(context)
        return self.records_by_window(context, windows, lambda window: self._read_days(context, window))

    def partition_windows(self, context: Context) -> Iterable[DateWindow]:
        """The slice's days: from its bookmark (less `lookback_days`) to the last day, in one range."""
        lookback = dt.timedelta(days=int(self.config.get("lookback_days", 2)))
        first_day = self.sync_start(context, lookback).date()
        last_day = self.sync_end.date()
        return whole_day_windows(first_day, last_day, self.config.get("max_days_per_request"))

    def window_request_context(self, context: Context, window: DateWindow) -> Context:
        """The slice and the first and last day (both included) of one call."""
        first, last = (day.isoformat() for day in first_and_last_day(window))
        return {**context, "from": first, "to": last}

    def _read_days(self, context: Context, window: DateWindow) -> Iterable[dict[str, t.Any]]:
        """The rows of one call for the days of `window` (see `days_asked`).

        Not a generator of its own (one layer less per row): the call's days and shared fields
        are noted for `parse_response`, which reads the call's answer while these rows are taken.
        """
        request_context = self.window_request_context(context, window)
        self._reading = (request_context["from"], request_context["to"], self.fields_of_every_row(context))
        return self.request_records(request_context)

    def fields_of_every_row(self, context: Context) -> dict[str, t.Any]:
        """The fields a call's rows share, which the answer does not hold: the data slice."""
        return {"data_slice_id": context["data_slice_id"]}

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:  # noqa: ANN401, D102
        assert context is not None  # noqa: S101
        params = {"data_slice": context["data_slice_id"], "from": context["from"], "to": context["to"]}
        if self.filters_by_server and self.config.get("server_id"):
            params["server"] = self.config["server_id"]
        return params

    def days_of(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        """The response's day objects, decoded one at a time when the body allows."""
        days = lazily_decoded_items(response, "stats")
        return days if days is not None else stats_days(decoded_json(response))

    def days_asked(self, response: requests.Response) -> Iterator[dict[str, t.Any]]:
        """The response's days within the call's range, one at a time (the API is trusted for no more).

        A day whose date cannot be read, or that is not valid JSON, stops the sync: its rows could
        not be placed (the days before it have given theirs; the bookmark has not moved).
        """
        first, last, _ = self._reading
        days = iter(self.days_of(response))
        while True:
            try:
                day = next(days, None)
                if day is None:
                    return
                date = day_of(day.get("date"))
            except ValueError as problem:
                raise self.unexpected_day(problem) from None
            if first <= date <= last:
                yield day

    def unexpected_day(self, problem: ValueError) -> APIRequestError:
        """A day the tap cannot place stops the sync, rather than losing its rows."""
        return APIRequestError(f"WMSPanel answered {self.path} with {problem}; the response format has changed.")


class PivotedStatsStream(DailyRangeStream):
    """Players or devices stats: each day object un-pivoted into (slice, day, name, connections) rows."""

    #: The column the day object's keys go to: `player` or `device`.
    name_column: str
    numbers_are_parsed = True  # `connections` is a count or None, made by `pivoted_days_to_long_rows`

    def parse_response(self, response: requests.Response) -> Iterator[dict[str, t.Any]]:  # noqa: D102
        return pivoted_days_to_long_rows(self.days_asked(response), self.name_column, self._reading[2])

    def fields_of_every_row(self, context: Context) -> dict[str, t.Any]:
        """The data slice, and the server the numbers were filtered by (the `server_id` setting)."""
        return {**super().fields_of_every_row(context), "server_id": self.config.get("server_id")}


def _long_rows_schema(name_column: str, what: str) -> dict[str, t.Any]:
    return th.PropertiesList(
        th.Property("data_slice_id", th.StringType, required=True, description="The data slice the numbers are for."),
        th.Property("date", th.DateType, required=True, description="The day the numbers are for."),
        th.Property(name_column, th.StringType, required=True, description=f"{what} name as WMSPanel reports it."),
        th.Property("connections", th.IntegerType, description=f"Connections from that {what.lower()} on that day."),
        th.Property(
            "server_id",
            th.StringType,
            description="The `server_id` setting the numbers were filtered by; null for the whole slice.",
        ),
    ).to_dict()


class PlayersStatsStream(PivotedStatsStream):
    """Connections per player and day (`/players_stats`)."""

    name = "players_stats"
    path = "/players_stats"
    primary_keys = ("data_slice_id", "date", "player")
    name_column = "player"
    schema = _long_rows_schema("player", "Player")


class DevicesStatsStream(PivotedStatsStream):
    """Connections per device or operating system and day (`/devices_stats`)."""

    name = "devices_stats"
    path = "/devices_stats"
    primary_keys = ("data_slice_id", "date", "device")
    name_column = "device"
    schema = _long_rows_schema("device", "Device")


class DailyStatsStream(DailyRangeStream):
    """Viewers, per-protocol viewers, view time, bytes and view durations per day (`/daily_stats`)."""

    name = "daily_stats"
    path = "/daily_stats"
    primary_keys = ("data_slice_id", "date")
    filters_by_server = False  # documented with from, to and data_slice only
    schema = th.PropertiesList(
        th.Property("data_slice_id", th.StringType, required=True, description="The data slice the numbers are for."),
        th.Property("date", th.DateType, required=True, description="The day the numbers are for."),
        th.Property("viewers", th.IntegerType, description="Viewers (all protocols)."),
        th.Property("viewers_rtmp", th.IntegerType, description="Viewers over RTMP."),
        th.Property("viewers_hls", th.IntegerType, description="Viewers over HLS."),
        th.Property("viewers_mpeg_dash", th.IntegerType, description="Viewers over MPEG-DASH."),
        th.Property("viewers_rtsp", th.IntegerType, description="Viewers over RTSP."),
        th.Property("viewers_icecast", th.IntegerType, description="Viewers over Icecast."),
        th.Property("viewers_srt", th.IntegerType, description="Viewers over SRT."),
        th.Property("viewers_webrtc", th.IntegerType, description="Viewers over WebRTC."),
        th.Property("total_view_time", th.NumberType, description="Total view time, in the unit the API gives it."),
        th.Property("bytes_sent", th.IntegerType, description="Bytes sent to viewers."),
        th.Property("bytes_received", th.IntegerType, description="Bytes received by the servers."),
        th.Property("views_under_1_min", th.IntegerType, description="Views shorter than 1 minute."),
        th.Property("views_1_to_5_min", th.IntegerType, description="Views of 1 to 5 minutes."),
        th.Property("views_5_to_10_min", th.IntegerType, description="Views of 5 to 10 minutes."),
        th.Property("views_10_to_30_min", th.IntegerType, description="Views of 10 to 30 minutes."),
        th.Property("views_30_to_60_min", th.IntegerType, description="Views of 30 to 60 minutes."),
        th.Property("views_over_60_min", th.IntegerType, description="Views longer than 60 minutes."),
        th.Property(
            "other_metrics",
            th.ObjectType(),
            description="Metrics the day gave that have no column here, under their API names.",
        ),
    ).to_dict()

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:  # noqa: D102
        shared = self._reading[2]
        return [{**readable_daily_stats(day), **shared} for day in self.days_asked(response)]


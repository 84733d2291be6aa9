"""HeadSpin streams: usage by grouping (v2), usage events, and the legacy-only v1 groupings."""

from __future__ import annotations

import datetime as dt
import typing as t
from collections import Counter
from functools import cached_property
from zoneinfo import ZoneInfo

from singer_sdk import typing as th

from taps_common.errors import APIRequestError
from taps_common.records import required_timestamp
from taps_common.timestamps import to_utc_iso
from taps_common.windows import DateWindow, date_windows, records_inside
from tap_headspin.client import (
    FILTERS,
    LEGACY_FILTER_ALIASES,
    HeadSpinStream,
    bin_bounds_to_utc,
    event_passes_filters,
    local_day_range,
    local_time_to_utc,
    report_rows,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    import requests
    from singer_sdk.helpers.types import Context

LEGACY_METRICS = (
    "total_time",
    "avg_session_length",
    "session_count",
    "device_count",
    "user_count",
    "team_count",
)
#: v1 metrics that come with a `unit` (the counts have none).
LEGACY_TIMED_METRICS = ("total_time", "avg_session_length")
#: Field names a v1 row may give a group key under; the docs show none for country or model.
LEGACY_KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "country": ("country", "region"),
    "device_model": ("device_model", "devicemodel", "model"),
    "team": ("team", "team_name"),
}
UTC_ZONE = ZoneInfo("UTC")

# --- schema fragments ---------------------------------------------------------------------------

GROUP_KEYS: dict[str, th.Property] = {
    "device_address": th.Property(
        "device_address", th.StringType, required=True, description="The device, as `device_id@hostname`."
    ),
    "team": th.Property("team", th.StringType, required=True, description="Team name."),
    "user": th.Property(
        "user", th.StringType, required=True, description="The user, as HeadSpin names them."
    ),
    "host": th.Property(
        "host", th.StringType, required=True, description="Host the devices are attached to."
    ),
    "country": th.Property("country", th.StringType, required=True, description="Country of the devices."),
    "device_model": th.Property("device_model", th.StringType, required=True, description="Device model."),
}
START_TIME = th.Property("start_time", th.DateTimeType, required=True, description="Start of the bin, UTC.")
LOCAL_LABEL = th.Property(
    "datetime",
    th.StringType,
    description="The bin's start as HeadSpin prints it, on the wall clock of `timezone`.",
)
V2_BIN_FIELDS = (
    START_TIME,
    th.Property("end_time", th.DateTimeType, description="End of the bin (exclusive), UTC."),
    LOCAL_LABEL,
    th.Property(
        "total_time",
        th.NumberType,
        description=(
            "Usage in the bin, summed over its devices, in `unit` "
            "(to estimate per device, divide by `device_count`)."
        ),
    ),
    th.Property("device_count", th.IntegerType, description="Devices used in the bin."),
    th.Property("unit", th.StringType, description="Unit of `total_time` (the tap asks for `second`)."),
)
LEGACY_BIN_FIELDS = (
    START_TIME,
    LOCAL_LABEL,
    th.Property("total_time", th.NumberType, description="Usage in the bin, in `total_time_unit`."),
    th.Property(
        "total_time_unit", th.StringType, description="Unit of `total_time`: hour, or minute for hour bins."
    ),
    th.Property(
        "avg_session_length", th.NumberType, description="Mean session length, in `avg_session_length_unit`."
    ),
    th.Property(
        "avg_session_length_unit", th.StringType, description="Unit of `avg_session_length` (minute)."
    ),
    th.Property("session_count", th.IntegerType, description="Sessions in the bin."),
    th.Property("device_count", th.IntegerType, description="Distinct devices in the bin."),
    th.Property("user_count", th.IntegerType, description="Distinct users in the bin."),
    th.Property("team_count", th.IntegerType, description="Distinct teams in the bin."),
)


def grouping_schema(group_keys: Sequence[str], bin_fields: Sequence[th.Property]) -> dict:
    """A grouping stream's schema: its group keys, then the bin's fields."""
    return th.PropertiesList(*(GROUP_KEYS[key] for key in group_keys), *bin_fields).to_dict()


# --- HeadSpin quirks, one function each ---------------------------------------------------------


def bin_in_range(record: Mapping[str, t.Any], start: str, end: str, *, first_sync: bool) -> bool:
    """Whether a bin belongs to a sync of [start, end) (UTC texts, compared as strings).

    A bin with an end is kept when it overlaps the range: on a later sync, whose `start` is the
    newest bin's start, that is exactly that bin and the ones after it. The v1 routes give no
    end: the first sync keeps every bin of the days asked, later ones the bins from the bookmark.
    """
    if record["start_time"] >= end:
        return False
    if record.get("end_time"):
        return record["end_time"] > start
    return first_sync or record["start_time"] >= start


def legacy_group_key(row: Mapping[str, t.Any], key: str, path: str) -> t.Any:  # noqa: ANN401
    """A v1 row's value for a group key, under whichever of its known names the row uses."""
    for name in LEGACY_KEY_ALIASES.get(key, (key,)):
        if name in row:
            return row[name]
    names = ", ".join(LEGACY_KEY_ALIASES.get(key, (key,)))
    msg = f"HeadSpin's {path} rows have no {key} field (looked for {names}); the row was {dict(row)!r}"
    raise APIRequestError(msg)


def merge_metric_reports(
    reports: Mapping[str, Iterable[Mapping[str, t.Any]]],
    group_keys: Sequence[str],
    path: str,
) -> list[tuple[int, dict[str, t.Any]]]:
    """One record per bin and group from the v1 routes' one-report-per-metric answers.

    Rows are matched on the group and the bin's `datetime` label. A label that occurs twice for
    one group in one report is the hour repeated when clocks go back: the second occurrence is
    returned with fold 1, so it can be told apart. Returns (fold, record) pairs.
    """
    merged: dict[tuple[t.Any, ...], tuple[int, dict[str, t.Any]]] = {}
    for metric, rows in reports.items():
        seen: Counter[tuple[t.Any, ...]] = Counter()
        for row in rows:
            group = tuple(legacy_group_key(row, key, path) for key in group_keys)
            label = str(row["datetime"])
            fold = seen[group, label]
            seen[group, label] += 1
            _, record = merged.setdefault(
                (group, label, fold), (fold, {**dict(zip(group_keys, group, strict=True)), "datetime": label})
            )
            record[metric] = row.get(metric)
            if metric in LEGACY_TIMED_METRICS:
                record[f"{metric}_unit"] = row.get("unit")
    return list(merged.values())


#: The fields of a usage event the docs list (v0), with `team` in place of `user`/`email` for automation.
EVENT_FIELDS = (
    "user",
    "email",
    "team",
    "device_id",
    "hostname",
    "start_time",
    "end_time",
    "duration",
    "date",
)


#: Fields of a usage event that are not extra ones.
_NOT_EXTRA_FIELDS = frozenset((*EVENT_FIELDS, "device_address"))


def event_time(value: t.Any) -> str:  # noqa: ANN401
    """An event time in the one UTC form: without an offset it is UTC, the zone the tap asks events in.

    What `local_time_to_utc` in UTC, then `to_utc_iso`, give, in one step: it runs twice per event.

    Raises:
        ValueError: when the value is not a date or time.
    """
    text = str(value).strip()
    if len(text) == 8 and text.isdigit():  # noqa: PLR2004  (YYYYMMDD)
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.isoformat(timespec="microseconds") + "+00:00"
    return to_utc_iso(moment)


def event_record(row: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A usage event as a record: times in the one UTC form, the device's address, extras kept.

    Times without an offset are UTC, the zone the tap asks events in. Fields the docs do not list
    go into `extra_fields`, so nothing the API sends is lost.
    """
    get = row.get
    device_id, hostname = get("device_id"), get("hostname")
    address = get("device_address")
    if (device_id is None or hostname is None) and isinstance(address, str) and "@" in address:
        device_id, _, hostname = address.partition("@")
    end_time, date = get("end_time"), get("date")
    # Keys in EVENT_FIELDS order, then the address and the extras (the records' field order).
    record: dict[str, t.Any] = {
        "user": get("user"),
        "email": get("email"),
        "team": get("team"),
        "device_id": device_id,
        "hostname": hostname,
        # The start is the event's key and bookmark: an event without one stops the sync, clearly.
        "start_time": required_timestamp(row, "start_time", "HeadSpin answered /v2/usage/event", event_time),
        "end_time": event_time(end_time) if end_time else end_time,
        "duration": get("duration"),
        "date": None if date is None else str(date),
        "device_address": f"{device_id}@{hostname}",
    }
    record["extra_fields"] = {key: value for key, value in row.items() if key not in _NOT_EXTRA_FIELDS}
    return record


# --- streams ------------------------------------------------------------------------------------


class UsageGroupingStream(HeadSpinStream):
    """Device usage by one v2 grouping, one record per bin and group.

    The newest bin is usually still filling, so the bookmark is the newest bin's start and the
    next sync starts there: it re-reads that one bin, and nothing older.
    """

    grouping: t.ClassVar[str]
    group_keys: t.ClassVar[tuple[str, ...]]
    replication_key = "start_time"
    is_sorted = False  # the docs promise no order

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:  # noqa: D102
        start, end = self.sync_start(context, dt.timedelta(0)), self.sync_end
        first_day, after_last = local_day_range(start, end, self.zone)
        params: dict[str, t.Any] = {
            "start_date": first_day.isoformat(),
            "bin_size": str(self.config.get("bin_size", "day")),
            "timezone": self.zone.key,
            "unit": "second",
            "format": "json",
            **self.v2_filter_params(),
        }
        if self.config.get("end_date"):  # without it HeadSpin reads to now, as the tap does
            params["end_date"] = after_last.isoformat()
        first_sync = self.bookmark(context) is None
        start_text, end_text = to_utc_iso(start), to_utc_iso(end)
        for record in self.request_records({"params": params}):
            if bin_in_range(record, start_text, end_text, first_sync=first_sync):
                yield record

    def parse_response(self, response: requests.Response) -> Iterable[dict]:  # noqa: D102
        for row in report_rows(response):
            start, end = bin_bounds_to_utc(str(row["start_time"]), str(row["end_time"]), self.zone)
            record = {key: row.get(key) for key in self.group_keys}
            record.update(
                start_time=to_utc_iso(start),
                end_time=to_utc_iso(end),
                datetime=row.get("datetime"),
                total_time=row.get("total_time"),
                device_count=row.get("device_count"),
                unit=row.get("unit"),
            )
            yield record


class UsageOrgStream(UsageGroupingStream):
    """Usage of the whole organisation (`/v2/usage/org`, the same as `/v2/usage`)."""

    name = "usage_org"
    grouping = "org"
    path = "/v2/usage/org"
    group_keys = ()
    primary_keys = ("start_time",)
    schema = grouping_schema(group_keys, V2_BIN_FIELDS)


class UsageDeviceStream(UsageGroupingStream):
    """Usage per device."""

    name = "usage_device"
    grouping = "device"
    path = "/v2/usage/device"
    group_keys = ("device_address",)
    primary_keys = ("device_address", "start_time")
    schema = grouping_schema(group_keys, V2_BIN_FIELDS)


class UsageTeamStream(UsageGroupingStream):
    """Usage per team."""

    name = "usage_team"
    grouping = "team"
    path = "/v2/usage/team"
    group_keys = ("team",)
    primary_keys = ("team", "start_time")
    schema = grouping_schema(group_keys, V2_BIN_FIELDS)


class UsageUserStream(UsageGroupingStream):
    """Usage per user."""

    name = "usage_user"
    grouping = "user"
    path = "/v2/usage/user"
    group_keys = ("user",)
    primary_keys = ("user", "start_time")
    schema = grouping_schema(group_keys, V2_BIN_FIELDS)


class UsageHostStream(UsageGroupingStream):
    """Usage per host."""

    name = "usage_host"
    grouping = "host"
    path = "/v2/usage/host"
    group_keys = ("host",)
    primary_keys = ("host", "start_time")
    schema = grouping_schema(group_keys, V2_BIN_FIELDS)


class UsageDeviceTeamStream(UsageGroupingStream):
    """Usage per device, then team (`device_team`; `team/device` and `device-team` are the same)."""

    name = "usage_device_team"
    grouping = "device_team"
    path = "/v2/usage/device_team"
    group_keys = ("device_address", "team")
    primary_keys = ("device_address", "team", "start_time")
    schema = grouping_schema(group_keys, V2_BIN_FIELDS)


class UsageDeviceUserStream(UsageGroupingStream):
    """Usage per device, then user (`device_user`; `user/device` and `device-user` are the same)."""

    name = "usage_device_user"
    grouping = "device_user"
    path = "/v2/usage/device_user"
    group_keys = ("device_address", "user")
    primary_keys = ("device_address", "user", "start_time")
    schema = grouping_schema(group_keys, V2_BIN_FIELDS)


class UsageEventsStream(HeadSpinStream):
    """Individual usage sessions (`/v2/usage/event`), read in windows of `events_window_days`.

    The route takes dates only: each window asks for the UTC days that cover it and keeps the
    events that start inside it, so either reading of `end_date` (its day in or out) gives each
    event once. Events may come in any order, so the bookmark moves when a window is complete.
    """

    name = "usage_events"
    path = "/v2/usage/event"
    primary_keys = ("device_id", "hostname", "start_time")
    replication_key = "start_time"
    bookmark_at_window_ends = True
    schema = th.PropertiesList(
        th.Property("device_id", th.StringType, required=True, description="Device id."),
        th.Property("hostname", th.StringType, required=True, description="Host the device is attached to."),
        th.Property("start_time", th.DateTimeType, required=True, description="Start of the session, UTC."),
        th.Property("end_time", th.DateTimeType, description="End of the session, UTC."),
        th.Property("duration", th.NumberType, description="Length of the session in seconds."),
        th.Property("device_address", th.StringType, description="The device, as `device_id@hostname`."),
        th.Property("user", th.StringType, description="User name (absent for automation sessions)."),
        th.Property("email", th.StringType, description="User email (absent for automation sessions)."),
        th.Property("team", th.StringType, description="Team name (automation sessions)."),
        th.Property("date", th.StringType, description="Date of usage, `YYYYMMDD`, as HeadSpin gives it."),
        th.Property(
            "extra_fields",
            th.ObjectType(additional_properties=True),
            description="Fields HeadSpin sent that the docs do not list, kept as they came.",
        ),
    ).to_dict()

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:  # noqa: D102
        lookback = dt.timedelta(minutes=float(self.config.get("events_lookback_minutes", 0)))
        size = dt.timedelta(days=int(self.config.get("events_window_days", 30)))
        windows = date_windows(self.sync_start(context, lookback), self.sync_end, size)
        return self.records_by_window(context, windows, self._read_window)

    def window_request_context(self, context: Context | None, window: DateWindow) -> Context:
        """The whole UTC days covering `window`, with the filters (the route takes days only)."""
        first_day, after_last = local_day_range(window.start, window.end, UTC_ZONE)
        params = {
            "start_date": first_day.isoformat(),
            "end_date": after_last.isoformat(),
            "timezone": "UTC",
            "format": "json",
            **self.v2_filter_params(),
        }
        return {"params": params}

    def _read_window(self, window: DateWindow) -> Iterator[dict[str, t.Any]]:
        answered = self.request_records(self.window_request_context(None, window))
        records = records_inside(answered, "start_time", window)
        if not self.filtered:
            return records
        return (record for record in records if event_passes_filters(record, self.config))

    @cached_property
    def filtered(self) -> bool:
        """Whether any filter setting is set (events are then checked against them)."""
        return any(self.config.get(setting) for setting in FILTERS)

    def parse_response(self, response: requests.Response) -> Iterable[dict]:  # noqa: D102
        for row in report_rows(response):
            yield event_record(row)


class LegacyUsageGroupingStream(HeadSpinStream):
    """A grouping only the legacy v1 routes offer, every metric merged into one record per bin and group.

    v1 answers one metric per request, so a sync makes one request per metric. The streams are
    not selected by default (v1 is deprecated), unless `groupings` names them.
    """

    selected_by_default = False
    grouping: t.ClassVar[str]
    group_keys: t.ClassVar[tuple[str, ...]]
    replication_key = "start_time"
    is_sorted = False

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:  # noqa: D102
        start, end = self.sync_start(context, dt.timedelta(0)), self.sync_end
        first_day, after_last = local_day_range(start, end, self.zone)
        params: dict[str, t.Any] = {
            "start_date": first_day.strftime("%Y%m%d"),
            "bin_size": str(self.config.get("bin_size", "day")),
            "timezone": self.zone.key,
            "format": "json",
            **self.legacy_filter_params(),
        }
        if self.config.get("end_date"):
            params["end_date"] = after_last.strftime("%Y%m%d")
        reports = {
            metric: list(self.request_records({"params": {**params, "metric": metric}}))
            for metric in LEGACY_METRICS
        }
        first_sync = self.bookmark(context) is None
        start_text, end_text = to_utc_iso(start), to_utc_iso(end)
        for fold, record in merge_metric_reports(reports, self.group_keys, self.path):
            record["start_time"] = to_utc_iso(local_time_to_utc(record["datetime"], self.zone, fold))
            if bin_in_range(record, start_text, end_text, first_sync=first_sync):
                yield record

    def legacy_filter_params(self) -> dict[str, list[str]]:
        """The name, email and address filters as `filter_on.*` parameters (v1 has no id filters)."""
        return {
            parameter: [str(value) for value in self.config[setting]]
            for setting, parameter in LEGACY_FILTER_ALIASES.items()
            if self.config.get(setting)
        }

    def parse_response(self, response: requests.Response) -> Iterable[dict]:  # noqa: D102
        yield from report_rows(response)


class UsageCountryStream(LegacyUsageGroupingStream):
    """Usage per country of the devices (`/v1/usage/country`)."""

    name = "usage_country"
    grouping = "country"
    path = "/v1/usage/country"
    group_keys = ("country",)
    primary_keys = ("country", "start_time")
    schema = grouping_schema(group_keys, LEGACY_BIN_FIELDS)


class UsageDeviceModelStream(LegacyUsageGroupingStream):
    """Usage per device model (`/v1/usage/devicemodel`)."""

    name = "usage_devicemodel"
    grouping = "devicemodel"
    path = "/v1/usage/devicemodel"
    group_keys = ("device_model",)
    primary_keys = ("device_model", "start_time")
    schema = grouping_schema(group_keys, LEGACY_BIN_FIELDS)


class UsageTeamDeviceModelStream(LegacyUsageGroupingStream):
    """Usage per team, then device model (`/v1/usage/team/devicemodel`)."""

    name = "usage_team_devicemodel"
    grouping = "team_devicemodel"
    path = "/v1/usage/team/devicemodel"
    group_keys = ("team", "device_model")
    primary_keys = ("team", "device_model", "start_time")
    schema = grouping_schema(group_keys, LEGACY_BIN_FIELDS)


GROUPING_STREAMS: tuple[type[UsageGroupingStream], ...] = (
    UsageOrgStream,
    UsageDeviceStream,
    UsageTeamStream,
    UsageUserStream,
    UsageHostStream,
    UsageDeviceTeamStream,
    UsageDeviceUserStream,
)
LEGACY_STREAMS: tuple[type[LegacyUsageGroupingStream], ...] = (
    UsageCountryStream,
    UsageDeviceModelStream,
    UsageTeamDeviceModelStream,
)

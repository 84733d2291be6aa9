"""tap-headspin: the HeadSpin Usage API as a Singer tap."""

from __future__ import annotations

import json
import typing as t
import uuid

from singer_sdk import typing as th

from taps_common.errors import SettingsError
from taps_common.airbyte import source_main
from taps_common.tap import BaseUsageTap, run_cli
from taps_common.timestamps import utc_now
from tap_headspin.client import CALENDAR_BIN_SIZES, FILTERS, SECONDS_PER_DAY, timezone_setting_error
from tap_headspin.streams import GROUPING_STREAMS, LEGACY_STREAMS, UsageEventsStream

if t.TYPE_CHECKING:
    from singer_sdk import Stream

    from tap_headspin.client import HeadSpinStream

#: The longest window of the events route: the request covers whole days, one more than the
#: window when it starts mid-day, and the legacy events route refuses more than 120 days.
MAX_EVENTS_WINDOW_DAYS = 119
GROUPINGS = tuple(stream.grouping for stream in (*GROUPING_STREAMS, *LEGACY_STREAMS))


def _filter_setting(name: str, what: str) -> th.Property:
    return th.Property(
        name,
        th.ArrayType(th.StringType),
        title=name.replace("_", " ").capitalize(),
        description=(
            f"Only usage of these {what}. Several values are OR'd; different filter settings are "
            "AND'd. Sent as one repeated parameter per value."
        ),
    )


VENDOR_SETTINGS = th.PropertiesList(
    th.Property(
        "api_url",
        th.URIType,
        default="https://api-dev.headspin.io",
        title="API URL",
        description=(
            "Base URL of the HeadSpin API, without `/v2`. Organisations may have their own host "
            "(such as `https://<org>-api.headspin.io`)."
        ),
    ),
    th.Property(
        "api_token",
        th.StringType,
        required=True,
        secret=True,
        title="API token",
        description="A HeadSpin API token, sent as `Authorization: Bearer`.",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        required=True,
        title="Start date",
        description=(
            "Read usage from this date or datetime on. Without an offset it is read in `timezone`, "
            "as HeadSpin reads its dates."
        ),
    ),
    th.Property(
        "end_date",
        th.DateTimeType,
        title="End date",
        description=(
            "Read usage before this date or datetime (in `timezone` when it has no offset). "
            "Default: now, the newest bin still filling."
        ),
    ),
    th.Property(
        "bin_size",
        th.CustomType({"type": ["string", "integer"]}),
        default="day",
        title="Bin size",
        description=(
            "Size of the usage bins: `hour`, `day`, `week`, `month`, or a number of seconds over 60 "
            "that divides a day (so bins line up the same way whatever day a sync starts). The "
            "legacy streams take only the named sizes."
        ),
    ),
    th.Property(
        "timezone",
        th.StringType,
        default="UTC",
        title="Time zone",
        description=(
            "IANA time zone name (such as `America/New_York`) of the bins and of dates without an "
            "offset; checked before any request."
        ),
    ),
    th.Property(
        "groupings",
        th.ArrayType(th.StringType),
        title="Groupings",
        description=(
            f"Only these grouping streams (`usage_<grouping>`), of: {', '.join(GROUPINGS)}. Default: "
            "every v2 grouping; the legacy ones (country, devicemodel, team_devicemodel) are selected "
            "by default only when named here. Usage events are always offered."
        ),
    ),
    _filter_setting("filter_team_ids", "team ids (UUIDs; not supported by the legacy streams)"),
    _filter_setting("filter_team_names", "team names"),
    _filter_setting("filter_user_ids", "user ids (UUIDs; not supported by the legacy streams)"),
    _filter_setting("filter_user_emails", "user emails"),
    _filter_setting("filter_device_addresses", "device addresses (`device_id@hostname`)"),
    th.Property(
        "events_window_days",
        th.IntegerType(minimum=1, maximum=MAX_EVENTS_WINDOW_DAYS),
        default=30,
        title="Events window (days)",
        description=(
            "Usage events are read in windows of this many days (at most 119: HeadSpin refuses "
            "more than 120 days at once); the bookmark moves after each window, so an interrupted "
            "sync resumes at the window it was in."
        ),
    ),
    th.Property(
        "events_lookback_minutes",
        th.NumberType(minimum=0),
        default=0,
        title="Events lookback (minutes)",
        description=(
            "Each incremental sync re-reads usage events that started this many minutes before "
            "the bookmark, for sessions logged when they end. 0 re-reads only the bookmark's second."
        ),
    ),
)


def bin_size_error(value: object) -> str | None:
    """Why `bin_size` is not one HeadSpin takes, or None."""
    if value in CALENDAR_BIN_SIZES:
        return None
    text = str(value).strip()
    if text.isdigit() and int(text) > 60 and SECONDS_PER_DAY % int(text) == 0:  # noqa: PLR2004
        return None
    if text.isdigit() and int(text) > 60:  # noqa: PLR2004
        return (
            f"`bin_size` is {text} seconds, which does not divide a day (86400 s): HeadSpin may count "
            "such bins from the day a request starts, so they would not line up from one sync to "
            "the next. Use a divisor of 86400 (such as 3600 or 21600) or hour, day, week or month."
        )
    return f"`bin_size` is {value!r}: use hour, day, week, month, or a number of seconds over 60."


class TapHeadSpin(BaseUsageTap):
    """Singer tap for the HeadSpin Usage API."""

    name = "tap-headspin"
    #: Today's usage of the organisation in one bin: the cheapest authenticated request.
    connection_test_path = "/v2/usage/org"
    config_jsonschema = BaseUsageTap.with_common_settings(VENDOR_SETTINGS)

    def settings_errors(self, config: t.Mapping[str, t.Any]) -> list[str]:  # noqa: D102
        errors = super().settings_errors(config)
        for problem in (
            timezone_setting_error(config.get("timezone", "UTC")),
            bin_size_error(config.get("bin_size", "day")),
        ):
            if problem:
                errors.append(problem)
        groupings = config.get("groupings")
        if groupings is not None:
            unknown = sorted(set(groupings) - set(GROUPINGS))
            if unknown:
                errors.append(
                    f"`groupings` names unknown groupings {unknown}; known: {', '.join(GROUPINGS)}."
                )
            if not groupings:
                errors.append("`groupings` is an empty list: leave it unset for every grouping.")
        for setting in FILTERS:
            if config.get(setting) is not None and not config[setting]:
                errors.append(f"`{setting}` is an empty list: leave it unset for usage of every {_FILTERED[setting]}.")
        for setting in ("filter_team_ids", "filter_user_ids"):
            not_uuids = [value for value in config.get(setting) or () if not _is_uuid(value)]
            if not_uuids:
                errors.append(
                    f"`{setting}` holds values that are not UUIDs: {', '.join(map(str, not_uuids))}."
                )
        return errors

    def discover_streams(self) -> list[Stream]:
        """Usage events, and the grouping streams `groupings` asks for (every v2 one by default)."""
        wanted = self.config.get("groupings")
        streams: list[Stream] = [UsageEventsStream(self)]
        for stream_class in GROUPING_STREAMS:
            if wanted is None or stream_class.grouping in wanted:
                streams.append(stream_class(self))
        for legacy_class in LEGACY_STREAMS:
            if wanted is None or legacy_class.grouping in wanted:
                stream = legacy_class(self)
                stream.selected_by_default = wanted is not None  # named in `groupings`: wanted
                streams.append(stream)
        return streams

    def sync_all(self) -> None:
        """Refuse settings the selected legacy streams cannot honour, before any request."""
        legacy = [
            stream.name
            for stream in self.streams.values()
            if stream.name in _LEGACY_NAMES and stream.selected
        ]
        if legacy:
            problems = []
            if str(self.config.get("bin_size", "day")) not in CALENDAR_BIN_SIZES:
                problems.append("`bin_size` must be hour, day, week or month (v1 has no bins in seconds)")
            problems += [
                f"`{setting}` cannot be applied (v1 filters by names and emails only)"
                for setting in ("filter_team_ids", "filter_user_ids")
                if self.config.get(setting)
            ]
            if problems:
                msg = (
                    f"The legacy streams {', '.join(legacy)} read HeadSpin's v1 routes, where "
                    f"{'; '.join(problems)}. Change the setting or deselect those streams."
                )
                raise SettingsError(msg)
        super().sync_all()

    def check_connection(self) -> str:
        """GET today's organisation usage; say how many bins it holds."""
        stream = t.cast("HeadSpinStream", self.streams[UsageEventsStream.name])
        response = stream.probe(
            f"{self.connection_test_path}?start_date={utc_now().date().isoformat()}&bin_size=day"
        )
        try:
            rows = json.loads(response.content).get("report", [])
        except (ValueError, AttributeError):
            return response.text[:100]
        return f"{len(rows)} bin(s) of usage today"


_LEGACY_NAMES = frozenset(stream.name for stream in LEGACY_STREAMS)
#: What each filter setting filters, for its messages.
_FILTERED = {
    "filter_team_ids": "team",
    "filter_team_names": "team",
    "filter_user_ids": "user",
    "filter_user_emails": "user",
    "filter_device_addresses": "device",
}


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def cli() -> None:
    """The `tap-headspin` command."""
    run_cli(TapHeadSpin)


def source() -> None:
    """The `source-headspin` command: the same tap as an Airbyte source."""
    source_main(TapHeadSpin)

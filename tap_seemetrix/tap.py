"""tap-seemetrix: the Seemetrix / 3DiVi REST API as a Singer tap."""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from taps_common.rest import decoded_json
from taps_common.airbyte import source_main
from taps_common.tap import BaseUsageTap, run_cli
from tap_seemetrix import streams

if t.TYPE_CHECKING:
    from singer_sdk import Stream

    from tap_seemetrix.client import SeemetrixStream

#: The API refuses v2 ranges longer than six months; 180 days fit in any six months.
MAX_WINDOW_DAYS = 180

VENDOR_SETTINGS = th.PropertiesList(
    th.Property(
        "api_url",
        th.URIType,
        default="https://analytics.3divi.ru/api",
        title="API URL",
        description="Base URL of the Seemetrix REST API, up to and including `/api`.",
    ),
    th.Property(
        "user_id",
        th.IntegerType(minimum=1),
        required=True,
        title="User id",
        description='Your Seemetrix user id (https://my.seemetrix.net/profile/, "REST API" section).',
    ),
    th.Property(
        "user_key",
        th.StringType,
        required=True,
        secret=True,
        title="User key",
        description=(
            "Your Seemetrix REST API key, from the same page. It is sent as the `key` query "
            "parameter, as the API requires, and masked in all output."
        ),
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        required=True,
        title="Start date",
        description=(
            "Read statistics and sessions from this date or datetime on (UTC when no offset is "
            "given). Hourly and daily rows start at the whole hour or day that holds it."
        ),
    ),
    th.Property(
        "end_date",
        th.DateTimeType,
        title="End date",
        description="Read up to this date or datetime. Default: now, the current hour and day included.",
    ),
    th.Property(
        "device_ids",
        th.ArrayType(th.IntegerType),
        title="Device ids",
        description=(
            "Only these devices (integer ids such as 3024). Default: every device of the user. An id "
            "the user does not own stops the sync with an error. `user_statistics` and `counters` "
            "always cover all of the user's devices."
        ),
    ),
    th.Property(
        "include_device_keys",
        th.BooleanType,
        default=False,
        title="Include device keys",
        description=(
            "Copy each device's own credentials (`k` as `device_key`, `s` as `device_secret`) into "
            "the `devices` stream. Off by default: they are secrets, not analytics."
        ),
    ),
    th.Property(
        "window_days",
        th.IntegerType(minimum=1, maximum=MAX_WINDOW_DAYS),
        default=30,
        title="Window (days)",
        description=(
            "Hourly statistics and the v2 trees are read in windows of this many days (at most 180: "
            "the API refuses ranges over six months). Bookmarks move after each window."
        ),
    ),
    th.Property(
        "sessions_window_hours",
        th.NumberType(exclusive_minimum=0),
        default=24,
        title="Sessions window (hours)",
        description=(
            "Raw sessions are read in windows of this many hours: the route has no paging, so "
            "smaller windows keep each answer small. The bookmark moves after each window."
        ),
    ),
    th.Property(
        "sessions_overlap_minutes",
        th.NumberType(minimum=0),
        default=10,
        title="Sessions overlap (minutes)",
        description=(
            "Each sessions window asks this much past its end and keeps the sessions that start "
            "inside it, so that sessions are found even if the API selects them by their end. "
            "Set it above the longest session you expect."
        ),
    ),
    th.Property(
        "lookback_hours",
        th.NumberType(minimum=0),
        default=0,
        title="Lookback (hours)",
        description=(
            "Each incremental sync re-reads this many hours before its bookmarks, for data that "
            "devices upload late. 0 re-reads only the bookmark's own hour, day or session."
        ),
    ),
    th.Property(
        "tree_granularity",
        th.StringType,
        default="day",
        allowed_values=["day", "hour"],
        title="Tree granularity",
        description=(
            "Periods of `demographic_statistics` and `emotion_statistics`: `day` (`dt_format` "
            "YYYY-MM-DD, the API's default) or `hour` (YYYY-MM-DD HH)."
        ),
    ),
    th.Property(
        "tree_devices_per_page",
        th.IntegerType(minimum=1),
        default=10,
        title="Tree devices per page",
        description="Devices per page of the v2 trees (`obj_in_page`; the API's default is 10).",
    ),
)


class TapSeemetrix(BaseUsageTap):
    """Singer tap for the Seemetrix / 3DiVi REST API."""

    name = "tap-seemetrix"
    connection_test_path = "/user/{user_id}/devices/"
    config_jsonschema = BaseUsageTap.with_common_settings(VENDOR_SETTINGS)

    def settings_errors(self, config: t.Mapping[str, t.Any]) -> list[str]:  # noqa: D102
        errors = super().settings_errors(config)
        device_ids = config.get("device_ids")
        if device_ids is not None and not device_ids:
            errors.append("`device_ids` is an empty list: leave it unset to read every device.")
        if device_ids and len(set(device_ids)) != len(device_ids):
            errors.append(f"`device_ids` names a device twice: {device_ids}.")
        if not str(config.get("user_key") or "").strip():
            errors.append("`user_key` is empty: set the REST API key from https://my.seemetrix.net/profile/.")
        return errors

    def discover_streams(self) -> list[Stream]:  # noqa: D102
        return [
            streams.DevicesStream(self),
            streams.DeviceStatisticsStream(self),
            streams.UserStatisticsStream(self),
            streams.SessionsStream(self),
            streams.DemographicStatisticsStream(self),
            streams.EmotionStatisticsStream(self),
            streams.CountersStream(self),
        ]

    def check_connection(self) -> str:
        """GET the user's device list; say how many devices it holds."""
        stream = t.cast("SeemetrixStream", self.streams["devices"])
        response = stream.probe(self.connection_test_path.format(user_id=self.config["user_id"]))
        try:
            body = decoded_json(response)
        except ValueError:
            return response.text[:100]
        counts = {status: len(body.get(status) or []) for status in streams.DEVICE_STATUSES}
        return f"{sum(counts.values())} devices ({', '.join(f'{n} {s}' for s, n in counts.items())})"


def cli() -> None:
    """The `tap-seemetrix` command."""
    run_cli(TapSeemetrix)


def source() -> None:
    """The `source-seemetrix` command: the same tap as an Airbyte source."""
    source_main(TapSeemetrix)

"""tap-wmspanel: the WMSPanel pull API as a Singer tap."""

from __future__ import annotations

import json
import typing as t

from singer_sdk import typing as th

from taps_common.airbyte import source_main
from taps_common.tap import BaseUsageTap, date_setting_errors, run_cli
from tap_wmspanel import streams
from tap_wmspanel.streams import listed_items

if t.TYPE_CHECKING:
    from singer_sdk import Stream

VENDOR_SETTINGS = th.PropertiesList(
    th.Property(
        "api_url",
        th.URIType,
        default="https://api.wmspanel.com/v1",
        title="API URL",
        description=(
            "Base URL of the WMSPanel pull API, up to and including `/v1` "
            "(the mirror is `https://api.wmspanel.ru/v1`)."
        ),
    ),
    th.Property(
        "client_id",
        th.StringType,
        required=True,
        secret=True,
        title="Client ID",
        description=(
            "The pull API client ID (WMSPanel: Control > API setup > Pull API), or a user-specific "
            "one. Sent in the query string, and masked in all output like the key."
        ),
    ),
    th.Property(
        "api_key",
        th.StringType,
        required=True,
        secret=True,
        title="API key",
        description=(
            "The pull API key that goes with `client_id`. Sent in the query string; the IP address "
            "the tap runs from must be in the account's pull API whitelist."
        ),
    ),
    th.Property(
        "start_date",
        th.DateType,
        required=True,
        title="Start date",
        description="The first day to read (`YYYY-MM-DD`; a datetime counts as its UTC day).",
    ),
    th.Property(
        "end_date",
        th.DateType,
        title="End date",
        description="The last day to read, included. Default: today (UTC), whose numbers are still filling.",
    ),
    th.Property(
        "data_slice_ids",
        th.ArrayType(th.StringType),
        title="Data slice ids",
        description=(
            "Only these data slices. Default: every slice the credentials can see. An id they "
            "cannot see stops the sync with an error."
        ),
    ),
    th.Property(
        "server_id",
        th.StringType,
        title="Server id",
        description=(
            "Only this server's players and devices statistics (the API's `server` filter). "
            "daily_stats always covers the whole slice: that route takes no server filter."
        ),
    ),
    th.Property(
        "lookback_days",
        th.IntegerType(minimum=0),
        default=2,
        title="Lookback (days)",
        description=(
            "Each incremental sync re-reads the bookmark's day and this many days before it, "
            "because recent days are still filling. All of it is still one call per slice and stream."
        ),
    ),
    th.Property(
        "max_days_per_request",
        th.IntegerType(minimum=1),
        title="Maximum days per request",
        description=(
            "Unset (the default): one call per slice and stream for the whole range, which saves "
            "quota (15,000 calls a day). Set it only if WMSPanel refuses long ranges: each range "
            "of this many days is one call."
        ),
    ),
)


class TapWMSPanel(BaseUsageTap):
    """Singer tap for the WMSPanel pull API."""

    name = "tap-wmspanel"
    connection_test_path = "/data_slices"
    config_jsonschema = BaseUsageTap.with_common_settings(VENDOR_SETTINGS)

    def settings_errors(self, config: t.Mapping[str, t.Any]) -> list[str]:
        """Credentials present, days that parse (an end on the start day is one day), lists not empty."""
        errors = [
            f"`{name}` is empty: copy it from WMSPanel (Control > API setup > Pull API)."
            for name in ("client_id", "api_key")
            if not str(config.get(name) or "").strip()
        ]
        errors += date_setting_errors(config, end_inclusive=True)
        data_slice_ids = config.get("data_slice_ids")
        if data_slice_ids is not None and not [slice_id for slice_id in data_slice_ids if slice_id.strip()]:
            errors.append("`data_slice_ids` is empty: leave it unset to read every data slice.")
        if config.get("server_id") is not None and not config["server_id"].strip():
            errors.append("`server_id` is empty: leave it unset to read whole data slices.")
        return errors

    def discover_streams(self) -> list[Stream]:  # noqa: D102
        return [
            streams.DataSlicesStream(self),
            streams.ServersStream(self),
            streams.PlayersStatsStream(self),
            streams.DevicesStatsStream(self),
            streams.DailyStatsStream(self),
        ]

    def check_connection(self) -> str:
        """GET /data_slices (one call of quota); say how many slices the credentials see."""
        text = super().check_connection()
        try:
            slices = listed_items(json.loads(text), "data_slices")
        except ValueError:
            return text[:200]  # not JSON, yet accepted: show what it said
        return f"{len(slices)} data slice(s)"


def cli() -> None:
    """The `tap-wmspanel` command."""
    run_cli(TapWMSPanel)


def source() -> None:
    """The `source-wmspanel` command: the same tap as an Airbyte source."""
    source_main(TapWMSPanel)

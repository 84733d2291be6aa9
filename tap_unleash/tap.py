"""tap-unleash: the Unleash live Analytics API as a Singer tap."""

from __future__ import annotations

import re
import typing as t

from singer_sdk import typing as th

from taps_common.airbyte import source_main
from taps_common.tap import BaseUsageTap, run_cli
from tap_unleash import streams

if t.TYPE_CHECKING:
    from singer_sdk import Stream

VENDOR_SETTINGS = th.PropertiesList(
    th.Property(
        "api_url",
        th.URIType,
        default="https://api.unleashlive.com/v1",
        title="API URL",
        description="Base URL of the Unleash live Analytics API, up to and including `/v1`.",
    ),
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        title="Personal access token",
        description=(
            "An Unleash live personal access token (`ul_pat_...`), sent as "
            "`Authorization: Bearer`. Preferred over `api_key`; tokens expire (by default "
            "after 30 days). One of `access_token` and `api_key` is required."
        ),
    ),
    th.Property(
        "api_key",
        th.StringType,
        secret=True,
        title="API key (legacy)",
        description=(
            "A legacy Unleash live API key, sent as the `x-api-key` header. Used only when "
            "`access_token` is not set."
        ),
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        required=True,
        title="Start date",
        description="Read analytics from this date or datetime on (UTC when no offset is given).",
    ),
    th.Property(
        "end_date",
        th.DateTimeType,
        title="End date",
        description="Read analytics before this date or datetime. Default: now, partial data included.",
    ),
    th.Property(
        "device_ids",
        th.ArrayType(th.StringType),
        title="Device ids",
        description=(
            "Only these devices (ids like `Wabcdb35be35bb72`). Default: every device of the "
            "account. An id the account does not have stops the sync with an error."
        ),
    ),
    th.Property(
        "window_days",
        th.NumberType(exclusive_minimum=0),
        default=30,
        title="Window (days)",
        description=(
            "Analytics are read per device in windows of this many days; the bookmark moves "
            "after each window, so an interrupted sync resumes at the window it was in."
        ),
    ),
    th.Property(
        "lookback_minutes",
        th.NumberType(minimum=0),
        default=0,
        title="Lookback (minutes)",
        description=(
            "Each incremental sync re-reads this many minutes before the device's bookmark, "
            "for detections that arrive late. 0 re-reads only the bookmark's own timestamp."
        ),
    ),
)


class TapUnleash(BaseUsageTap):
    """Singer tap for the Unleash live Analytics API."""

    name = "tap-unleash"
    connection_test_path = "/analytics/version"
    config_jsonschema = BaseUsageTap.with_common_settings(VENDOR_SETTINGS)

    def settings_errors(self, config: t.Mapping[str, t.Any]) -> list[str]:  # noqa: D102
        errors = super().settings_errors(config)
        if not config.get("access_token") and not config.get("api_key"):
            errors.append(
                "Set `access_token` (a personal access token, preferred) or `api_key` "
                "(legacy x-api-key): neither is set."
            )
        device_ids = config.get("device_ids")
        if device_ids is not None and not device_ids:
            errors.append("`device_ids` is an empty list: leave it unset to read every device.")
        return errors

    def discover_streams(self) -> list[Stream]:  # noqa: D102
        return [
            streams.DevicesStream(self),
            streams.SessionsStream(self),
            streams.AnalyticsStream(self),
        ]

    def check_connection(self) -> str:
        """GET /analytics/version; return the version it names.

        The docs show the body `{"1.0.1"}`, which is not JSON, so the version is
        read as text.
        """
        body = super().check_connection()
        found = re.search(r"\d+(?:\.\d+)+", body)
        return found.group(0) if found else body.strip()


def cli() -> None:
    """The `tap-unleash` command."""
    run_cli(TapUnleash)


def source() -> None:
    """The `source-unleash` command: the same tap as an Airbyte source."""
    source_main(TapUnleash)

"""The HeadSpin base stream: URL, auth, the report body, and HeadSpin's ways with dates and times."""

from __future__ import annotations

import datetime as dt
import typing as t
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from singer_sdk.authenticators import BearerTokenAuthenticator

from taps_common.errors import APIRequestError
from taps_common.rest import BaseAPIStream, body_excerpt, decoded_json
from taps_common.timestamps import UTC, parse_timestamp

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    import requests
    from singer_sdk.helpers.types import Context


#: Filter settings, the v2 parameter each is sent as (repeated, one value each), and the field
#: of a usage event that shows it, where events carry one.
FILTERS: dict[str, tuple[str, str]] = {
    "filter_team_ids": ("filter_team_id", "team_id"),
    "filter_team_names": ("filter_team_name", "team"),
    "filter_user_ids": ("filter_user_id", "user_id"),
    "filter_user_emails": ("filter_user_email", "email"),
    "filter_device_addresses": ("filter_device_address", "device_address"),
}
#: The v1 routes filter with `filter_on.<alias>`, and have no alias for team or user ids.
LEGACY_FILTER_ALIASES = {
    "filter_team_names": "filter_on.team_name",
    "filter_user_emails": "filter_on.user_email",
    "filter_device_addresses": "filter_on.device_address",
}
CALENDAR_BIN_SIZES = ("hour", "day", "week", "month")
SECONDS_PER_DAY = 86_400


# --- generic helpers (no HeadSpin knowledge): candidates for taps_common ------------------------


def timezone_setting_error(name: object, setting: str = "timezone") -> str | None:
    """Why `name` is not an IANA time zone the tz database knows, or None when it is one."""
    if not isinstance(name, str) or not name.strip():
        return f"`{setting}` must be an IANA time zone name such as UTC or America/New_York."
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return (
            f"`{setting}` is {name!r}, which is not an IANA time zone name (the tz database's "
            "'TZ database name' column, such as UTC, Europe/Berlin or America/New_York)."
        )
    return None


def setting_instant(value: str | dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A date or datetime setting as an instant: without an offset it is wall-clock time in `zone`."""
    moment = (
        value
        if isinstance(value, dt.datetime)
        else dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def local_day_range(start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> tuple[dt.date, dt.date]:
    """The whole days of `zone` that cover [start, end): the first, and the day after the last.

    APIs that take dates only can then be asked for the days, and the answer cut to the range.
    """
    first = start.astimezone(zone).date()
    local_end = end.astimezone(zone)
    after_last = local_end.date()
    if local_end.timetz().replace(tzinfo=None) != dt.time(0):
        after_last += dt.timedelta(days=1)
    return first, after_last


# --- HeadSpin quirks ----------------------------------------------------------------------------


def report_rows(response: requests.Response) -> list[dict[str, t.Any]]:
    """The rows under `report`, which every usage route answers with."""
    body = decoded_json(response)
    rows = body.get("report") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        msg = f"HeadSpin answered without a `report` list: {body_excerpt(response)}"
        raise APIRequestError(msg)
    return rows


def local_time_to_utc(text: str, zone: ZoneInfo, fold: int = 0) -> dt.datetime:
    """A report time (`2025-01-01 00:00:00`, `2025-01-01`, `20250101`) as an instant.

    HeadSpin prints times on the wall clock of the request's `timezone`, without an offset; an
    offset, when one is given, is honoured. `fold=1` picks the second of a time that occurs twice
    when clocks go back.
    """
    text = text.strip()
    if len(text) == 8 and text.isdigit():  # noqa: PLR2004  (YYYYMMDD)
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone, fold=fold)
    return moment.astimezone(UTC)


def bin_bounds_to_utc(start_text: str, end_text: str, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """A v2 bin's `start_time` and `end_time` as instants, telling apart an hour that occurs twice.

    When clocks go back, `01:00` starts two hour bins. Of the readings of both ends, the bin is
    the shortest one that ends after it starts: `01:00`-`01:00` is the first (summer time to
    winter time), `01:00`-`02:00` the second.
    """
    readings = [
        (local_time_to_utc(start_text, zone, start_fold), local_time_to_utc(end_text, zone, end_fold))
        for start_fold in (0, 1)
        for end_fold in (0, 1)
    ]
    forward = [(end - start, start, end) for start, end in readings if end > start]
    if not forward:
        return readings[0]
    _, start, end = min(forward)
    return start, end


def event_passes_filters(event: Mapping[str, t.Any], config: Mapping[str, t.Any]) -> bool:
    """Whether a usage event agrees with the filter settings, on the fields it carries.

    The docs do not say that `/v2/usage/event` applies the filters, so the tap checks again: an
    event is dropped only when a field it carries contradicts a filter (automation events carry
    a team and no email, for example, so an email filter cannot judge them).
    """
    for setting, (_, event_field) in FILTERS.items():
        allowed = config.get(setting)
        value = event.get(event_field, (event.get("extra_fields") or {}).get(event_field))
        if allowed and value is not None and value not in allowed:
            return False
    return True


class HeadSpinStream(BaseAPIStream):
    """Base stream for the HeadSpin Usage API: one request per report, the rows under `report`."""

    vendor_name = "HeadSpin"
    credential_settings = ("api_token",)

    @cached_property
    def authenticator(self) -> BearerTokenAuthenticator:  # noqa: D102
        return BearerTokenAuthenticator(token=self.config["api_token"])

    def credentials_error_message(self, response: requests.Response) -> str:  # noqa: D102
        return (
            f"HeadSpin refused the API token (HTTP {response.status_code}: {body_excerpt(response)}). "
            "Check the `api_token` setting, and that `api_url` is your organisation's API host: "
            "a token works only on the host it was issued for."
        )

    def get_new_paginator(self) -> None:  # noqa: D102  (the usage routes do not page)
        return None

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:  # noqa: ANN401, ARG002
        """Each stream builds a request's parameters in `get_records` and passes them in the context.

        List values go out as repeated parameters, which is how HeadSpin takes several filter values.
        """
        return dict((context or {}).get("params", {}))

    @cached_property
    def zone(self) -> ZoneInfo:
        """The `timezone` setting (checked before any request)."""
        return ZoneInfo(self.config.get("timezone") or "UTC")

    @property
    def sync_end(self) -> dt.datetime:  # noqa: D102
        if not hasattr(self, "_sync_end"):
            end_date = self.config.get("end_date")
            self._sync_end = setting_instant(end_date, self.zone) if end_date else super().sync_end
        return self._sync_end

    def bookmark(self, context: Context | None) -> str | None:
        """The bookmark this stream (partition) left in the state, if any (never `start_date`)."""
        state = self.get_context_state(context)
        if state.get("replication_key") != self.replication_key:
            return None
        value = state.get("replication_key_value")
        return str(value) if value else None

    def sync_start(self, context: Context | None, lookback: dt.timedelta) -> dt.datetime:
        """The bookmark (less `lookback`) or `start_date`, whichever is later.

        A `start_date` without an offset is read in `timezone`, as HeadSpin reads its dates.
        """
        start = setting_instant(self.config["start_date"], self.zone)
        bookmark = self.bookmark(context)
        if bookmark:
            start = max(start, parse_timestamp(bookmark) - lookback)
        return start

    def v2_filter_params(self) -> dict[str, list[str]]:
        """The filter settings as v2 parameters, one repetition per value."""
        params = {}
        for setting, (parameter, _) in FILTERS.items():
            if values := self.config.get(setting):
                params[parameter] = [str(value) for value in values]
        return params

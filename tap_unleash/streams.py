"""Unleash live streams: devices, sessions, and AI analytics per device."""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk import typing as th

from taps_common.errors import SettingsError
from taps_common.records import required_timestamp
from taps_common.rest import decoded_json
from taps_common.timestamps import from_epoch_ms, to_epoch_ms, to_utc_iso
from taps_common.windows import DateWindow, date_windows, records_inside
from tap_unleash.client import PagedUnleashStream, UnleashStream

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import requests
    from singer_sdk.helpers.types import Context

def zip_keyed_rows(body: t.Mapping[str, t.Any]) -> Iterator[dict[str, t.Any]]:
    """Turn the size-optimized body (`keys` + rows of values) into one dict per row.

    Keys are taken from the body, not assumed, so a reordered or extended key
    list still lands in the right columns.
    """
    keys = body.get("keys") or []
    for row in body.get("data") or []:
        yield dict(zip(keys, row))


def session_started_at(session_id: str) -> str | None:
    """The start of a session whose id is its epoch-millisecond start, as the docs show.

    Ids that are not 13 digits give None rather than a wrong date.
    """
    if len(session_id) == 13 and session_id.isdigit():  # noqa: PLR2004
        return to_utc_iso(from_epoch_ms(int(session_id)))
    return None


class DevicesStream(UnleashStream):
    """Devices of the account (`/analytics/devices`), or those in `device_ids`."""

    name = "devices"
    path = "/analytics/devices"
    primary_keys = ("device_id",)
    replication_key = None
    schema = th.PropertiesList(
        th.Property("device_id", th.StringType, required=True, description="Unleash live device id."),
    ).to_dict()

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        """Keep the configured devices; fail if any of them is not in the account."""
        listed = [str(device) for device in decoded_json(response)]
        wanted = self.config.get("device_ids")
        if wanted:
            missing = sorted(set(wanted) - set(listed))
            if missing:
                msg = (
                    f"`device_ids` lists devices this credential cannot see: {', '.join(missing)}. "
                    f"The account has {len(listed)} device(s); fix `device_ids` or leave it unset."
                )
                raise SettingsError(msg)
            listed = [device for device in listed if device in set(wanted)]
        for device in listed:
            yield {"device_id": device}

    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Iterable[dict | None]:
        yield {"device_id": record["device_id"]}


class SessionsStream(UnleashStream):
    """Session ids of the account (`/analytics/sessions`)."""

    name = "sessions"
    path = "/analytics/sessions"
    primary_keys = ("session_id",)
    replication_key = None
    schema = th.PropertiesList(
        th.Property("session_id", th.StringType, required=True, description="Unleash live session id."),
        th.Property(
            "session_started_at",
            th.DateTimeType,
            description="The session start read from its id (epoch milliseconds), when it is one.",
        ),
    ).to_dict()

    def parse_response(self, response: requests.Response) -> Iterable[dict]:  # noqa: D102
        for session in decoded_json(response):
            session_id = str(session)
            yield {"session_id": session_id, "session_started_at": session_started_at(session_id)}


class AnalyticsStream(PagedUnleashStream):
    """AI detections per device from the size-optimized route, in date windows.

    The range's ends are not documented as inclusive or exclusive, so each
    window asks for one millisecond more on each side and keeps exactly the
    records inside [window start, window end): every reading of the range gives
    each record once. Rows are not assumed to be in time order, so the
    bookmark (one per device) moves only when a window is complete.
    """

    name = "analytics"
    path = "/analytics/{device_id}/{from_ms}/{to_ms}/{page}"
    primary_keys = ("device_id", "session_id", "frame_number", "class_name")
    replication_key = "timestamp"
    parent_stream_type = DevicesStream
    state_partitioning_keys = ("device_id",)
    bookmark_at_window_ends = True
    schema = th.PropertiesList(
        th.Property("device_id", th.StringType, required=True, description="Device that recorded the frame."),
        th.Property("session_id", th.StringType, required=True, description="Session (flight or stream) id."),
        th.Property("frame_number", th.IntegerType, required=True, description="Frame within the video."),
        th.Property("class_name", th.StringType, required=True, description="What the AI model counted."),
        th.Property("count", th.NumberType, description="How many were detected."),
        th.Property("model_id", th.StringType, description="The AI model that produced the row."),
        th.Property("source_file_name", th.StringType, description="The video file analysed."),
        th.Property("timestamp", th.DateTimeType, required=True, description="Time of the frame, UTC."),
    ).to_dict()

    def get_http_request(self, *, page):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201, D102
        request = super().get_http_request(page=page)
        request.url = request.url.replace("{page}", str(page.next_page_token))
        return request

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:  # noqa: D102
        assert context is not None  # always a device partition  # noqa: S101
        return self.records_by_window(
            context,
            self.partition_windows(context),
            lambda window: records_inside(
                self.request_records(self.window_request_context(context, window)), "timestamp", window
            ),
        )

    def partition_windows(self, context: Context) -> Iterable[DateWindow]:
        """The device's windows: from its bookmark (less the lookback) to the sync's end."""
        lookback = dt.timedelta(minutes=float(self.config.get("lookback_minutes", 0)))
        window_days = self.config.get("window_days")
        size = dt.timedelta(days=float(window_days)) if window_days else None
        return date_windows(self.sync_start(context, lookback), self.sync_end, size)

    def window_request_context(self, context: Context, window: DateWindow) -> Context:
        """The range in the path: one millisecond wider at the start (see the class docstring)."""
        return {**context, "from_ms": to_epoch_ms(window.start) - 1, "to_ms": to_epoch_ms(window.end)}

    def parse_response(self, response: requests.Response) -> Iterable[dict]:  # noqa: D102
        where = f"Unleash live answered {self.path}"
        for record in zip_keyed_rows(decoded_json(response)):
            record["timestamp"] = required_timestamp(record, "timestamp", where)
            record["session_id"] = str(record["session_id"])
            yield record

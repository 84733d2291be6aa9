"""OpenSpace streams: 360 videos (incremental, newest first), sites, memberships and field notes."""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk import typing as th

from taps_common.rest import decoded_json
from taps_common.timestamps import normalise_timestamp
from tap_openspace.client import (
    NewestFirstPaginator,
    OpenSpaceStream,
    page_records,
    read_floor,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context

#: Where a page that was read keeps its records' capture times, for the paginator.
_CAPTURE_TIMES_ATTRIBUTE = "_openspace_capture_times"

#: The one sort the vendor's own example asks for; incremental reads depend on it.
NEWEST_CAPTURES_FIRST = "videoStart,DESC"

SITE_FIELDS = (
    th.Property("site_id", th.StringType, description="OpenSpace site (project) id."),
    th.Property("site_name", th.StringType, description="Site name."),
)


def capture_time_or_none(item: t.Mapping[str, t.Any]) -> str | None:
    """A served 360 video's `videoStart` in the one UTC form; None when absent or unreadable."""
    try:
        return normalise_timestamp(item.get("videoStart"))
    except ValueError:
        return None


def membership_key(record: t.Mapping[str, t.Any]) -> str:
    """The memberships key: user, org and site ids joined by "/", empty where a row has none.

    The docs give no key. A membership is a user's role in an org or on one of its sites, so
    the three ids identify it whichever of them the report fills; the role is left out so that a
    changed role updates the row instead of adding one.
    """
    return "/".join(str(record.get(name) or "") for name in ("user_id", "org_id", "site_id"))


class Videos360Stream(OpenSpaceStream):
    """360 video captures (`reports/360-videos`), read newest first down to the bookmark.

    The report has no date filter. It is asked for sorted on `videoStart`, newest first, and
    paging ends at the first page holding a capture older than the bookmark, so a sync costs the
    pages of the new captures plus at most one. Captures sharing the bookmark's timestamp are read
    again, since more may have arrived with it. The bookmark moves only once the whole read has
    reached the bookmark: an interrupted read leaves it where it was, so nothing unread is skipped.
    """

    name = "videos_360"
    report = "360-videos"
    primary_keys = ("video_id",)
    replication_key = "video_start"
    bookmark_at_window_ends = True  # the bookmark moves in `checkpoint`, after a complete read
    timestamp_fields = ("video_start",)
    text_fields = ("video_id", "site_id", "week")
    schema = th.PropertiesList(
        th.Property("video_id", th.StringType, required=True, description="360 video (capture) id."),
        th.Property(
            "video_start",
            th.DateTimeType,
            description="When the capture started, UTC. Null only if the report leaves it out.",
        ),
        th.Property("video_number_of_frames", th.IntegerType, description="Frames in the 360 video."),
        *SITE_FIELDS,
        th.Property("user_email", th.StringType, description="Who captured it, when the report says."),
        th.Property("week", th.StringType, description="The report's week label for the capture, as text."),
    ).to_dict()

    _floor: str | None = None

    def report_params(self, context: Context | None) -> dict[str, t.Any]:  # noqa: ARG002, D102
        return {"sort": NEWEST_CAPTURES_FIRST}

    def get_new_paginator(self) -> NewestFirstPaginator:  # noqa: D102
        return NewestFirstPaginator(self._floor, self._capture_times, self._warn_unsorted, self.fetch_pages_ahead)

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        """Captures from the newest down to the read floor; then, the read complete, the bookmark."""
        _ = self.sync_end  # "now" is frozen at the start: the bookmark never passes it
        bookmark = self.get_context_state(context).get("replication_key_value")
        lookback = dt.timedelta(hours=float(self.config.get("lookback_hours", 0)))
        self._floor = read_floor(bookmark, self.config.get("start_date"), lookback)
        newest: str | None = None
        for record in self.request_records(context):
            started = record["video_start"]
            if started is not None and self._floor is not None and started < self._floor:
                continue  # older than the floor: synced before, or before start_date
            yield record
            if started is not None and (newest is None or started > newest):
                newest = started
        if newest is not None:
            self.checkpoint(context, newest)

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        """The page's records; their capture times are kept on the response for the paginator.

        The paginator asks for them once the page has been read, and gets the times the records
        were given rather than reading every capture's time again.
        """
        times: list[str | None] = []
        setattr(response, _CAPTURE_TIMES_ATTRIBUTE, times)
        for record in super().parse_response(response):
            times.append(record["video_start"])
            yield record

    def _capture_times(self, response: requests.Response) -> list[str | None]:
        times = getattr(response, _CAPTURE_TIMES_ATTRIBUTE, None)
        items = page_records(decoded_json(response))
        if times is not None and len(times) == len(items):  # the page was read through
            return times
        return [capture_time_or_none(item) for item in items]

    def _warn_unsorted(self) -> None:
        self.logger.warning(
            "OpenSpace did not return 360-videos newest first although the tap asked for sort=%s: "
            "this sync reads every page. Nothing is lost, but it costs as many requests as a full sync.",
            NEWEST_CAPTURES_FIRST,
        )


class SitesStream(OpenSpaceStream):
    """Sites (projects) of the account (`reports/sites`)."""

    name = "sites"
    report = "sites"
    primary_keys = ("site_id",)
    replication_key = None
    timestamp_fields = ("site_created",)
    text_fields = ("site_id", "org_id")
    schema = th.PropertiesList(
        th.Property("site_id", th.StringType, required=True, description="OpenSpace site (project) id."),
        th.Property("site_name", th.StringType, description="Site name."),
        th.Property("site_status", th.StringType, description="Site status, as the report gives it."),
        th.Property("site_created", th.DateTimeType, description="When the site was created, UTC."),
        th.Property("org_id", th.StringType, description="Organisation of the site, when the report says."),
        th.Property("org_name", th.StringType, description="Organisation name, when the report says."),
    ).to_dict()


class MembershipsStream(OpenSpaceStream):
    """Who holds which role in which org or site (`reports/memberships`), per org when `org_ids` is set."""

    name = "memberships"
    report = "memberships"
    primary_keys = ("membership_key",)
    replication_key = None
    text_fields = ("user_id", "org_id", "site_id")
    schema = th.PropertiesList(
        th.Property(
            "membership_key",
            th.StringType,
            required=True,
            description="user_id/org_id/site_id, empty where the report gives none (the docs name no key).",
        ),
        th.Property("user_id", th.StringType, description="OpenSpace user id."),
        th.Property("user_email", th.StringType, description="The user's email address."),
        th.Property("user_full_name", th.StringType, description="The user's full name."),
        th.Property("role", th.StringType, description="Role, e.g. Viewer, Editor, Site Admin, Org Admin."),
        th.Property("org_id", th.StringType, description="Organisation: from the row, else the `org_ids` entry read."),
        th.Property("org_name", th.StringType, description="Organisation name, when the report says."),
        *SITE_FIELDS,
    ).to_dict()

    @property
    def partitions(self) -> list[dict[str, t.Any]] | None:
        """One read per configured org (`orgs=<id>`), else one read of everything the key sees."""
        org_ids = self.config.get("org_ids")
        return [{"org_id": org_id} for org_id in org_ids] if org_ids else None

    def report_params(self, context: Context | None) -> dict[str, t.Any]:  # noqa: D102
        return {"orgs": context["org_id"]} if context else {}

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:  # noqa: D102
        if context and row.get("org_id") is None:
            row["org_id"] = context["org_id"]
        row["membership_key"] = membership_key(row)
        return super().post_process(row, context)

    def setting_hint(self, status: int, detail: str) -> str:  # noqa: D102
        if status == 400 and "orgs" in detail.lower():  # noqa: PLR2004
            return " Set `org_ids`: this account's memberships report is read one organisation at a time."
        return super().setting_hint(status, detail)


class FieldNotesStream(OpenSpaceStream):
    """Field notes (`reports/field-notes`)."""

    name = "field_notes"
    report = "field-notes"
    primary_keys = ("id",)
    replication_key = None
    timestamp_fields = ("modified_at",)
    text_fields = ("id", "site_id")
    schema = th.PropertiesList(
        th.Property(
            "id", th.StringType, required=True, description="Field note id (as text, whatever type the API sends)."
        ),
        th.Property("description", th.StringType, description="The note's text."),
        th.Property("status", th.StringType, description="Status, as the report gives it."),
        th.Property("modified_at", th.DateTimeType, description="Last change, UTC."),
        *SITE_FIELDS,
    ).to_dict()

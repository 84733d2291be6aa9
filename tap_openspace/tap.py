"""tap-openspace: the OpenSpace Usage API (report pages) as a Singer tap."""

from __future__ import annotations

import typing as t
from urllib.parse import urlparse

from singer_sdk import typing as th

from taps_common.rest import decoded_json
from taps_common.airbyte import source_main
from taps_common.tap import BaseUsageTap, date_setting_errors, run_cli
from tap_openspace import streams
from tap_openspace.client import REGION_HOSTS, REPORTS_PATH

if t.TYPE_CHECKING:
    from singer_sdk import Stream

    from taps_common.rest import BaseAPIStream

VENDOR_SETTINGS = th.PropertiesList(
    th.Property(
        "api_key",
        th.StringType,
        required=True,
        secret=True,
        title="API key",
        description=(
            "An OpenSpace Usage API key, sent as the `api-key` header. Create one in OpenSpace "
            "under your avatar > View profile > Create key; the account needs the Usage API product."
        ),
    ),
    th.Property(
        "region",
        th.StringType(allowed_values=sorted(REGION_HOSTS)),
        default="us",
        title="Region",
        description=(
            "Where the account lives: `us` (https://api.us.openspace.ai) or `eu` "
            "(https://api.eu.openspace.ai). A key works only in its own region."
        ),
    ),
    th.Property(
        "api_url",
        th.URIType,
        title="API URL",
        description=(
            "Overrides `region`: the API host, e.g. `https://api.us.openspace.ai` (a trailing "
            "`/api/external/v1` is accepted too). For proxies and test servers."
        ),
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description=(
            "Read 360 videos captured from this date or datetime on (UTC when no offset is given). "
            "Default: every capture. Sites, memberships and field notes are always read in full."
        ),
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=1),
        default=1000,
        title="Page size",
        description=(
            "Records asked for per page (`size`). The server may send fewer (it can cap `size`); "
            "paging follows the pages it announces, so any value reads everything."
        ),
    ),
    th.Property(
        "lookback_hours",
        th.NumberType(minimum=0),
        default=0,
        title="Lookback (hours)",
        description=(
            "Each incremental sync also re-reads 360 videos that started this many hours before the "
            "bookmark, for captures uploaded after later ones were already synced. 0 re-reads only "
            "the captures at the bookmark's own timestamp."
        ),
    ),
    th.Property(
        "org_ids",
        th.ArrayType(th.StringType),
        title="Organisation ids",
        description=(
            "Read memberships one organisation at a time (`orgs=<id>`), filling `org_id` from the "
            "organisation asked for. Default: one read of every membership the key can see."
        ),
    ),
)


class TapOpenSpace(BaseUsageTap):
    """Singer tap for the OpenSpace Usage API."""

    name = "tap-openspace"
    # The cheapest authenticated request: one site.
    connection_test_path = f"{REPORTS_PATH}/sites?page=0&size=1"
    config_jsonschema = BaseUsageTap.with_common_settings(VENDOR_SETTINGS)

    def settings_errors(self, config: t.Mapping[str, t.Any]) -> list[str]:  # noqa: D102
        errors = date_setting_errors(config, ("start_date",))
        if not str(config.get("api_key") or "").strip():
            errors.append("`api_key` is empty: set it to an OpenSpace Usage API key.")
        api_url = config.get("api_url")
        if api_url:
            parts = urlparse(str(api_url))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors.append(
                    f"`api_url` is {api_url!r}, which is not an http(s) URL such as "
                    "https://api.us.openspace.ai. Leave it unset to use `region`."
                )
        org_ids = config.get("org_ids")
        if org_ids is not None and (not org_ids or not all(str(org).strip() for org in org_ids)):
            errors.append("`org_ids` is empty or holds an empty id: leave it unset to read every membership.")
        return errors

    def discover_streams(self) -> list[Stream]:  # noqa: D102
        return [
            streams.Videos360Stream(self),
            streams.SitesStream(self),
            streams.MembershipsStream(self),
            streams.FieldNotesStream(self),
        ]

    def check_connection(self) -> str:
        """Read one site; say how many sites the key can see."""
        stream = t.cast("BaseAPIStream", self.streams["sites"])
        body = decoded_json(stream.probe(self.connection_test_path))
        total = body.get("totalElements") if isinstance(body, dict) else len(body)
        return f"{total} site(s) visible to this key"


def cli() -> None:
    """The `tap-openspace` command."""
    run_cli(TapOpenSpace)


def source() -> None:
    """The `source-openspace` command: the same tap as an Airbyte source."""
    source_main(TapOpenSpace)

"""The OpenSpace base stream: host by region, the `api-key` header, Spring pages and Spring errors."""

from __future__ import annotations

import datetime as dt
import typing as t
from functools import cached_property
from urllib.parse import urlparse

from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.pagination import PageNumberPaginator

from taps_common.errors import APIRequestError
from taps_common.redaction import redact
from taps_common.rest import BaseAPIStream, body_excerpt, decoded_json
from taps_common.records import snake_case
from taps_common.timestamps import normalise_timestamp, parse_timestamp, to_utc_iso

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    import requests
    from singer_sdk.authenticators import APIAuthenticatorBase
    from singer_sdk.helpers.types import Context

#: Where the reports live, under the region's host.
REPORTS_PATH = "/api/external/v1/reports"
REGION_HOSTS = {"us": "https://api.us.openspace.ai", "eu": "https://api.eu.openspace.ai"}


# --- OpenSpace quirks, one function each -----------------------------------------------------------


def base_url(config: Mapping[str, t.Any]) -> str:
    """`api_url` when set, else the host of `region`.

    A pasted `api_url` that already ends in `/api/external/v1` (the docs only ever show whole
    report URLs) is taken as the same host rather than doubling the path.
    """
    api_url = str(config.get("api_url") or "").strip().rstrip("/")
    if not api_url:
        return REGION_HOSTS[config.get("region") or "us"]
    return api_url.removesuffix("/api/external/v1").rstrip("/")


def page_records(body: t.Any) -> list[dict[str, t.Any]]:  # noqa: ANN401
    """The records of a report body: a Spring Data page's `content`, or a bare JSON list.

    Raises:
        ValueError: when the body is neither, so the caller can say what it got instead.
    """
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("content"), list):
        return body["content"]
    msg = "the body is neither a Spring page with a `content` list nor a list of records"
    raise ValueError(msg)


def spring_page_is_last(body: t.Any, requested_page: int) -> bool:  # noqa: ANN401
    """Whether a report body is its last page, by what the body says, never by counting records.

    The server may cap `size`, so a page shorter than asked proves nothing. `last` decides; a body
    without it is the last page when `totalPages` says so, and a body with neither ends at an empty
    page. A bare list is the whole report.
    """
    if not isinstance(body, dict):
        return True
    last = body.get("last")
    if isinstance(last, bool):
        return last
    total_pages = body.get("totalPages")
    if isinstance(total_pages, int) and not isinstance(total_pages, bool):
        return requested_page + 1 >= total_pages
    return not page_records(body)


def spring_error_text(response: requests.Response) -> str:
    """`error: message` from a Spring Boot error body (`status`, `error`, `message`, `path`).

    Other bodies give their first characters; secrets are masked either way.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("error") or body.get("message")):
        parts = [str(body[key]) for key in ("error", "message") if body.get(key)]
        return redact(": ".join(parts))
    return body_excerpt(response) or "(empty body)"


def is_newest_first(times: list[str], after: str | None = None) -> bool:
    """Whether capture times run newest first, each no newer than the one before (and than `after`).

    Times are in the one UTC form, so they compare as strings.
    """
    previous = after
    for value in times:
        if previous is not None and value > previous:
            return False
        previous = value
    return True


def read_floor(bookmark: str | None, start_date: str | None, lookback: dt.timedelta) -> str | None:
    """The oldest capture start a sync still reads: the bookmark less `lookback`, never before `start_date`.

    The bookmark itself is included (not "after the bookmark"): captures that share its timestamp
    may have arrived since the last sync. None means read everything.
    """
    candidates = []
    if bookmark:
        candidates.append(parse_timestamp(bookmark) - lookback)
    if start_date:
        candidates.append(parse_timestamp(start_date))
    return to_utc_iso(max(candidates)) if candidates else None


def as_text(value: t.Any) -> str | None:  # noqa: ANN401
    """An id or label as text: the docs do not say whether ids are numbers or strings, so both become strings."""
    if value is None:
        return None
    return str(value)


# --- paginators -----------------------------------------------------------------------------------


def announced_last_page(body: t.Any) -> int | None:  # noqa: ANN401
    """The last page (from 0) a report body announces with `totalPages`, or None when it gives none."""
    total_pages = body.get("totalPages") if isinstance(body, dict) else None
    if isinstance(total_pages, int) and not isinstance(total_pages, bool):
        return total_pages - 1
    return None


class SpringPagePaginator(PageNumberPaginator):
    """Spring Data pages: `page` from 0 until the body says it was the last (see `spring_page_is_last`).

    When there are more pages and the body announces how many (`totalPages`), `on_pages_known`
    is told (next page, last page), so that they can be fetched ahead.
    """

    def __init__(self, on_pages_known: Callable[[int, int], None] | None = None) -> None:
        super().__init__(0)
        self.on_pages_known = on_pages_known

    def has_more(self, response: requests.Response) -> bool:  # noqa: D102
        body = decoded_json(response)
        more = not spring_page_is_last(body, self.current_value)
        if more and self.on_pages_known is not None:
            last_page = announced_last_page(body)
            if last_page is not None and last_page > self.current_value:
                self.on_pages_known(self.current_value + 1, last_page)
        return more

    def continue_if_empty(self, response: requests.Response) -> bool:  # noqa: D102
        return self.has_more(response)


class NewestFirstPaginator(SpringPagePaginator):
    """Spring pages of a report sorted newest first, ending at the first page that reaches `floor`.

    Ending early is safe only if the server really sorted. When a page is not newest first (the
    server ignored `sort`), every remaining page is read and `on_unsorted` is called once.

    Only a read without a floor (every capture) reads every page for sure, so only then is
    `on_pages_known` told of the pages to come: with a floor, a page fetched ahead may be one
    the read never gets to.
    """

    def __init__(
        self,
        floor: str | None,
        times_of: Callable[[requests.Response], list[str | None]],
        on_unsorted: Callable[[], None],
        on_pages_known: Callable[[int, int], None] | None = None,
    ) -> None:
        super().__init__(on_pages_known if floor is None else None)
        self._floor = floor
        self._times_of = times_of
        self._on_unsorted = on_unsorted
        self._oldest_seen: str | None = None
        self.sorted_newest_first = True

    def has_more(self, response: requests.Response) -> bool:  # noqa: D102
        if not super().has_more(response):
            return False
        # Captures without a time sort first or last depending on the database: skip them.
        times = [value for value in self._times_of(response) if value is not None]
        if self.sorted_newest_first and not is_newest_first(times, self._oldest_seen):
            self.sorted_newest_first = False
            self._on_unsorted()
        if times:
            self._oldest_seen = times[-1]  # the page's oldest, while the order holds
        reached_floor = self._floor is not None and bool(times) and times[-1] < self._floor
        return not (self.sorted_newest_first and reached_floor)


# --- the base stream ------------------------------------------------------------------------------


class OpenSpaceStream(BaseAPIStream):
    """Base stream for the reports of the OpenSpace Usage API."""

    vendor_name = "OpenSpace"
    credential_settings = ("api_key",)
    #: The report's name in its path, `/api/external/v1/reports/<report>`.
    report: str = ""
    #: Record fields (snake_case) holding timestamps, normalised to the one UTC form.
    timestamp_fields: tuple[str, ...] = ()
    #: Record fields holding ids or labels, which become strings whatever type the API sends.
    text_fields: tuple[str, ...] = ()

    @property
    def path(self) -> str:  # type: ignore[override]  # noqa: D102
        return f"{REPORTS_PATH}/{self.report}"

    @property
    def url_base(self) -> str:  # noqa: D102
        return base_url(self.config)

    @cached_property
    def authenticator(self) -> APIAuthenticatorBase:
        """The key travels in the `api-key` header, as the vendor's own example sends it."""
        return APIKeyAuthenticator(key="api-key", value=self.config["api_key"], location="header")

    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict[str, t.Any]:
        """Page (from 0) and size; streams add their own (`sort`, `orgs`) in `report_params`."""
        params: dict[str, t.Any] = {"page": next_page_token or 0, "size": int(self.config.get("page_size", 1000))}
        params.update(self.report_params(context))
        return params

    def report_params(self, context: Context | None) -> dict[str, t.Any]:  # noqa: ARG002
        """Stream hook: query parameters beyond paging."""
        return {}

    def get_new_paginator(self) -> SpringPagePaginator:
        """Spring pages; once a body says how many there are, the next ones are fetched ahead."""
        return SpringPagePaginator(on_pages_known=self.fetch_pages_ahead)

    # --- responses ------------------------------------------------------------------------------

    def validate_response_body(self, response: requests.Response) -> None:
        """A 2xx body that is not a report page means `api_url` points somewhere else."""
        try:
            page_records(decoded_json(response))
        except ValueError as failure:
            msg = (
                f"OpenSpace answered {self.path} with a body that is not a report ({failure}): "
                f"{body_excerpt(response)!r}. Check `api_url` (or `region`): it should be the API host, "
                "such as https://api.us.openspace.ai."
            )
            raise APIRequestError(msg) from None

    def credentials_error_message(self, response: requests.Response) -> str:  # noqa: D102
        host = urlparse(self.url_base).netloc
        where = "`api_url`" if self.config.get("api_url") else f"`region` ({self.config.get('region') or 'us'})"
        detail = spring_error_text(response)
        if response.status_code == 403:  # noqa: PLR2004
            return (
                f"OpenSpace refused the API key in `api_key` for {self.report} (HTTP 403: {detail}). "
                "The account needs the Usage API product and the key's user the right to read "
                "reports: check the `api_key` setting, or ask an OpenSpace org admin."
            )
        return (
            f"OpenSpace refused the API key in `api_key` (HTTP {response.status_code}: {detail}). "
            "Check the `api_key` setting: a key is made in OpenSpace under your avatar > View "
            f"profile > Create key. A key works only in its own region; requests went to {host}, "
            f"chosen by {where}."
        )

    def response_error_message(self, response: requests.Response) -> str:
        """Status, path, Spring's `error: message`, and the setting to look at when one fits."""
        path = urlparse(response.url).path or self.path
        detail = spring_error_text(response)
        message = f"OpenSpace answered HTTP {response.status_code} {response.reason} for {path}: {detail}."
        return message + self.setting_hint(response.status_code, detail)

    def setting_hint(self, status: int, detail: str) -> str:
        """The sentence naming the setting to fix for an error, or "" when no setting can help."""
        if status == 404:  # noqa: PLR2004
            return f" Check `api_url` (or `region`): {self.url_base} does not serve this report."
        if status == 400 and "size" in detail.lower():  # noqa: PLR2004
            return " Check `page_size`."
        return ""

    # --- records --------------------------------------------------------------------------------

    def parse_response(self, response: requests.Response) -> Iterable[dict]:  # noqa: D102
        for item in page_records(decoded_json(response)):
            yield self.record_from_report(item)

    def record_from_report(self, item: Mapping[str, t.Any]) -> dict[str, t.Any]:
        """A report row as a record: snake_case names, every schema field present, ids and times normalised.

        Fields the schema does not know are passed on: the SDK drops them with one warning that
        names them, so a new report column is noticed rather than silently lost.
        """
        record = dict.fromkeys(self._schema_fields)  # every schema field, in the schema's order
        keys = tuple(item)
        names = self._record_names.get(keys)
        if names is None:  # a report's rows share their keys: each key list is turned into names once
            if len(self._record_names) >= 1024:  # noqa: PLR2004  (rows whose keys vary without end)
                self._record_names.clear()
            names = self._record_names[keys] = tuple(map(snake_case, keys))
        record.update(zip(names, item.values()))  # unknown names go last, in the report's order
        for name in self.text_fields:
            value = record[name]
            if value is not None and value.__class__ is not str:
                record[name] = as_text(value)
        for name in self.timestamp_fields:
            record[name] = self._timestamp_or_none(name, record[name])
        return record

    @cached_property
    def _record_names(self) -> dict[tuple[str, ...], tuple[str, ...]]:
        """The record names of each list of report keys seen (rows of a report share one or a few)."""
        return {}

    @cached_property
    def _schema_fields(self) -> tuple[str, ...]:
        return tuple(self.schema["properties"])

    def _timestamp_or_none(self, name: str, value: t.Any) -> str | None:  # noqa: ANN401
        """A field's timestamp; an unreadable one becomes null with a warning, not a failed sync."""
        try:
            return normalise_timestamp(value)
        except ValueError:
            self.logger.warning(
                "OpenSpace sent %s %r in %s, which is not a timestamp: left null", name, value, self.report
            )
            return None

"""The Seemetrix base streams: the key in the query, time ranges, windows, and what errors mean."""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from functools import cached_property
from http import HTTPStatus
from urllib.parse import parse_qs, urlparse

from singer_sdk.authenticators import APIKeyAuthenticator

from taps_common.errors import APIRequestError
from taps_common.rest import BaseAPIStream, decoded_json
from taps_common.timestamps import ceil_timestamp, floor_timestamp, parse_timestamp
from taps_common.windows import DateWindow, date_windows, records_inside

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import requests
    from singer_sdk.authenticators import APIAuthenticatorBase
    from singer_sdk.helpers.types import Context

ONE_SECOND = dt.timedelta(seconds=1)
_DEVICE_PATH = re.compile(r"/statistics/device/(\d+)/")


# --- generic helpers (no vendor knowledge): candidates for taps_common ------------------------------








# --- Seemetrix request quirks -------------------------------------------------------------------------


def format_range_bound(moment: dt.datetime) -> str:
    """A `b`/`e` value: `YYYY/MM/DD HH:mm:ss`, local to `tzo`, which the tap always sends as 0."""
    return parse_timestamp(moment).strftime("%Y/%m/%d %H:%M:%S")


def range_params(window: DateWindow, extra_after: dt.timedelta = dt.timedelta(0)) -> dict[str, t.Any]:
    """`b`, `e` and `tzo=0` that cover `window` whichever ends the API treats as inclusive.

    The docs do not say, and `b`/`e` have whole seconds only: `b` is a second before the window
    and `e` at (or just after) its end, so every session inside the window is asked for under
    every reading; the caller keeps only what lies inside the window. `extra_after` widens the
    end further (raw sessions, selected perhaps by their end).
    """
    begin = floor_timestamp(window.start, ONE_SECOND) - ONE_SECOND
    end = ceil_timestamp(window.end + extra_after, ONE_SECOND)
    return {"b": format_range_bound(begin), "e": format_range_bound(end), "tzo": 0}


def refused_device(response: requests.Response) -> str | None:
    """The device id a refused request was about, if any (path or `d`/`device_id` parameter).

    Read from the request URL, which holds the key: only the id leaves this function.
    """
    url = urlparse(response.request.url or "")
    found = _DEVICE_PATH.search(url.path)
    if found:
        return found.group(1)
    query = parse_qs(url.query)
    for name in ("d", "device_id"):
        if query.get(name):
            return query[name][-1]
    return None


class SeemetrixStream(BaseAPIStream):
    """Base stream for the Seemetrix REST API.

    The key travels as the `key` query parameter, so it is in every URL: messages here name
    paths only, and `taps_common` masks the key wherever text leaves the process anyway.
    """

    vendor_name = "Seemetrix"
    credential_settings = ("user_key",)

    @cached_property
    def authenticator(self) -> APIAuthenticatorBase:
        """`?key=<user_key>` on every request, as the docs ask."""
        return APIKeyAuthenticator(key="key", value=self.config["user_key"], location="params")

    def get_url_params(self, context: Context | None, next_page_token: t.Any | None) -> dict[str, t.Any]:  # noqa: ANN401, ARG002, D102, PLR6301
        return dict((context or {}).get("query") or {})

    def get_new_paginator(self) -> None:  # noqa: D102
        return None

    def credentials_error_message(self, response: requests.Response) -> str:
        """401 is the key; 403 is a user id or device id the key may not read."""
        user_id = self.config["user_id"]
        if response.status_code == HTTPStatus.UNAUTHORIZED:
            return (
                "Seemetrix refused the key in `user_key` (HTTP 401). Check the `user_key` setting: "
                "it is the REST API key shown on https://my.seemetrix.net/profile/."
            )
        device = refused_device(response)
        if device is not None:
            return (
                f"Seemetrix refused device {device} for user {user_id} (HTTP 403): the user does not "
                "own it. Check `device_ids` (and `user_id`)."
            )
        return (
            f"Seemetrix refused user {user_id} (HTTP 403): the key is valid but not for this user. "
            "Check the `user_id` setting: it is shown beside the key on https://my.seemetrix.net/profile/."
        )

    def response_error_message(self, response: requests.Response) -> str:
        """A 404 is most often an `api_url` that is wrong (the paths are the docs')."""
        message = super().response_error_message(response)
        if response.status_code == HTTPStatus.NOT_FOUND:
            message += " Check the `api_url` setting (it ends with /api)."
        return message

    def validate_response_body(self, response: requests.Response) -> None:
        """v2 answers carry `ok`, 1 on success: anything else is an error inside a 200."""
        body = decoded_json(response)
        if isinstance(body, dict) and "ok" in body and body["ok"] != 1:
            detail = {key: value for key, value in body.items() if key != "data"}
            msg = f"Seemetrix answered {self.path} with ok={body['ok']!r}: {str(detail)[:300]}"
            raise APIRequestError(msg)


class WindowedSeemetrixStream(SeemetrixStream):
    """A stream read in date windows, whose bookmark moves when a window is complete.

    Subclasses give the window size, the period a row stands for (windows start on whole
    periods), and the queries of one window; `read_window` keeps only rows inside the window.
    """

    bookmark_at_window_ends = True
    #: Windows start on a whole one of these (an hour for hourly rows); None: anywhere.
    period: dt.timedelta | None = None
    #: How far past a window's end the request reaches (see `range_params`).
    extra_after: dt.timedelta = dt.timedelta(0)

    @property
    def window_size(self) -> dt.timedelta:
        """How much one request covers."""
        return dt.timedelta(days=float(self.config.get("window_days", 30)))

    def window_queries(self, context: Context | None, window: DateWindow) -> list[dict[str, t.Any]]:  # noqa: ARG002
        """The query parameters of the requests that read one window (a partition may matter)."""
        return [range_params(window, self.extra_after)]

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:  # noqa: D102
        lookback = dt.timedelta(hours=float(self.config.get("lookback_hours", 0)))
        start = self.sync_start(context, lookback)
        if self.period is not None:
            start = floor_timestamp(start, self.period)
        windows = date_windows(start, self.sync_end, self.window_size)
        return self.records_by_window(context, windows, lambda window: self.read_window(context, window))

    def read_window(self, context: Context | None, window: DateWindow) -> Iterator[dict[str, t.Any]]:
        """Every row of one window, from each of its requests (and their pages)."""
        assert self.replication_key is not None  # noqa: S101
        for query in self.window_queries(context, window):
            records = self.request_records({**(context or {}), "query": query})
            yield from records_inside(records, self.replication_key, window)

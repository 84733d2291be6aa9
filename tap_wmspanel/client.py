"""The WMSPanel base stream: query-string credentials, errors inside HTTP 200, day ranges."""

from __future__ import annotations

import typing as t
from functools import cached_property
from urllib.parse import parse_qsl, urlsplit

from taps_common.auth import QueryStringCredentials
from taps_common.errors import APIRequestError
from taps_common.redaction import SECRETS, redact
from taps_common.rest import BaseAPIStream, body_excerpt

if t.TYPE_CHECKING:
    import requests


#: The query parameters that carry credentials: never repeated in a message.
CREDENTIAL_PARAMETERS = frozenset({"client_id", "api_key"})
#: Calls per account and 24 hours (from 00:00 UTC), per the vendor.
DAILY_CALL_QUOTA = 15_000


# --- WMSPanel quirks --------------------------------------------------------------------------


def status_error_description(body: object) -> str | None:
    """The error a WMSPanel body reports despite HTTP 200, or None when it reports success.

    Success is `"status": "Ok"`; a failure is `{"status": "error", "description": ...}`.
    Any other status counts as a failure, and a body without `status` as a success.
    """
    if not isinstance(body, dict):
        return None
    status = body.get("status")
    if status is None or str(status).strip().lower() == "ok":
        return None
    description = body.get("description") or body.get("message") or body.get("error")
    return str(description) if description else f"status {status!r}, no description"


def mentions_quota(description: str) -> bool:
    """Whether an error description is about the daily call limit (its wording is undocumented)."""
    text = description.lower()
    return "limit" in text or "quota" in text


def request_summary(url: str) -> str:
    """The query parameters of a request, credentials left out: `data_slice=..., from=...`."""
    parameters = [
        f"{name}={value}"
        for name, value in parse_qsl(urlsplit(url).query)
        if name not in CREDENTIAL_PARAMETERS
    ]
    return ", ".join(parameters)


# --- the base stream --------------------------------------------------------------------------


class WMSPanelStream(BaseAPIStream):
    """Base stream for the WMSPanel pull API."""

    vendor_name = "WMSPanel"
    credential_settings = ("client_id", "api_key")

    @cached_property
    def authenticator(self) -> QueryStringCredentials:
        """Both credentials in the query string; the client id is masked in output like the key."""
        SECRETS.add(self.config["client_id"])
        return QueryStringCredentials({"client_id": self.config["client_id"], "api_key": self.config["api_key"]})

    def credentials_error_message(self, response: requests.Response) -> str:
        """A 403 means wrong credentials or a caller IP outside the whitelist: say both."""
        return (
            f"WMSPanel refused the call to {self.path} (HTTP {response.status_code}: "
            f"{body_excerpt(response)}). Either the `client_id` and `api_key` settings are wrong, "
            "or this machine's IP address is not in the account's pull API whitelist "
            "(WMSPanel: Control > API setup > Pull API). Check both settings and the whitelist."
        )

    def validate_response_body(self, response: requests.Response) -> None:
        """HTTP 200 with `"status": "error"` is a failure: stop with its description."""
        try:
            body = self.decoded_body(response)
        except ValueError:
            return  # only the connection probe, which does not require JSON, gets here
        description = status_error_description(body)
        if description is not None:
            raise APIRequestError(self.status_error_message(response, description))

    def status_error_message(self, response: requests.Response, description: str) -> str:
        """The API's own description, the call it refused (no credentials), and what may help."""
        summary = request_summary(response.request.url or "")
        message = f"WMSPanel reported an error for {self.path}"
        message += f" ({summary})" if summary else ""
        message += f": {description.rstrip('.')}."
        # Both hints may apply: the wording of either refusal is undocumented.
        if mentions_quota(description):
            message += (
                f" If that is the daily quota: WMSPanel allows {DAILY_CALL_QUOTA:,} calls per account "
                "per 24 hours, counted from 00:00 UTC; run the sync again after that."
            )
        if self.asks_a_range(response) and not self.config.get("max_days_per_request"):
            message += (
                " If WMSPanel refuses date ranges this long, set `max_days_per_request` so that "
                "each call asks for fewer days (each range is one more call)."
            )
        return redact(message)

    @staticmethod
    def asks_a_range(response: requests.Response) -> bool:
        """Whether the refused call asked for more than one day."""
        parameters = dict(parse_qsl(urlsplit(response.request.url or "").query))
        return parameters.get("from", "") != parameters.get("to", "")

    def get_new_paginator(self) -> None:
        """WMSPanel answers in one body: there are no pages."""
        return

"""The Unleash live base stream: URL, auth, paging, and what its errors mean."""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk.authenticators import APIKeyAuthenticator, BearerTokenAuthenticator

from taps_common.rest import BaseAPIStream, TotalPagesPaginator, body_excerpt, decoded_json

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.authenticators import APIAuthenticatorBase


def total_num_pages(response: requests.Response) -> int:
    """The page count an analytics response announces (pages are 1-based)."""
    body = decoded_json(response)
    return int(body.get("total_num_pages") or 0) if isinstance(body, dict) else 0


def token_has_expired(response: requests.Response) -> bool:
    """Whether a 401/403 says the personal access token expired.

    The docs do not show this answer; API Gateway says "The incoming token has
    expired", and other wordings are likely, so any mention of expiry counts.
    """
    return "expire" in response.text.lower()


class UnleashStream(BaseAPIStream):
    """Base stream for the Unleash live Analytics API."""

    vendor_name = "Unleash live"
    credential_settings = ("access_token", "api_key")

    @cached_property
    def authenticator(self) -> APIAuthenticatorBase:
        """A personal access token as Bearer (preferred), else the legacy `x-api-key`."""
        if token := self.config.get("access_token"):
            return BearerTokenAuthenticator(token=token)
        return APIKeyAuthenticator(key="x-api-key", value=self.config["api_key"], location="header")

    def credentials_error_message(self, response: requests.Response) -> str:  # noqa: D102
        used = "access_token" if self.config.get("access_token") else "api_key"
        if token_has_expired(response):
            return (
                f"Unleash live says the access token has expired (HTTP {response.status_code}). "
                "Personal access tokens expire (by default after 30 days): create a new one "
                "and set it in the `access_token` setting."
            )
        return (
            f"Unleash live refused the credential in `{used}` (HTTP {response.status_code}: "
            f"{body_excerpt(response)}). Check the `{used}` setting: a wrong or revoked key, "
            "or an account without the Analytics API add-on, gives this answer."
        )

    def get_new_paginator(self) -> TotalPagesPaginator | None:  # noqa: D102
        return None


class PagedUnleashStream(UnleashStream):
    """A stream over the 1-based pages of `/analytics/...` data routes."""

    def get_new_paginator(self) -> TotalPagesPaginator:  # noqa: D102
        return self.page_count_paginator(total_num_pages, first_page=1)

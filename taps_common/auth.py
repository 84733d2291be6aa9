"""Authenticators the SDK lacks."""

from __future__ import annotations

import typing as t

from singer_sdk.authenticators import APIAuthenticatorBase

if t.TYPE_CHECKING:
    from collections.abc import Mapping


class QueryStringCredentials(APIAuthenticatorBase):
    """Credentials sent as query parameters of every request (one or several).

    Mark each of them `secret=True` in the settings, or register it with
    `taps_common.redaction.SECRETS`: URLs end up in exception texts.
    """

    def __init__(self, parameters: Mapping[str, str]) -> None:
        super().__init__()
        self.auth_params = dict(parameters)

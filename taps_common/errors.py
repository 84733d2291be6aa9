"""Errors that carry a message meant for the person running the tap.

A `TapUserError` is something the user can fix (a setting, a credential, the
network); the command line prints its message alone, without a stack trace.
Messages are built without secrets, and `redaction` masks them again anyway.
"""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError


class TapUserError(Exception):
    """A failure with a clear, secret-free message that names what to fix."""


class SettingsError(TapUserError):
    """The settings are wrong; raised before any request is made."""


class CredentialsError(TapUserError, FatalAPIError):
    """The API refused the credentials (HTTP 401/403): retrying cannot help."""


class APIRequestError(TapUserError, FatalAPIError):
    """The API refused a request with a client error other than 401/403."""


class APIUnavailableError(TapUserError, FatalAPIError):
    """The API kept failing (5xx, 429, network) until the retries ran out."""

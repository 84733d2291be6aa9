"""The base Tap every vendor's `tap.py` builds on, and the command-line runner.

It adds the settings all taps share (retries, timeouts), registers secret
values for redaction before anything can print them, checks settings that a
JSON schema cannot (dates, ranges, either-or credentials) before any request,
and runs the command line so that a user's mistake prints one clear line
instead of a stack trace.
"""

from __future__ import annotations

import sys
from functools import cached_property
import traceback
import typing as t

import click
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.tap_base import CliTestOptionValue

from taps_common.errors import SettingsError, TapUserError
from taps_common.fetch_ahead import FetchAhead
from taps_common.output import BufferedSingerWriter
from taps_common.redaction import SECRETS, RedactingTextStream, install_log_redaction, redact
from taps_common.timestamps import parse_timestamp

if t.TYPE_CHECKING:
    from taps_common.rest import BaseAPIStream

#: Settings every tap has, appended after the vendor's own.
COMMON_SETTINGS = th.PropertiesList(
    th.Property(
        "max_tries",
        th.IntegerType(minimum=1),
        default=5,
        title="Maximum tries per request",
        description=(
            "How many times one request is tried before the sync fails: 429, 5xx, "
            "timeouts, dropped connections and malformed bodies are retried."
        ),
    ),
    th.Property(
        "concurrent_requests",
        th.IntegerType(minimum=1),
        default=8,
        title="Requests in flight",
        description=(
            "How many requests may be in flight at once: the next pages of a stream, and the "
            "first requests of the next partitions (devices, slices), are fetched ahead while "
            "records are written, while the API's answers take more than 5 ms to come. Records, "
            "their order and the state are those of a sequential sync. 1 turns fetching ahead off."
        ),
    ),
    th.Property(
        "request_timeout",
        th.NumberType(exclusive_minimum=0),
        default=300,
        title="Request timeout (seconds)",
        description="Seconds to wait for the API to answer one request before retrying it.",
    ),
    th.Property(
        "backoff_base_seconds",
        th.NumberType(minimum=0),
        default=2.0,
        title="Backoff base (seconds)",
        description="The first wait between tries; it doubles after every failure.",
    ),
    th.Property(
        "backoff_max_seconds",
        th.NumberType(minimum=0),
        default=120.0,
        title="Longest backoff (seconds)",
        description="The longest wait between tries when the API gives no Retry-After.",
    ),
    th.Property(
        "retry_after_max_seconds",
        th.NumberType(minimum=0),
        default=300.0,
        title="Longest Retry-After wait (seconds)",
        description=(
            "A 429 or 503 with a Retry-After header (seconds or an HTTP date) is "
            "honoured up to this many seconds."
        ),
    ),
)


def date_setting_errors(
    config: t.Mapping[str, t.Any],
    names: t.Iterable[str] = ("start_date", "end_date"),
    *,
    end_inclusive: bool = False,
) -> list[str]:
    """Errors for date settings that do not parse, or an end before the start.

    With `end_inclusive` (an `end_date` naming the last day read) the two may be equal;
    otherwise the end must be after the start.
    """
    errors: list[str] = []
    parsed = {}
    for name in names:
        value = config.get(name)
        if value in (None, ""):
            continue
        try:
            parsed[name] = parse_timestamp(str(value))
        except ValueError:
            errors.append(
                f"`{name}` is {value!r}, which is not an ISO-8601 date or datetime "
                "(for example 2024-01-31 or 2024-01-31T00:00:00Z)."
            )
    start, end = parsed.get("start_date"), parsed.get("end_date")
    if start and end and (end < start if end_inclusive else end <= start):
        relation = "on or after" if end_inclusive else "after"
        errors.append(
            f"`end_date` ({config['end_date']}) must be {relation} `start_date` ({config['start_date']})."
        )
    return errors


class BaseUsageTap(Tap):
    """A Singer tap with the shared settings, redaction and settings checks."""

    #: Messages go through a buffer flushed at every STATE (see `taps_common.output`).
    message_writer_class = BufferedSingerWriter

    #: The distribution all five taps ship in (for `--version` and `--about`).
    package_name = "usage-analytics-taps"
    #: Path of the cheapest authenticated request, for `check_connection`.
    connection_test_path: str = ""

    @classmethod
    def with_common_settings(cls, vendor_settings: th.PropertiesList) -> dict:
        """The tap's `config_jsonschema`: the vendor's settings, then the shared ones."""
        combined = th.PropertiesList(*vendor_settings.wrapped.values(), *COMMON_SETTINGS.wrapped.values())
        return combined.to_dict()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # First of all, before any message can print them: register the secrets.
        register_secrets(self.config, self.config_jsonschema)
        install_log_redaction()
        errors = [redact(error) for error in super()._validate_config(raise_errors=False)]
        if not errors:
            errors = self.settings_errors(self.config)
        if errors and raise_errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        return errors

    def sync_all(self) -> None:
        """Sync, then write out whatever the buffer holds, also when the sync fails.

        Records already read are worth delivering; the last STATE was flushed with
        the records it covers, so nothing claims more than what was written.
        """
        try:
            super().sync_all()
        finally:
            self.fetch_ahead.close()
            flush = getattr(self.message_writer, "flush", None)
            if flush is not None:
                flush()

    @cached_property
    def fetch_ahead(self) -> FetchAhead:
        """The workers that send requests ahead (`concurrent_requests`; 1 turns them off)."""
        return FetchAhead(int(self.config.get("concurrent_requests", 8)))

    def settings_errors(self, config: t.Mapping[str, t.Any]) -> list[str]:  # noqa: PLR6301
        """Vendor hook: checks a JSON schema cannot express. Each error names its setting."""
        return date_setting_errors(config)

    def check_connection(self) -> str:
        """Make the one cheapest authenticated request; return what it said.

        Raises a `TapUserError` with a clear message when it fails.
        """
        stream = t.cast("BaseAPIStream", next(iter(self.streams.values())))
        response = stream.probe(self.connection_test_path)
        return response.text

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """`--test`: one cheap authenticated request, not the SDK's sync of every stream.

        `--test=schema` keeps the SDK's meaning (print the schemas).
        """
        if value != CliTestOptionValue.All.value:
            super().cb_test(ctx, param, value)
            return
        config: _ConfigInput = ctx.params.get("config", _ConfigInput())
        tap = cls(config=config.config, parse_env_config=config.parse_env, validate_config=True)
        answer = tap.check_connection()
        tap.logger.info("Connection test passed: %s answered %r", cls.connection_test_path, answer)
        ctx.exit()


def register_secrets(config: t.Mapping[str, t.Any], schema: t.Mapping[str, t.Any]) -> None:
    """Register the value of every setting the schema marks secret."""
    for name, definition in schema.get("properties", {}).items():
        if definition.get("secret") or definition.get("writeOnly"):
            SECRETS.add(config.get(name))


def run_cli(tap_class: type[Tap]) -> None:
    """Run the tap's command line with redacted stderr and friendly user errors.

    A `TapUserError` (bad settings, refused credentials, an API that stays
    down) prints its message alone and exits 1. Anything else prints a masked
    traceback and exits 1: a bug should still be reportable.
    """
    sys.stderr = RedactingTextStream(sys.stderr)
    try:
        tap_class.cli()  # click exits by itself on success and on usage errors
    except ConfigValidationError as failure:  # raised outside the SDK's own handler
        for error in failure.errors:
            sys.stderr.write(f"{tap_class.name}: settings error: {error}\n")
        sys.stderr.flush()
        sys.exit(1)
    except TapUserError as failure:
        sys.stderr.write(f"{tap_class.name}: error: {failure}\n")
        sys.stderr.flush()
        sys.exit(1)
    except Exception:  # noqa: BLE001
        sys.stderr.write(redact(traceback.format_exc()))
        sys.stderr.flush()
        sys.exit(1)


__all__ = ["COMMON_SETTINGS", "BaseUsageTap", "SettingsError", "date_setting_errors", "run_cli"]

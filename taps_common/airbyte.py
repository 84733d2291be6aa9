"""Any of our taps as an Airbyte source: `spec`, `check`, `discover` and `read` over the Airbyte protocol.

Airbyte stopped running Singer taps in 2024, so this adapter speaks the protocol itself. It runs the
tap in this process and catches its Singer messages through the SDK's `message_writer=` hook:

- RECORD becomes an Airbyte RECORD with `emitted_at`; SCHEMA and ACTIVATE_VERSION have no Airbyte
  counterpart and are dropped.
- STATE becomes one per-stream STATE message for each incrementally read stream whose bookmark
  changed (its whole bookmark, partitions included), written after the records it covers.
- Incoming state, per-stream, global or legacy, becomes the tap's Singer state; a stream read in
  full refresh starts without its bookmark and never emits one, so a later incremental read still
  finds the bookmark it left.
- Logging becomes LOG messages, masked. File descriptor 1 is pointed at stderr and `print` becomes a
  LOG message, so that only protocol messages reach the real stdout.
- A failure ends with a TRACE error (`config_error` for settings and refused credentials,
  `system_error` otherwise) and exit status 1.

Only singer-sdk is needed: the Airbyte CDK and PyAirbyte are test-only tools.
"""

from __future__ import annotations

import argparse
import copy
import io
import logging
import os
import sys
import threading
import time
import traceback
import typing as t
from pathlib import Path

import orjson
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib.encoding.simple import RecordMessage, StateMessage

from taps_common.errors import CredentialsError, SettingsError, TapUserError
from taps_common.output import BufferedSingerWriter, _json_default
from taps_common.redaction import RedactingTextStream, redact

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.singerlib import Message

#: Where a user reads about the connector's settings.
DOCUMENTATION_URL = "https://github.com/usage-analytics-taps/usage-analytics-taps#readme"


#: Python log levels as Airbyte names them.
LOG_LEVELS = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR", "CRITICAL": "FATAL"}

FULL_REFRESH = "full_refresh"
INCREMENTAL = "incremental"


def now_ms() -> int:
    """Milliseconds since the epoch, Airbyte's timestamps."""
    return int(time.time() * 1000)


# --- output -------------------------------------------------------------------------------------


class AirbyteMessageWriter(BufferedSingerWriter):
    """Turns the tap's Singer messages into Airbyte messages on the protocol stream.

    Buffered like the Singer writer (flushed at every STATE, so a state never overtakes its
    records). A lock keeps lines whole when fetch-ahead workers log while records are written.
    """

    def __init__(self, protocol: t.BinaryIO) -> None:
        super().__init__()
        self._protocol = protocol
        self._lock = threading.RLock()
        #: Streams whose bookmarks become STATE messages (incremental reads with a cursor).
        self.state_streams: set[str] = set()
        #: The last stream state written (or received) per stream.
        self.stream_states: dict[str, t.Any] = {}
        self._records_since_state: dict[str, int] = {}

    # Singer messages in --------------------------------------------------------------------------

    def write_message(self, message: Message) -> None:  # noqa: D102
        if isinstance(message, RecordMessage):
            self.write_record(message.stream, message.record, None)
        elif isinstance(message, StateMessage):
            self.write_singer_state(message.value)
        # SCHEMA, ACTIVATE_VERSION and BATCH have no Airbyte counterpart.

    def write_record(self, stream: str, record: dict[str, t.Any], version: int | None) -> None:  # noqa: ARG002
        """One Airbyte RECORD line."""
        head = self._heads.get(stream)
        if head is None:
            head = self._heads[stream] = b'{"type":"RECORD","record":{"stream":' + orjson.dumps(stream) + b',"data":'
        line = head + orjson.dumps(record, default=_json_default) + b',"emitted_at":' + b"%d" % now_ms() + b"}}\n"
        with self._lock:
            self._append(line)
            self._records_since_state[stream] = self._records_since_state.get(stream, 0) + 1

    def write_singer_state(self, singer_state: t.Mapping[str, t.Any]) -> None:
        """A STATE message per incrementally read stream whose bookmark changed, then a flush."""
        bookmarks = singer_state.get("bookmarks") or {}
        for stream in sorted(self.state_streams & bookmarks.keys()):
            stream_state = without_progress_markers(bookmarks[stream])
            if stream_state != self.stream_states.get(stream):
                self.write_stream_state(stream, stream_state)
        self.flush()

    def write_stream_state(self, stream: str, stream_state: t.Any) -> None:  # noqa: ANN401
        """One per-stream STATE message, with the records counted since the last one."""
        stream_state = copy.deepcopy(stream_state)
        self.stream_states[stream] = stream_state
        with self._lock:
            count = self._records_since_state.pop(stream, 0)
        self.write_airbyte(
            {
                "type": "STATE",
                "state": {
                    "type": "STREAM",
                    "stream": {"stream_descriptor": {"name": stream}, "stream_state": stream_state},
                    "sourceStats": {"recordCount": float(count)},
                },
            }
        )

    # Airbyte messages out ------------------------------------------------------------------------

    def write_airbyte(self, message: t.Mapping[str, t.Any]) -> None:
        """Any Airbyte message, in order with the records."""
        with self._lock:
            self._append(orjson.dumps(message, default=_json_default) + b"\n")

    def write_log(self, level: str, text: str) -> None:
        """A LOG message, masked."""
        self.write_airbyte({"type": "LOG", "log": {"level": level, "message": redact(text)}})

    def flush(self) -> None:  # noqa: D102
        with self._lock:
            super().flush()

    def emit(self, data: bytes) -> None:
        """To the protocol stream (the real stdout), never through `sys.stdout`."""
        self._protocol.write(data)
        self._protocol.flush()


class AirbyteLogHandler(logging.Handler):
    """Log records as Airbyte LOG messages."""

    def __init__(self, writer: AirbyteMessageWriter) -> None:
        super().__init__()
        self.writer = writer
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102
        try:
            level = LOG_LEVELS.get(record.levelname, "INFO")
            self.writer.write_log(level, self.format(record))
        except Exception:  # noqa: BLE001
            self.handleError(record)


class StrayOutput(io.TextIOBase):
    """What something prints to `sys.stdout`: each line becomes a LOG message."""

    def __init__(self, writer: AirbyteMessageWriter) -> None:
        super().__init__()
        self.writer = writer
        self._pending = ""

    def writable(self) -> bool:  # noqa: D102
        return True

    def write(self, text: str) -> int:  # noqa: D102
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self.writer.write_log("INFO", line)
        return len(text)

    def flush(self) -> None:  # noqa: D102
        if self._pending.strip():
            self.writer.write_log("INFO", self._pending)
        self._pending = ""


def take_stdout() -> t.BinaryIO:
    """Keep the real stdout for protocol messages only; everything else written to it goes to stderr.

    Descriptor 1 is pointed at stderr, so that child processes and C code cannot write on the
    protocol stream either.
    """
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return protocol


# --- the commands -------------------------------------------------------------------------------


class AirbyteSourceError(Exception):
    """A failure that ends the command with a TRACE error."""

    def __init__(self, message: str, failure_type: str, internal_message: str | None = None) -> None:
        super().__init__(message)
        self.failure_type = failure_type
        self.internal_message = internal_message


def read_json_file(path: str, what: str) -> t.Any:  # noqa: ANN401
    """A JSON file named on the command line; a clear config error when it cannot be read."""
    try:
        return orjson.loads(Path(path).read_bytes())
    except OSError as failure:
        raise AirbyteSourceError(f"Cannot read the {what} file {path}: {failure.strerror}.", "config_error") from None
    except orjson.JSONDecodeError as failure:
        raise AirbyteSourceError(f"The {what} file {path} is not valid JSON: {failure}.", "config_error") from None


def sdk_builtin_settings(tap_class: type[Tap]) -> set[str]:
    """singer-sdk's own settings (stream maps, flattening, batch, faker), as this SDK version adds them."""
    builtin: dict[str, t.Any] = {"properties": {}}
    tap_class.append_builtin_config(builtin)
    return set(builtin["properties"])


def connection_specification(tap_class: type[Tap]) -> dict[str, t.Any]:
    """The tap's settings as Airbyte's connectionSpecification: secrets marked, SDK settings left out.

    The SDK adds its settings to the class's schema when it prints `--about`; they mean nothing
    to an Airbyte deployment.
    """
    schema = copy.deepcopy(tap_class.config_jsonschema)
    builtin = sdk_builtin_settings(tap_class)
    properties = {name: definition for name, definition in schema.get("properties", {}).items() if name not in builtin}
    for definition in properties.values():
        if definition.get("secret") or definition.get("writeOnly"):
            definition["airbyte_secret"] = True
        if definition.get("format") == "date-time":
            accept_dates_in_date_time(definition)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"{tap_class.name.replace('tap-', 'source-')} settings",
        "type": "object",
        "required": [name for name in schema.get("required", []) if name in properties],
        "additionalProperties": True,
        "properties": properties,
    }


#: A date, or a date and time with an optional zone: what the taps' date settings accept.
DATE_OR_DATE_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"


def accept_dates_in_date_time(definition: dict[str, t.Any]) -> None:
    """A `date-time` setting as Airbyte should check it: a plain date is accepted too.

    The taps read `2024-05-01` as midnight UTC, but a validator that checks `format: date-time`
    (Airbyte's UI may) would refuse it; a pattern says what is accepted instead.
    """
    del definition["format"]
    definition["pattern"] = DATE_OR_DATE_TIME
    definition["pattern_descriptor"] = "YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
    definition.setdefault("examples", ["2024-05-01", "2024-05-01T00:00:00Z"])


def spec_message(tap_class: type[Tap]) -> dict[str, t.Any]:
    """The SPEC message."""
    return {
        "type": "SPEC",
        "spec": {
            "documentationUrl": DOCUMENTATION_URL,
            "connectionSpecification": connection_specification(tap_class),
            "supportsIncremental": True,
            "supported_destination_sync_modes": ["overwrite", "append", "append_dedup"],
        },
    }


def build_tap(tap_class: type[Tap], config: t.Any, **options: t.Any) -> Tap:  # noqa: ANN401
    """The tap with these settings; bad settings become a config error naming each."""
    if not isinstance(config, dict):
        raise AirbyteSourceError("The config file must hold a JSON object of settings.", "config_error")
    try:
        return tap_class(config=config, parse_env_config=False, validate_config=True, **options)
    except ConfigValidationError as failure:
        raise as_source_error(failure) from None


def airbyte_stream(entry: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """One discovered Airbyte stream from one Singer catalog entry."""
    replication_key = entry.get("replication_key")
    stream: dict[str, t.Any] = {
        "name": entry["tap_stream_id"],
        "json_schema": entry["schema"],
        "supported_sync_modes": [FULL_REFRESH, INCREMENTAL] if replication_key else [FULL_REFRESH],
        "source_defined_cursor": bool(replication_key),
    }
    if replication_key:
        stream["default_cursor_field"] = [replication_key]
    key_properties = entry.get("key_properties") or []
    if key_properties:
        stream["source_defined_primary_key"] = [[name] for name in key_properties]
    return stream


def catalog_message(tap: Tap) -> dict[str, t.Any]:
    """The CATALOG message."""
    return {"type": "CATALOG", "catalog": {"streams": [airbyte_stream(entry) for entry in tap.catalog_dict["streams"]]}}


def singer_state_from_airbyte(state: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    """Incoming Airbyte state (per-stream, global or legacy, bare or wrapped) as the tap's Singer state."""
    bookmarks: dict[str, t.Any] = {}
    messages = state if isinstance(state, list) else [state]
    for message in messages:
        if not isinstance(message, dict):
            raise AirbyteSourceError("The state file holds something that is not a state message.", "config_error")
        if message.get("type") == "STATE" and isinstance(message.get("state"), dict):
            message = message["state"]  # a whole AirbyteMessage  # noqa: PLW2901
        kind = message.get("type")
        if kind == "STREAM":
            bookmarks.update(stream_state_entry(message.get("stream") or {}))
        elif kind == "GLOBAL":
            for entry in (message.get("global") or {}).get("stream_states") or []:
                bookmarks.update(stream_state_entry(entry))
        elif kind == "LEGACY" or (kind is None and "data" in message and len(message) == 1):
            bookmarks.update(legacy_bookmarks(message.get("data") or {}))
        elif kind is None:
            bookmarks.update(legacy_bookmarks(message))
        else:
            raise AirbyteSourceError(f"Unknown state type {kind!r} in the state file.", "config_error")
    return {"bookmarks": bookmarks}


def stream_state_entry(entry: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """`{stream name: its state}` from a per-stream or global state's entry."""
    name = (entry.get("stream_descriptor") or {}).get("name")
    stream_state = entry.get("stream_state")
    if not name or not isinstance(stream_state, dict):
        return {}
    return {name: stream_state}


def legacy_bookmarks(data: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A legacy state blob: a Singer state (`{"bookmarks": ...}`) or `{stream: state}`."""
    if isinstance(data.get("bookmarks"), dict):
        return dict(data["bookmarks"])
    return {name: value for name, value in data.items() if isinstance(value, dict)}


def without_progress_markers(stream_state: t.Any) -> t.Any:  # noqa: ANN401
    """A stream's bookmark without the SDK's interim `progress_markers` (at any depth).

    Progress markers hold what an unsorted stream saw before its bookmark is final; a resumed
    sync starts from the last final bookmark, as a Singer target would make it.
    """
    if isinstance(stream_state, dict):
        return {key: without_progress_markers(value) for key, value in stream_state.items() if key != "progress_markers"}
    if isinstance(stream_state, list):
        return [without_progress_markers(value) for value in stream_state]
    return stream_state


class ReadPlan:
    """What a configured catalog asks for, in the tap's terms."""

    def __init__(self, configured: t.Any, discovered: t.Mapping[str, t.Any]) -> None:  # noqa: ANN401
        if not isinstance(configured, dict) or not isinstance(configured.get("streams"), list):
            raise AirbyteSourceError("The catalog file must hold a configured catalog with a `streams` list.", "config_error")
        entries = {entry["tap_stream_id"]: entry for entry in discovered["streams"]}
        self.sync_modes: dict[str, str] = {}
        self.properties: dict[str, set[str] | None] = {}
        for item in configured["streams"]:
            stream = item.get("stream") if isinstance(item, dict) else None
            name = stream.get("name") if isinstance(stream, dict) else None
            if name not in entries:
                known = ", ".join(sorted(entries))
                raise AirbyteSourceError(
                    f"The catalog asks for a stream {name!r} that this source does not have (it has {known}).",
                    "config_error",
                )
            mode = item.get("sync_mode")
            if mode not in {FULL_REFRESH, INCREMENTAL}:
                raise AirbyteSourceError(
                    f"The catalog asks for stream {name!r} in sync mode {mode!r}; "
                    f"the modes are {FULL_REFRESH!r} and {INCREMENTAL!r}.",
                    "config_error",
                )
            self.sync_modes[name] = mode
            schema_properties = (stream.get("json_schema") or {}).get("properties")
            self.properties[name] = set(schema_properties) if isinstance(schema_properties, dict) else None
        self.incremental = {
            name for name, mode in self.sync_modes.items() if mode == INCREMENTAL and entries[name].get("replication_key")
        }
        self.full_refresh = set(self.sync_modes) - self.incremental

    def singer_catalog(self, discovered: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """The tap's catalog with exactly the configured streams (and their columns) selected."""
        catalog = copy.deepcopy(dict(discovered))
        for entry in catalog["streams"]:
            name = entry["tap_stream_id"]
            wanted = self.properties.get(name)
            for metadata in entry.get("metadata", []):
                breadcrumb = metadata.get("breadcrumb") or []
                if not breadcrumb:
                    metadata["metadata"]["selected"] = name in self.sync_modes
                elif wanted is not None and len(breadcrumb) == 2:  # noqa: PLR2004
                    if metadata["metadata"].get("inclusion") != "automatic":
                        metadata["metadata"]["selected"] = breadcrumb[1] in wanted
        return catalog

    def starting_state(self, singer_state: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """The incoming Singer state without the bookmarks of streams read in full refresh."""
        bookmarks = dict(singer_state.get("bookmarks") or {})
        for name in self.full_refresh:
            bookmarks.pop(name, None)
        return {"bookmarks": bookmarks}


def check_connection(tap_class: type[Tap], config: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    """CONNECTION_STATUS after the tap's one-request connection test."""
    try:
        tap = build_tap(tap_class, config)
        tap.check_connection()  # type: ignore[attr-defined]
    except AirbyteSourceError as failure:
        if failure.failure_type != "config_error":
            raise
        return connection_status("FAILED", str(failure))
    except TapUserError as failure:
        return connection_status("FAILED", redact(str(failure)))
    return connection_status("SUCCEEDED")


def connection_status(status: str, message: str | None = None) -> dict[str, t.Any]:
    """A CONNECTION_STATUS message."""
    body: dict[str, t.Any] = {"status": status}
    if message:
        body["message"] = message
    return {"type": "CONNECTION_STATUS", "connectionStatus": body}


def read(tap_class: type[Tap], writer: AirbyteMessageWriter, config: t.Any, catalog: t.Any, state: t.Any) -> None:  # noqa: ANN401
    """Sync the configured streams, writing records and per-stream states."""
    discovered = build_tap(tap_class, config).catalog_dict
    plan = ReadPlan(catalog, discovered)
    singer_state = singer_state_from_airbyte(state) if state is not None else {"bookmarks": {}}
    writer.state_streams = set(plan.incremental)
    for name, stream_state in singer_state["bookmarks"].items():
        writer.stream_states[name] = without_progress_markers(stream_state)
    tap = build_tap(
        tap_class,
        config,
        catalog=plan.singer_catalog(discovered),
        state=plan.starting_state(singer_state),
        message_writer=writer,
    )
    tap.sync_all()


def trace_error(error: AirbyteSourceError, stack_trace: str | None = None) -> dict[str, t.Any]:
    """A TRACE error message."""
    body: dict[str, t.Any] = {"message": redact(str(error)), "failure_type": error.failure_type}
    if error.internal_message:
        body["internal_message"] = redact(error.internal_message)
    if stack_trace:
        body["stack_trace"] = redact(stack_trace)
    return {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": float(now_ms()), "error": body}}


def as_source_error(failure: BaseException) -> AirbyteSourceError:
    """Any failure as an AirbyteSourceError of the right failure type."""
    if isinstance(failure, AirbyteSourceError):
        return failure
    if isinstance(failure, ConfigValidationError):
        errors = " ".join(redact(str(error)) for error in failure.errors) or redact(str(failure))
        return AirbyteSourceError(f"Settings error: {errors}", "config_error")
    if isinstance(failure, (SettingsError, CredentialsError)):
        return AirbyteSourceError(str(failure), "config_error")
    if isinstance(failure, TapUserError):
        return AirbyteSourceError(str(failure), "system_error")
    return AirbyteSourceError(
        f"The source failed unexpectedly: {type(failure).__name__}: {failure}",
        "system_error",
        internal_message=repr(failure),
    )


def build_parser(name: str) -> argparse.ArgumentParser:
    """The Airbyte protocol's command line."""
    parser = argparse.ArgumentParser(prog=name, description=f"{name}: an Airbyte source (Airbyte protocol on stdout).")
    commands = parser.add_subparsers(dest="command", required=True)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", help="log at DEBUG level")
    commands.add_parser("spec", help="print the connector's settings specification", parents=[debug])
    for command, text in (("check", "test the connection"), ("discover", "print the streams")):
        sub = commands.add_parser(command, help=text, parents=[debug])
        sub.add_argument("--config", required=True, help="settings file (JSON)")
    sub = commands.add_parser("read", help="read records", parents=[debug])
    sub.add_argument("--config", required=True, help="settings file (JSON)")
    sub.add_argument("--catalog", required=True, help="configured catalog file (JSON)")
    sub.add_argument("--state", help="state file (JSON): per-stream, global or legacy")
    return parser


def run_airbyte_source(
    tap_class: type[Tap], argv: t.Sequence[str] | None = None, protocol: t.BinaryIO | None = None
) -> int:
    """Run one Airbyte protocol command for this tap; return the exit status.

    Protocol messages go to `protocol` (tests), or to the real stdout, taken for them alone.
    `sys.stdout`, `sys.stderr` and the root logger's handlers are restored afterwards.
    """
    name = tap_class.name.replace("tap-", "source-", 1)
    arguments = build_parser(name).parse_args(argv)
    writer = AirbyteMessageWriter(protocol if protocol is not None else take_stdout())
    saved_stdout, saved_stderr = sys.stdout, sys.stderr
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    sys.stdout = StrayOutput(writer)
    sys.stderr = RedactingTextStream(sys.stderr)
    for handler in saved_handlers:
        root.removeHandler(handler)
    log_handler = AirbyteLogHandler(writer)
    root.addHandler(log_handler)
    root.setLevel(logging.DEBUG if arguments.debug else logging.INFO)
    status = 0
    try:
        if arguments.command == "spec":
            writer.write_airbyte(spec_message(tap_class))
        else:
            config = read_json_file(arguments.config, "config")
            if arguments.command == "check":
                writer.write_airbyte(check_connection(tap_class, config))
            elif arguments.command == "discover":
                writer.write_airbyte(catalog_message(build_tap(tap_class, config)))
            else:
                catalog = read_json_file(arguments.catalog, "catalog")
                state = read_json_file(arguments.state, "state") if arguments.state else None
                read(tap_class, writer, config, catalog, state)
    except Exception as failure:  # noqa: BLE001
        error = as_source_error(failure)
        stack = None if isinstance(failure, (AirbyteSourceError, TapUserError)) else traceback.format_exc()
        writer.flush()  # the records read so far, and their states, go first
        writer.write_log("ERROR", str(error))
        writer.write_airbyte(trace_error(error, stack))
        status = 1
    finally:
        sys.stdout.flush()
        writer.flush()
        sys.stdout, sys.stderr = saved_stdout, saved_stderr
        root.removeHandler(log_handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
    return status


def source_main(tap_class: type[Tap]) -> None:
    """The `source-<vendor>` console script."""
    sys.exit(run_airbyte_source(tap_class))


__all__ = ["AirbyteMessageWriter", "ReadPlan", "run_airbyte_source", "singer_state_from_airbyte", "source_main"]

"""Running a tap in-process for the reliability suite, and judging what it did.

Every scenario is judged the same way (`judge`): against the records of a clean run of the same
tap and emulator, the STATE messages against the records emitted before them, and every output
(Singer messages, log lines, the message the command line would print) against the secrets.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
import traceback
import typing as t
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from singer_sdk.exceptions import ConfigValidationError

from emulators.framework import EmulatorServer, Fault
from taps_common.errors import TapUserError
from taps_common.redaction import redact
from tests.helpers import CapturingWriter, Killed
from tests.reliability.taps import DRIFT_FIELD

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from singer_sdk import Tap

    from tests.reliability.taps import TapCase

Key = tuple[str, tuple[t.Any, ...]]


# --- waits ---------------------------------------------------------------------------------------


class WaitRecorder:
    """Stands in for the `time` module where the taps wait: the waits are recorded, not slept.

    Two faces share one clock: `backoff` (the retry loop's waits, which the checks read) and
    `gate` (the fetch-ahead workers held back by a Retry-After). Each recorded wait moves the
    shared clock on by its length, so a loop that sleeps until a time has come ends at once.
    The emulators keep the real `time`: a slow answer is really slow.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skipped = 0.0
        self.waits: list[float] = []
        self.held: list[float] = []
        self.backoff = _TimeFace(self, self.waits)
        self.gate = _TimeFace(self, self.held)

    def monotonic(self) -> float:
        with self._lock:
            return time.monotonic() + self._skipped

    def skip(self, seconds: float, into: list[float]) -> None:
        with self._lock:
            into.append(seconds)
            self._skipped += max(seconds, 0.0)


class _TimeFace:
    """The `time` module, but `sleep` records and `monotonic` follows the recorder's clock."""

    def __init__(self, recorder: WaitRecorder, into: list[float]) -> None:
        self._recorder = recorder
        self._into = into

    def sleep(self, seconds: float) -> None:
        self._recorder.skip(seconds, self._into)

    def monotonic(self) -> float:
        return self._recorder.monotonic()

    def __getattr__(self, name: str) -> t.Any:  # noqa: ANN401
        return getattr(time, name)


# --- logs ----------------------------------------------------------------------------------------


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log line of the block at DEBUG (urllib3's request lines too), as a handler sees it.

    The handler is on the root logger before the tap starts, so the tap's redaction filter is
    installed on it as on any real handler: the lines are what a user's log would hold.
    """
    root = logging.getLogger()
    handler = _ListHandler()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


# --- one in-process run --------------------------------------------------------------------------


@dataclass
class Run:
    """What one run emitted, how it ended, and everything it printed or logged."""

    messages: list[dict[str, t.Any]]
    failure: BaseException | None
    printed: str
    logs: list[str]
    input_state: dict[str, t.Any] | None = None

    @property
    def records(self) -> list[tuple[str, dict[str, t.Any]]]:
        return [(m["stream"], m["record"]) for m in self.messages if m["type"] == "RECORD"]

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, t.Any] | None:
        states = self.states
        return states[-1] if states else self.input_state

    @property
    def clear(self) -> bool:
        """Whether the command line would print one clear message rather than a traceback."""
        return isinstance(self.failure, (TapUserError, ConfigValidationError))


def printed_failure(tap_class: type[Tap], failure: BaseException | None) -> str:
    """What `taps_common.tap.run_cli` prints on stderr for `failure`."""
    if failure is None or isinstance(failure, Killed):
        return ""
    if isinstance(failure, ConfigValidationError):
        return "".join(f"{tap_class.name}: settings error: {error}\n" for error in failure.errors)
    if isinstance(failure, TapUserError):
        return f"{tap_class.name}: error: {failure}\n"
    return redact("".join(traceback.format_exception(failure)))


def run_in_process(
    case: TapCase,
    config: dict[str, t.Any],
    *,
    state: dict[str, t.Any] | None = None,
    writer: CapturingWriter | None = None,
) -> Run:
    """One sync of `case`'s tap; failures (and a simulated kill) are kept, not raised."""
    writer = writer if writer is not None else CapturingWriter()
    failure: BaseException | None = None
    with captured_logs() as logs:
        try:
            tap = case.tap_class(config=config, state=copy.deepcopy(state), message_writer=writer)
            tap.sync_all()
        except (Exception, Killed) as caught:  # noqa: BLE001
            failure = caught
    return Run(writer.messages, failure, printed_failure(case.tap_class, failure), logs, state)


def passes(path_regex: str, count: int) -> list[Fault]:
    """Faults that let `count` requests of a route through unharmed, so the next fault lands later."""
    return [Fault(kind="slow", delay=0.0, path_regex=path_regex, times=count)] if count else []


@contextmanager
def emulator(case: TapCase, faults: Iterable[Fault] = ()) -> Iterator[EmulatorServer]:
    """A fresh emulator of `case`, with `faults` queued."""
    with EmulatorServer(case.make_app()) as server:
        server.app.inject_many(faults)
        yield server


# --- records -------------------------------------------------------------------------------------


_STREAM_KEYS: dict[str, tuple[dict[str, tuple[str, ...]], dict[str, str | None]]] = {}


def _stream_keys(case: TapCase) -> tuple[dict[str, tuple[str, ...]], dict[str, str | None]]:
    if case.name not in _STREAM_KEYS:
        tap = case.tap_class(config=case.config("http://127.0.0.1:9"), validate_config=False)
        _STREAM_KEYS[case.name] = (
            {name: tuple(stream.primary_keys or ()) for name, stream in tap.streams.items()},
            {name: stream.replication_key for name, stream in tap.streams.items()},
        )
    return _STREAM_KEYS[case.name]


def primary_keys(case: TapCase) -> dict[str, tuple[str, ...]]:
    """Each stream's primary key, as the tap declares it."""
    return _stream_keys(case)[0]


def replication_keys(case: TapCase) -> dict[str, str | None]:
    """Each stream's replication key (None for full-table streams)."""
    return _stream_keys(case)[1]


def _without_empty(value: t.Any) -> t.Any:  # noqa: ANN401
    """A value as a target reads it: a null field is an absent one, an empty object null."""
    if isinstance(value, dict):
        cleaned = {k: _without_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None} or None
    if isinstance(value, list):
        return [_without_empty(item) for item in value]
    return value


def without_drift_field(value: t.Any) -> t.Any:  # noqa: ANN401
    """`value` with the drift scenarios' added field removed wherever a record kept it."""
    if isinstance(value, dict):
        return {k: without_drift_field(v) for k, v in value.items() if k != DRIFT_FIELD}
    if isinstance(value, list):
        return [without_drift_field(item) for item in value]
    return value


def record_key(case: TapCase, keys: dict[str, tuple[str, ...]], stream: str, record: dict[str, t.Any]) -> Key:
    """(stream, primary key values); a volatile key field (a snapshot's time) counts as null."""
    volatile = case.volatile.get(stream, ())
    return stream, tuple(None if name in volatile else record.get(name) for name in keys[stream])


def keyed(
    case: TapCase, keys: dict[str, tuple[str, ...]], records: Iterable[tuple[str, dict[str, t.Any]]]
) -> Counter[Key]:
    """The (stream, primary key) of each record, counted."""
    return Counter(record_key(case, keys, stream, record) for stream, record in records)


def by_key(
    case: TapCase, keys: dict[str, tuple[str, ...]], records: Iterable[tuple[str, dict[str, t.Any]]]
) -> dict[Key, dict[str, t.Any]]:
    """Each record under its (stream, primary key), volatile fields left out, empty objects as null."""
    table = {}
    for stream, record in records:
        kept = {k: v for k, v in record.items() if k not in case.volatile.get(stream, ())}
        table[record_key(case, keys, stream, record)] = _without_empty(kept)
    return table


# --- states --------------------------------------------------------------------------------------


def _partitions(stream_state: dict[str, t.Any]) -> list[tuple[dict[str, t.Any], t.Any]]:
    """(context, bookmark) of a stream's state and of each of its partitions."""
    found = []
    if "replication_key_value" in stream_state:
        found.append(({}, stream_state["replication_key_value"]))
    for partition in stream_state.get("partitions") or []:
        if "replication_key_value" in partition:
            found.append((partition.get("context") or {}, partition["replication_key_value"]))
    return found


def _bookmark_in(state: dict[str, t.Any] | None, stream: str, context: dict[str, t.Any]) -> t.Any:  # noqa: ANN401
    for other, value in _partitions(((state or {}).get("bookmarks") or {}).get(stream) or {}):
        if other == context:
            return value
    return None


def state_problems(run: Run, replication: dict[str, str | None]) -> list[str]:
    """Bookmarks ahead of the records emitted before them (for the stream and partition).

    A bookmark the run was given (resuming) is not a claim of this run.
    """
    problems = []
    newest: dict[str, list[dict[str, t.Any]]] = {}
    for message in run.messages:
        if message["type"] == "RECORD":
            newest.setdefault(message["stream"], []).append(message["record"])
            continue
        if message["type"] != "STATE":
            continue
        for stream, stream_state in (message["value"].get("bookmarks") or {}).items():
            key = replication.get(stream)
            if key is None:
                continue
            for context, value in _partitions(stream_state):
                if value is None or value == _bookmark_in(run.input_state, stream, context):
                    continue
                values = [
                    record.get(key)
                    for record in newest.get(stream, [])
                    if all(record.get(name) == wanted for name, wanted in context.items())
                    and record.get(key) is not None
                ]
                if not values or str(value) > str(max(map(str, values))):
                    problems.append(
                        f"{stream} {context or ''} bookmark {value!r} is ahead of the records emitted before it "
                        f"(newest {max(map(str, values)) if values else None!r})"
                    )
    return problems


# --- secrets -------------------------------------------------------------------------------------


def secret_forms(secrets: Iterable[str]) -> set[str]:
    """Each secret plain and in every URL encoding."""
    return {form for secret in secrets for form in (secret, quote(secret, safe=""), quote_plus(secret), quote(secret))}


def secret_hits(secrets: Iterable[str], **outputs: str) -> list[str]:
    """Where any form of any secret shows: `["logs: 'abc...'", ...]`."""
    forms = secret_forms(secrets)
    return [f"{where}: {form!r}" for where, text in outputs.items() for form in forms if form in text]


def run_secret_hits(run: Run, secrets: Iterable[str]) -> list[str]:
    """Secrets in what a run emitted, logged, or would print."""
    return secret_hits(
        secrets,
        stdout="\n".join(json.dumps(message) for message in run.messages),
        logs="\n".join(run.logs),
        stderr=run.printed,
    )


# --- describing outcomes, the same way every run --------------------------------------------------

_PORT = re.compile(r"127\.0\.0\.1:\d+")
#: What names the request that met a fault (which one can vary with fetching ahead): the body
#: that failed to parse, path segments and parameter values holding digits (`v1`, `v2`
#: excepted), and long numbers.
_VOLATILE = (
    re.compile(r"(?<=not valid JSON \()\d+ bytes\): .*"),  # the half body that failed to parse
    re.compile(r"(?<=/)(?!v\d/)[^/\s,()]*\d[^/\s,()]*"),
    re.compile(r"(?<==)[^\s,()&]+"),
    re.compile(r"\b\d{4,}\b"),
)


def first_words(text: str, limit: int = 90, *, mask: bool = True) -> str:
    """The start of a message, cut at a word: what the report shows of it.

    Ports are always masked; with `mask`, so is whatever names the request that failed.
    """
    text = _PORT.sub("EMULATOR", " ".join(text.split()))
    if mask:
        for pattern in _VOLATILE:
            text = pattern.sub("…", text)
    text = text.replace("EMULATOR", "127.0.0.1:PORT")
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",.:;(") + " …"


def error_message(run: Run) -> str:
    """The message of a clear failure, without the command line's `tap-x: error:` prefix."""
    line = run.printed.strip().splitlines()[-1] if run.printed.strip() else ""
    return re.sub(r"^tap-[a-z]+: (settings )?error: ", "", line)


def table_cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass
class Expectation:
    """What a scenario must end in.

    `expect`: "same" (exit 0 and exactly `records`), "error" (exit 1, one clear message holding
    `says`), or "either". `records` defaults to the clean run's; `normalise` is applied to the
    run's records before comparing (the drift scenarios' added field, say).
    """

    expect: str
    says: str = ""
    records: dict[Key, dict[str, t.Any]] | None = None
    normalise: t.Callable[[t.Any], t.Any] | None = None


_CLEAN: dict[str, Run] = {}


def clean_run(case: TapCase) -> Run:
    """The run every scenario of `case` is compared with: no fault, same data (cached)."""
    if case.name not in _CLEAN:
        with emulator(case) as server:
            run = run_in_process(case, case.config(server.url))
        assert run.failure is None, run.printed  # noqa: S101
        keys = primary_keys(case)
        duplicates = [key for key, count in keyed(case, keys, run.records).items() if count > 1]
        assert not duplicates, f"the clean run of {case} emits keys twice: {duplicates[:3]}"  # noqa: S101
        _CLEAN[case.name] = run
    return _CLEAN[case.name]


def clean_records(case: TapCase) -> dict[Key, dict[str, t.Any]]:
    """The clean run's records under their keys."""
    return by_key(case, primary_keys(case), clean_run(case).records)


def judge(case: TapCase, run: Run, config: dict[str, t.Any], expectation: Expectation) -> str:
    """Check a run against the rules every scenario shares; return its outcome for the report.

    Raises:
        AssertionError: naming every rule the run broke.
    """
    keys = primary_keys(case)
    want = expectation.records if expectation.records is not None else clean_records(case)
    records = run.records
    if expectation.normalise is not None:
        records = [(stream, expectation.normalise(record)) for stream, record in records]
    got = by_key(case, keys, records)
    counts = keyed(case, keys, records)
    problems = state_problems(run, replication_keys(case))
    problems += [f"secret in {hit}" for hit in run_secret_hits(run, case.secrets(config))]
    differ = [key for key in got.keys() & want.keys() if got[key] != want[key]]
    extra = [key for key in got.keys() - want.keys()]
    twice = [key for key, count in counts.items() if count > 1]
    if run.failure is None:
        missing = [key for key in want.keys() - got.keys()]
        if expectation.expect == "error":
            problems.append("exited 0, but should have stopped with a clear error")
        if missing or differ or extra or twice:
            problems.append(
                f"exited 0 with records unlike the clean run's: {len(missing)} missing, {len(differ)} "
                f"different, {len(extra)} extra, {len(twice)} twice; e.g. missing {missing[:2]}, "
                f"extra {extra[:2]}, twice {twice[:2]}, different "
                + "; ".join(f"{key}: {got[key]} != {want[key]}" for key in differ[:1])
            )
        outcome = "same records"
    else:
        if not run.clear:
            problems.append(f"not a clear error (a traceback):\n{run.printed[-3000:]}")
        if expectation.expect == "same":
            problems.append(f"should have recovered, but stopped: {run.printed.strip()[-500:]}")
        if expectation.says and expectation.says not in run.printed:
            problems.append(f"the message does not say {expectation.says!r}: {run.printed.strip()[-500:]}")
        if twice:
            problems.append(f"emitted records twice before stopping, e.g. {twice[:2]}")
        if differ or extra:
            problems.append(
                f"emitted records unlike the clean run's before stopping: {len(differ)} different, "
                f"{len(extra)} extra; e.g. " + "; ".join(f"{key}: {got[key]} != {want[key]}" for key in differ[:1])
                + f" {extra[:2]}"
            )
        outcome = f"clear error: {first_words(error_message(run))}"
    assert not problems, f"{case} : " + "\n".join(problems)  # noqa: S101
    return outcome

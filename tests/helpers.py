"""Running a tap in-process and collecting what it emits."""

from __future__ import annotations

import copy
import json
import re
import typing as t
from collections import defaultdict
from dataclasses import dataclass, field

from taps_common.output import BufferedSingerWriter

if t.TYPE_CHECKING:
    from singer_sdk import Tap


class CapturingWriter(BufferedSingerWriter):
    """The taps' own writer, delivering parsed messages to a list instead of stdout.

    In-process tests thus exercise the same serialisation and buffering as a real run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, t.Any]] = []

    def emit(self, data: bytes) -> None:  # noqa: D102
        self.messages.extend(json.loads(line) for line in data.splitlines())


@dataclass
class SyncResult:
    """What one sync emitted, in order."""

    messages: list[dict[str, t.Any]]
    records: dict[str, list[dict[str, t.Any]]] = field(default_factory=lambda: defaultdict(list))
    states: list[dict[str, t.Any]] = field(default_factory=list)

    @property
    def final_state(self) -> dict[str, t.Any]:
        """The last STATE value emitted."""
        return self.states[-1]


def run_sync(
    tap_class: type[Tap],
    config: dict[str, t.Any],
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
) -> SyncResult:
    """Sync every selected stream in-process; return its messages sorted by kind."""
    writer = CapturingWriter()
    # The SDK updates the state it is given in place: keep the caller's copy as it was.
    state = copy.deepcopy(state)
    tap = tap_class(config=config, state=state, catalog=catalog, message_writer=writer)
    tap.sync_all()
    result = SyncResult(messages=writer.messages)
    for message in writer.messages:
        if message["type"] == "RECORD":
            result.records[message["stream"]].append(message["record"])
        elif message["type"] == "STATE":
            result.states.append(message["value"])
    return result


def records_before_each_state(result: SyncResult) -> list[tuple[int, dict[str, t.Any]]]:
    """For each STATE, how many records of any stream were emitted before it."""
    seen = 0
    pairs = []
    for message in result.messages:
        if message["type"] == "RECORD":
            seen += 1
        elif message["type"] == "STATE":
            pairs.append((seen, message["value"]))
    return pairs


class Killed(Exception):  # noqa: N818 - it names what happened to the process
    """Raised by `DyingWriter` where a killed process would have stopped."""


class DyingWriter(CapturingWriter):
    """Dies before writing its `records`-th record, as a killed process would.

    Whatever was still in the buffer is lost with it, as with SIGKILL: only what
    was flushed (records and the STATE messages that follow them) survives.
    """

    def __init__(self, records: int) -> None:
        super().__init__()
        self.records_left = records
        self.dead = False

    def write_record(self, stream: str, record: dict[str, t.Any], version: int | None) -> None:  # noqa: D102
        self._count_down()
        super().write_record(stream, record, version)

    def write_message(self, message: t.Any) -> None:  # noqa: ANN401, D102
        if message.to_dict()["type"] == "RECORD":
            self._count_down()
        super().write_message(message)

    def emit(self, data: bytes) -> None:  # noqa: D102
        if not self.dead:
            super().emit(data)

    def _count_down(self) -> None:
        self.records_left -= 1
        if self.records_left < 0:
            self.dead = True
            raise Killed


def without_clock_values(messages: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Messages less what depends on when they were written (extraction time, signposts)."""
    text = json.dumps([{k: v for k, v in m.items() if k != "time_extracted"} for m in messages])
    return json.loads(re.sub(r'"replication_key_signpost": "[^"]*"', '"replication_key_signpost": ""', text))

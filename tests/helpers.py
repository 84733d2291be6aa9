"""Running a tap in-process and collecting what it emits."""

from __future__ import annotations

import copy
import typing as t
from collections import defaultdict
from dataclasses import dataclass, field

from singer_sdk.io_base import SingerWriter

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.singerlib import Message


class CapturingWriter(SingerWriter):
    """A Singer writer that keeps messages as dicts instead of printing them."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, t.Any]] = []

    def write_message(self, message: Message) -> None:  # noqa: D102
        self.messages.append(message.to_dict())


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

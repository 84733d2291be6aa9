"""The lean record loop writes exactly the messages of the SDK's own loop, for every tap.

`BaseAPIStream._sync_records` replaces the SDK's per-record loop for plain streams (issue 7).
Each tap syncs everything against its emulator twice: with the taps' writer (lean loop and
direct records) and with the SDK's writer (the SDK's loop and message objects). The messages
must be the same, in the same order, STATE messages included.
"""

from __future__ import annotations

import json
import typing as t

import pytest
from singer_sdk.io_base import SingerWriter
from singer_sdk.streams.core import Stream

from emulators.framework import EmulatorServer
from taps_common.rest import BaseAPIStream
from tests.helpers import CapturingWriter, without_clock_values
from tests.reliability.taps import CASES, TapCase


class SDKPathWriter(SingerWriter):
    """The SDK's writer, keeping messages: streams take the SDK's loop and message path with it."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, t.Any]] = []

    def write_message(self, message: t.Any) -> None:  # noqa: ANN401, D102
        self.messages.append(json.loads(self.format_message(message)))


@pytest.fixture(scope="module", params=CASES, ids=str)
def served(request: pytest.FixtureRequest) -> t.Iterator[tuple[TapCase, EmulatorServer]]:
    case: TapCase = request.param
    with EmulatorServer(case.make_app()) as server:
        yield case, server


def sync(case: TapCase, server: EmulatorServer, writer: t.Any, state: dict | None = None) -> list[dict]:  # noqa: ANN401
    config = case.config(server.url, concurrent_requests=1)
    case.tap_class(config=config, state=state, message_writer=writer).sync_all()
    return writer.messages


def comparable(case: TapCase, messages: list[dict]) -> list[dict]:
    """Messages less clock values and the fields that differ between runs by design."""
    messages = without_clock_values(messages)
    for message in messages:
        for name in case.volatile.get(message.get("stream", ""), ()):
            message.get("record", {}).pop(name, None)
    return messages


@pytest.fixture
def lean_loops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The streams whose records went through the lean loop (so the comparison is not vacuous)."""
    used: list[str] = []
    original = BaseAPIStream._sync_plain_records

    def spy(self: BaseAPIStream, *args: t.Any) -> t.Any:  # noqa: ANN401
        used.append(self.name)
        return original(self, *args)

    monkeypatch.setattr(BaseAPIStream, "_sync_plain_records", spy)
    return used


@pytest.mark.parametrize("state_every", [Stream.STATE_MSG_FREQUENCY, 7])
def test_the_lean_loop_writes_the_sdk_loops_messages(
    served: tuple[TapCase, EmulatorServer], lean_loops: list[str], monkeypatch: pytest.MonkeyPatch, state_every: int
) -> None:
    case, server = served
    monkeypatch.setattr(Stream, "STATE_MSG_FREQUENCY", state_every)
    lean = sync(case, server, CapturingWriter())
    assert lean_loops, "no stream took the lean loop"
    streams_in_lean_loop = set(lean_loops)
    lean_loops.clear()
    sdk = sync(case, server, SDKPathWriter())
    assert not lean_loops  # the SDK's writer takes the SDK's loop
    records = [m for m in lean if m["type"] == "RECORD"]
    assert {m["stream"] for m in records} >= streams_in_lean_loop - {"devices"}
    assert len(records) > 20
    assert comparable(case, lean) == comparable(case, sdk)


def test_an_incremental_sync_from_a_state_is_the_same_through_both_loops(
    served: tuple[TapCase, EmulatorServer],
) -> None:
    case, server = served
    first = sync(case, server, CapturingWriter())
    state = next(m["value"] for m in reversed(first) if m["type"] == "STATE")
    lean = sync(case, server, CapturingWriter(), state=state)
    sdk = sync(case, server, SDKPathWriter(), state=state)
    assert comparable(case, lean) == comparable(case, sdk)


def test_a_record_limit_takes_the_sdks_loop(served: tuple[TapCase, EmulatorServer], lean_loops: list[str]) -> None:
    case, server = served
    config = case.config(server.url, concurrent_requests=1)
    writer = CapturingWriter()
    tap = case.tap_class(config=config, message_writer=writer)
    tap.run_sync_dry_run(dry_run_record_limit=1)  # what `--test` runs
    writer.flush()
    assert lean_loops == []
    assert [m for m in writer.messages if m["type"] == "RECORD"]


def test_records_dropped_stripped_of_their_partition_keys_or_with_unknown_fields_agree_too(
    monkeypatch: pytest.MonkeyPatch, lean_loops: list[str]
) -> None:
    """What the taps' records rarely do, forced: both loops must still write the same messages."""
    from tap_unleash.streams import AnalyticsStream  # noqa: PLC0415

    original = AnalyticsStream.post_process

    def altered(self: AnalyticsStream, row: dict, context: dict | None = None) -> dict | None:
        row = original(self, row, context)
        row.pop("device_id")  # the loop puts the partition's key back
        if row["frame_number"] % 5 == 0:
            return None  # dropped: neither written nor counted
        if row["frame_number"] % 7 == 0:
            row["not_in_the_schema"] = 1  # the SDK's path drops it, with its warning
        return row

    monkeypatch.setattr(AnalyticsStream, "post_process", altered)
    case = next(case for case in CASES if case.name == "tap-unleash")
    with EmulatorServer(case.make_app()) as server:
        lean = sync(case, server, CapturingWriter())
        sdk = sync(case, server, SDKPathWriter())
    assert "analytics" in lean_loops
    analytics = [m["record"] for m in lean if m["type"] == "RECORD" and m["stream"] == "analytics"]
    assert analytics
    assert all(record["device_id"] for record in analytics)
    assert not any("not_in_the_schema" in record for record in analytics)
    assert comparable(case, lean) == comparable(case, sdk)

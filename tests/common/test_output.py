"""The fast output path writes exactly what the SDK's own path would."""

from __future__ import annotations

import io
import json
import typing as t

import pytest
from singer_sdk.io_base import SingerWriter

from emulators.framework import EmulatorServer
from emulators.unleash import UnleashEmulator
from taps_common.output import FLUSH_BYTES, BufferedSingerWriter
from taps_common.rest import direct_record_plan
from tap_unleash.tap import TapUnleash
from tests.helpers import CapturingWriter, without_clock_values


class SDKPathWriter(SingerWriter):
    """The SDK's writer, keeping messages: streams take the SDK's per-record path with it."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, t.Any]] = []

    def write_message(self, message: t.Any) -> None:  # noqa: ANN401
        self.messages.append(json.loads(self.format_message(message)))


@pytest.fixture(scope="module")
def server() -> t.Iterator[EmulatorServer]:
    with EmulatorServer(UnleashEmulator(seed=4, devices=2, sessions_per_device=3, frames_per_session=30)) as running:
        yield running


def sync(server: EmulatorServer, writer: t.Any, **config: t.Any) -> list[dict[str, t.Any]]:  # noqa: ANN401
    app = t.cast("UnleashEmulator", server.app)
    settings = {"api_url": f"{server.url}/v1", "access_token": "ul_pat_test-token", "end_date": app.anchor.isoformat()}
    TapUnleash(config={"start_date": "2000-01-01", **settings, **config}, message_writer=writer).sync_all()
    return writer.messages


def test_direct_records_equal_the_sdk_path_message_for_message(server: EmulatorServer) -> None:
    fast = sync(server, CapturingWriter())
    slow = sync(server, SDKPathWriter())
    assert len(fast) > 100
    assert without_clock_values(fast) == without_clock_values(slow)
    assert all("time_extracted" in m for m in fast if m["type"] == "RECORD")


def test_stream_maps_take_the_sdk_path(server: EmulatorServer) -> None:
    maps = {"stream_maps": {"devices": {"__alias__": "unleash_devices"}}}
    messages = sync(server, CapturingWriter(), **maps)
    streams = {m["stream"] for m in messages if m["type"] == "RECORD"}
    assert "unleash_devices" in streams
    assert "devices" not in streams


def test_state_is_written_only_after_the_records_before_it() -> None:
    writer = CapturingWriter()
    writer.write_record("s", {"id": 1}, None)
    assert writer.messages == []  # buffered
    from singer_sdk.singerlib.encoding.simple import StateMessage  # noqa: PLC0415

    writer.write_message(StateMessage(value={"bookmarks": {}}))
    assert [m["type"] for m in writer.messages] == ["RECORD", "STATE"]


def test_a_full_buffer_is_flushed_without_waiting_for_state() -> None:
    writer = CapturingWriter()
    record = {"text": "x" * 1000}
    for _ in range(FLUSH_BYTES // 1000 + 1):
        writer.write_record("s", record, 3)
    assert writer.messages
    assert writer.messages[0] == {**writer.messages[0], "type": "RECORD", "stream": "s", "version": 3}


def test_stdout_gets_bytes_after_anything_printed_before(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8")
    monkeypatch.setattr("sys.stdout", text)
    text.write("printed first\n")
    writer = BufferedSingerWriter()
    writer.write_record("s", {"id": 1}, None)
    writer.flush()
    lines = raw.getvalue().decode().splitlines()
    assert lines[0] == "printed first"
    assert json.loads(lines[1])["record"] == {"id": 1}


def test_plan_knows_top_level_booleans_and_refuses_nested_ones() -> None:
    flat = {"properties": {"on": {"type": ["boolean", "null"]}, "n": {"type": ["integer"]}}}
    plan = direct_record_plan(flat)
    assert plan is not None
    assert plan.boolean_properties == ("on",)
    nested = {"properties": {"o": {"type": "object", "properties": {"on": {"type": "boolean"}}}}}
    assert direct_record_plan(nested) is None


def test_the_record_counter_logs_like_the_sdks_looking_at_the_clock_once_a_thousand_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from singer_sdk import metrics  # noqa: PLC0415

    from taps_common.rest import RecordCounter  # noqa: PLC0415

    logged: list[tuple[str, int, str]] = []
    monkeypatch.setattr(metrics, "log", lambda logger, point: logged.append((point.metric, point.value, point.tags["stream"])))
    with RecordCounter(metrics.Metric.RECORD_COUNT, {"stream": "s"}, log_interval=0) as counter:
        for _ in range(RecordCounter.CLOCK_EVERY - 1):
            counter.increment()
        assert logged == []  # due (interval 0), but the clock was not looked at yet
        counter.increment()
        assert logged == [(metrics.Metric.RECORD_COUNT, RecordCounter.CLOCK_EVERY, "s")]
        for _ in range(5):
            counter.increment()
    assert logged[-1][1] == 5  # the rest is logged at the end, as the SDK's counter does


def test_streams_count_their_records_with_it(server: EmulatorServer) -> None:
    from taps_common.rest import RecordCounter  # noqa: PLC0415

    tap = TapUnleash(config={"api_url": f"{server.url}/v1", "access_token": "t", "start_date": "2000-01-01"})
    assert all(isinstance(stream.get_record_counter(), RecordCounter) for stream in tap.streams.values())


def test_time_extracted_is_read_again_after_a_millisecond_and_versions_keep_their_own_ends() -> None:
    import time  # noqa: PLC0415

    writer = CapturingWriter()
    writer.write_record("s", {"id": 1}, 7)
    writer.write_record("s", {"id": 2}, None)
    time.sleep(0.002)
    writer.write_record("s", {"id": 3}, 7)
    writer.flush()
    first, second, third = writer.messages
    assert (first["version"], "version" in second, third["version"]) == (7, False, 7)
    assert third["time_extracted"] > first["time_extracted"]
    assert [m["record"]["id"] for m in writer.messages] == [1, 2, 3]


def test_the_record_writer_writes_write_records_lines_and_reads_the_clock_every_few_records() -> None:
    import time  # noqa: PLC0415

    from taps_common.output import CLOCK_EVERY_RECORDS  # noqa: PLC0415

    by_method, by_function = CapturingWriter(), CapturingWriter()
    write = by_function.record_writer("s", 7)
    for number in range(3):
        by_method.write_record("s", {"id": number}, 7)
        write({"id": number})
    by_method.flush()
    by_function.flush()
    assert without_clock_values(by_function.messages) == without_clock_values(by_method.messages)
    first = by_function.messages[0]["time_extracted"]
    time.sleep(0.002)
    for number in range(CLOCK_EVERY_RECORDS):
        write({"id": number})
    by_function.flush()
    stamps = [m["time_extracted"] for m in by_function.messages]
    assert stamps[-1] > first  # read again within CLOCK_EVERY_RECORDS records
    assert stamps == sorted(stamps)

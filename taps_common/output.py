"""The fast output path: Singer messages written through a buffer, records serialised directly.

The SDK writes and flushes stdout once per message and builds every RECORD through
stream maps, type conformance and a message object. For a tap whose records are
already plain JSON values that is most of its time. Here:

- messages go to a buffer, flushed at every message that is not a RECORD (so a STATE
  always follows the records it covers, on the wire too), when the buffer is full,
  and at the end of the sync;
- a stream with no stream maps, no flattening and no deselected properties writes its
  RECORD lines directly (`write_record`), with the same fields the SDK would write.
"""

from __future__ import annotations

import sys
import time
import typing as t
from datetime import datetime, timezone

import orjson
from singer_sdk.io_base import SingerWriter
from singer_sdk.singerlib.encoding.simple import RecordMessage

if t.TYPE_CHECKING:
    from singer_sdk.singerlib import Message

#: Flush once this many bytes are waiting: big enough to batch, small enough to stream.
FLUSH_BYTES = 1 << 16
#: `record_writer` reads the clock for `time_extracted` once this many records (a few microseconds of
#: work), so a record's time is at most that many records old.
CLOCK_EVERY_RECORDS = 16


def _json_default(value: t.Any) -> t.Any:  # noqa: ANN401
    """What orjson cannot write natively (Decimal, sets): as the SDK's own encoder would."""
    if hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError


def encode_json(value: t.Any) -> bytes:  # noqa: ANN401
    """Compact JSON bytes."""
    return orjson.dumps(value, default=_json_default)


def _record_tail(moment: float, version: int | None) -> bytes:
    """The end of a RECORD line: the version, if any, and `time_extracted` in the SDK's form."""
    stamp = datetime.fromtimestamp(moment, tz=timezone.utc).isoformat(timespec="microseconds")
    tail = b',"time_extracted":"' + stamp.encode() + b'"}\n'
    if version is not None:
        tail = b',"version":' + str(version).encode() + tail
    return tail


class BufferedSingerWriter(SingerWriter):
    """Singer messages to stdout through a buffer; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._size = 0
        #: Subclasses' own per-stream line starts (the Airbyte writer's).
        self._heads: dict[str, bytes] = {}
        #: `write_record`'s line writer per stream and version.
        self._line_writers: dict[tuple[str, int | None], t.Callable[[dict[str, t.Any]], None]] = {}

    # --- writing ---------------------------------------------------------------------------

    def write_message(self, message: Message) -> None:  # noqa: D102
        self._append(encode_json(message.to_dict()) + b"\n")
        if not isinstance(message, RecordMessage):
            self.flush()

    def write_record(self, stream: str, record: dict[str, t.Any], version: int | None) -> None:
        """One RECORD line, written without building a message object, `time_extracted` read now."""
        write = self._line_writers.get((stream, version))
        if write is None:
            write = self._line_writers[stream, version] = self._line_writer(stream, version, clock_every=1)
        write(record)

    def record_writer(self, stream: str, version: int | None) -> t.Callable[[dict[str, t.Any]], None]:
        """`write_record` for one stream and version, as a function of the record alone.

        For the record loop: the per-stream lookups are done once, and the clock is read once
        every `CLOCK_EVERY_RECORDS` records. A subclass with its own `write_record` gets that one.
        """
        if type(self).write_record is not BufferedSingerWriter.write_record:
            return lambda record: self.write_record(stream, record, version)
        return self._line_writer(stream, version, CLOCK_EVERY_RECORDS)

    def _line_writer(self, stream: str, version: int | None, clock_every: int) -> t.Callable[[dict[str, t.Any]], None]:
        """Writes RECORD lines of one stream and version, reading the clock every `clock_every` records.

        Per record, only the record itself is serialised: the start of the line is made once, its
        end (version and `time_extracted`) again when the clock has moved a millisecond.
        """
        head = b'{"type":"RECORD","stream":' + encode_json(stream) + b',"record":'
        chunks, clock, dumps, default, flush_at = self._chunks, time.time, orjson.dumps, _json_default, FLUSH_BYTES
        line_parts = [head, b"", b""]
        clock_read_at, ends_size, until_clock = 0.0, 0, 0

        def write(record: dict[str, t.Any]) -> None:
            nonlocal clock_read_at, ends_size, until_clock
            until_clock -= 1
            if until_clock < 0:
                until_clock = clock_every - 1
                moment = clock()
                if moment - clock_read_at >= 0.001:  # noqa: PLR2004  (a new time_extracted a millisecond)
                    clock_read_at = moment
                    line_parts[2] = _record_tail(moment, version)
                    ends_size = len(head) + len(line_parts[2])
            # The line's three parts go to the buffer as they are: `flush` joins them (one copy, not two).
            line_parts[1] = body = dumps(record, default=default)
            chunks.extend(line_parts)
            self._size += len(body) + ends_size
            if self._size >= flush_at:
                self.flush()

        return write

    def flush(self) -> None:
        """Write out everything waiting."""
        if self._chunks:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._size = 0
            self.emit(data)

    def emit(self, data: bytes) -> None:
        """Deliver bytes: to stdout here; tests capture them instead."""
        out = sys.stdout
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            out.flush()  # anything printed through the text layer goes first
            buffer.write(data)
            buffer.flush()
        else:
            out.write(data.decode())
            out.flush()

    def _append(self, line: bytes) -> None:
        self._chunks.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush()

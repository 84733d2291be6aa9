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


class BufferedSingerWriter(SingerWriter):
    """Singer messages to stdout through a buffer; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._size = 0
        self._heads: dict[str, bytes] = {}
        #: The end of a RECORD line (version and time extracted) per version, as of `_extracted_at`.
        self._tails: dict[int | None, bytes] = {}
        self._extracted_at = 0.0

    # --- writing ---------------------------------------------------------------------------

    def write_message(self, message: Message) -> None:  # noqa: D102
        self._append(encode_json(message.to_dict()) + b"\n")
        if not isinstance(message, RecordMessage):
            self.flush()

    def write_record(self, stream: str, record: dict[str, t.Any], version: int | None) -> None:
        """One RECORD line, written without building a message object.

        Per record, only the record itself is serialised: the start of the line is kept per
        stream, its end per version. `time_extracted` is read from the clock at most once a
        millisecond (it is per record, and a millisecond holds many).
        """
        head = self._heads.get(stream)
        if head is None:
            head = self._heads[stream] = b'{"type":"RECORD","stream":' + encode_json(stream) + b',"record":'
        moment = time.time()
        if moment - self._extracted_at >= 0.001:  # noqa: PLR2004
            self._extracted_at = moment
            self._tails.clear()
        tail = self._tails.get(version)
        if tail is None:
            tail = self._tails[version] = self._record_tail(version)
        line = head + orjson.dumps(record, default=_json_default) + tail
        self._chunks.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush()

    def record_writer(self, stream: str, version: int | None) -> t.Callable[[dict[str, t.Any]], None]:
        """`write_record` for one stream and version, as a function of the record alone.

        The same lines as `write_record`, with the per-stream lookups done once: for the
        record loop, where they are a fair part of a record's cost. A subclass with its own
        `write_record` gets that one.
        """
        if type(self).write_record is not BufferedSingerWriter.write_record:
            return lambda record: self.write_record(stream, record, version)
        head = b'{"type":"RECORD","stream":' + encode_json(stream) + b',"record":'
        chunks, clock, dumps, default, flush_at = self._chunks, time.time, orjson.dumps, _json_default, FLUSH_BYTES
        line_parts = [head, b"", b""]
        clock_read_at, ends_size, until_clock = 0.0, 0, 0  # the clock is read every CLOCK_EVERY_RECORDS records

        def write(record: dict[str, t.Any]) -> None:
            nonlocal clock_read_at, ends_size, until_clock
            until_clock -= 1
            if until_clock < 0:
                until_clock = CLOCK_EVERY_RECORDS - 1
                moment = clock()
                if moment - clock_read_at >= 0.001:  # noqa: PLR2004  (a new time_extracted a millisecond)
                    clock_read_at = self._extracted_at = moment
                    self._tails.clear()
                    line_parts[2] = self._tails[version] = self._record_tail(version)
                    ends_size = len(head) + len(line_parts[2])
            # The line's three parts go to the buffer as they are: `flush` joins them (one copy, not two).
            line_parts[1] = body = dumps(record, default=default)
            chunks.extend(line_parts)
            self._size += len(body) + ends_size
            if self._size >= flush_at:
                self.flush()

        return write

    def _record_tail(self, version: int | None) -> bytes:
        """The end of a RECORD line: the version, if any, and `time_extracted` in the SDK's form."""
        stamp = datetime.fromtimestamp(self._extracted_at, tz=timezone.utc).isoformat(timespec="microseconds")
        tail = b',"time_extracted":"' + stamp.encode() + b'"}\n'
        if version is not None:
            tail = b',"version":' + str(version).encode() + tail
        return tail

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

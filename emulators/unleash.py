"""Emulator of the Unleash live Analytics API (https://api.unleashlive.com/v1), after its docs.

It keeps the docs' awkward parts on purpose: the version route answers `{"1.0.1"}` (not valid JSON),
the page size is the server's secret, and errors are AWS API Gateway's `{"message": ...}` bodies.
Where the docs are silent (which ends of the from/to range are inclusive, row order, expired tokens,
unknown devices) the behaviour is an option or a documented pick; the tap must not depend on it.

Data is synthetic and deterministic for a seed. Each device's records are kept column by column in
time order (about 34 bytes a record), so a million records fit in little memory and a time range is
two binary searches.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import re
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from emulators.clock import anchor_instant, as_utc, to_epoch_ms
from emulators.framework import EmulatorApp, Request, Response

KEYS = (
    "class_name",
    "count",
    "device_id",
    "frame_number",
    "model_id",
    "session_id",
    "source_file_name",
    "timestamp",
)
"""Field order of the size-optimized route's `keys`, as the docs list it."""

TABLEAU_KEYS = (
    "timestamp",
    "class_name",
    "count",
    "device_id",
    "source_file_name",
    "frame_number",
    "model_id",
    "session_id",
)
"""Field order of the tableau route's objects, as the docs' example shows it."""

MODEL_CLASSES: dict[str, tuple[str, ...]] = {
    "sparse-crowd-density-alphapose": (
        "this_frame_persons_count",
        "total_count",
        "number_of_persons_in_group",
        "number_of_groups",
        "num_individuals",
        "group_pixel_size",
    ),
    "starter-ai": ("person", "truck", "car"),
    "vehicle-counter": ("car", "truck", "bus", "motorcycle", "bicycle"),
}
MODEL_IDS = tuple(MODEL_CLASSES)

# Class names are stored as indexes into this sorted tuple, so index order is name order.
CLASS_NAMES = tuple(sorted({name for names in MODEL_CLASSES.values() for name in names}))
_CLASS_INDEX = {name: index for index, name in enumerate(CLASS_NAMES)}
_MODEL_CLASS_INDEXES = {
    model: tuple(sorted(_CLASS_INDEX[name] for name in names))
    for model, names in MODEL_CLASSES.items()
}
_MAX_COUNT = tuple(4000 if name == "group_pixel_size" else 12 for name in CLASS_NAMES)

RANGE_MODES = ("both", "start", "end", "neither")
ORDERS = ("time", "shuffled")

VERSION_BODY = b'{"1.0.1"}'
"""Byte for byte what the docs show: a JSON-looking body that no JSON parser accepts."""

FORBIDDEN_MESSAGE = "Forbidden"
EXPIRED_MESSAGE = "The incoming token has expired"
BAD_REQUEST = ("Bad Request - Wrong or missing parameters", "BadRequestError")
VALIDATION_FAILED = ("Validation failed - Params content failed validation", "ValidationError")
MAINTENANCE = (
    "Service Unavailable - We're temporarily offline for maintenance. Please try again later.",
    "ServiceUnavailableError",
)

_VIDEO_FPS = 25  # frame_number / fps = seconds into the session's video
_MAX_FRAME_STEP = 30  # frames without detections between two reported frames
_CLASS_PRESENCE = 0.6  # chance that a model's class is reported in a frame
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_INTEGER = re.compile(r"-?[0-9]+")
_CHUNK = 65536  # records moved from the merge into the columns per step

# A record while tables are built: its sort key (timestamp, session, frame, class) comes first, so
# plain tuple order is the served "time" order. session_id strings are 13 digits, so numeric order
# of the session start equals the string order the docs' ids have.
# Fields: timestamp_ms, session_start_ms, frame_number, class_index, count, session_index.
_RecordKey = tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class _Session:
    session_id: str
    start_ms: int
    device_id: str
    model_id: str
    source_file_name: str


class _DeviceTable:
    """One device's records in "time" order, one compact array per field.

    Immutable once built: adding a session builds a new table, so concurrent requests never see a
    half-written one and need no lock.
    """

    def __init__(self) -> None:
        self.timestamps_ms = array("q")
        self.session_indexes = array("q")
        self.frame_numbers = array("q")
        self.class_indexes = array("H")
        self.counts = array("q")
        self._shuffles: dict[tuple[int, int], list[int]] = {}

    @classmethod
    def merged(cls, runs: Iterable[Iterable[_RecordKey]]) -> _DeviceTable:
        """Build a table from runs that are each already sorted, in one streaming merge."""
        table = cls()
        merged = heapq.merge(*runs)
        while chunk := list(itertools.islice(merged, _CHUNK)):
            timestamps, _, frames, classes, counts, sessions = zip(*chunk, strict=True)
            table.timestamps_ms.extend(timestamps)
            table.frame_numbers.extend(frames)
            table.class_indexes.extend(classes)
            table.counts.extend(counts)
            table.session_indexes.extend(sessions)
        return table

    def records(self, sessions: Sequence[_Session]) -> Iterator[_RecordKey]:
        """The table's records as a sorted run, to merge with new ones."""
        starts = (sessions[index].start_ms for index in self.session_indexes)
        return zip(
            self.timestamps_ms,
            starts,
            self.frame_numbers,
            self.class_indexes,
            self.counts,
            self.session_indexes,
            strict=True,
        )

    def __len__(self) -> int:
        return len(self.timestamps_ms)

    def index_range(self, from_ms: int, to_ms: int, include_from: bool, include_to: bool) -> range:
        """Positions of the records whose timestamp lies between `from_ms` and `to_ms`."""
        low = (bisect_left if include_from else bisect_right)(self.timestamps_ms, from_ms)
        high = (bisect_right if include_to else bisect_left)(self.timestamps_ms, to_ms)
        return range(low, max(low, high))

    def shuffled(self, positions: range, seed: int) -> list[int]:
        """`positions` in a seeded random order, the same for every page of one query.

        A fixed order is what makes the pages of a shuffled result still partition it. The last
        few orders are kept because a sync asks for every page of the same range in turn.
        """
        key = (positions.start, positions.stop)
        order = self._shuffles.get(key)
        if order is None:
            order = list(positions)
            random.Random(f"{seed}:{key}").shuffle(order)
            if len(self._shuffles) >= 4:
                self._shuffles.clear()
            self._shuffles[key] = order
        return order


class UnleashEmulator(EmulatorApp):
    """The Unleash live Analytics API over synthetic, seeded analytics records.

    Options (all keyword, all with defaults):
      api_keys, access_tokens, expired_tokens: accepted `x-api-key` values, accepted
        `Authorization: Bearer` tokens, and bearer tokens that answer 401 "expired".
      devices, sessions_per_device, frames_per_session: size of the synthetic data.
      page_size: records per page, fixed by the server as in the real API.
      anchor, span_days: data lies in [anchor - span_days, anchor]; anchor defaults to now (UTC,
        whole seconds) and may be a datetime or an ISO 8601 string.
      range_inclusive: "both", "start", "end" or "neither": which ends of the from/to range
        include a record stamped exactly on them (undocumented, so tests try every mode).
      order: "time" sorts rows by (timestamp, session_id, frame_number, class_name); "shuffled"
        serves them in a seeded random order, to prove the tap does not rely on order.
      maintenance: answer every request 503, as the API does while offline.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        latency: float = 0.0,
        api_keys: Iterable[str] | str = ("test-api-key",),
        access_tokens: Iterable[str] | str = ("ul_pat_test-token",),
        expired_tokens: Iterable[str] | str = ("ul_pat_expired-token",),
        devices: int = 3,
        sessions_per_device: int = 4,
        frames_per_session: int = 60,
        page_size: int = 500,
        anchor: str | datetime | None = None,
        span_days: float = 10,
        range_inclusive: str = "both",
        order: str = "time",
        maintenance: bool = False,
    ) -> None:
        super().__init__(seed=seed, latency=latency)
        if range_inclusive not in RANGE_MODES:
            raise ValueError(f"range_inclusive must be one of {RANGE_MODES}: {range_inclusive!r}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if min(devices, sessions_per_device, frames_per_session) < 0:
            raise ValueError("devices, sessions_per_device, frames_per_session must be >= 0")
        self.api_keys = _string_set(api_keys)
        self.access_tokens = _string_set(access_tokens)
        self.expired_tokens = _string_set(expired_tokens)
        self.page_size = page_size
        self.include_from = range_inclusive in ("both", "start")
        self.include_to = range_inclusive in ("both", "end")
        self.order = order
        self.maintenance = maintenance
        self.anchor = anchor_instant(anchor)
        self.span_start = self.anchor - timedelta(days=span_days)
        self._sessions: list[_Session] = []
        self._session_ids: set[str] = set()
        self._tables: dict[str, _DeviceTable] = {}
        self._data_lock = threading.Lock()  # serialises writers; readers use immutable tables
        self._generate(random.Random(seed), devices, sessions_per_device, frames_per_session)

    # Synthetic data ----------------------------------------------------------------------------

    def _generate(self, rng: random.Random, devices: int, sessions: int, frames: int) -> None:
        """Give each device `sessions` sessions, one per equal slot of the span.

        A session starts in the first half of its slot and its frames fit in the second, so every
        timestamp lies in the span and session starts lie strictly inside it.
        """
        span_start_ms = to_epoch_ms(self.span_start)
        slot_ms = (to_epoch_ms(self.anchor) - span_start_ms) // max(sessions, 1)
        if sessions and slot_ms < 10_000:
            raise ValueError("span_days is too short for that many sessions per device")
        # Compress the video clock if needed so the longest possible session fits in half a slot.
        longest_frame = frames * _MAX_FRAME_STEP
        fps = max(_VIDEO_FPS, math.ceil(longest_frame / max((slot_ms // 2 - 2000) // 1000, 1)))
        for _ in range(devices):
            device_id = _new_device_id(rng, self._tables)
            runs = []
            for slot in range(sessions):
                start_ms = span_start_ms + slot * slot_ms + rng.randint(1000, slot_ms // 2)
                session_index = self._new_session(rng, device_id, start_ms)
                runs.append(self._session_records(session_index, frames, fps, rng.getrandbits(64)))
            self._tables[device_id] = _DeviceTable.merged(runs)

    def _new_session(self, rng: random.Random, device_id: str, start_ms: int) -> int:
        """Register a session starting at `start_ms` (moved on by 1 ms while its id is taken)."""
        while str(start_ms) in self._session_ids:
            start_ms += 1
        # Like the docs' example, the video file starts a little before the session and is named
        # "<device>-<epoch seconds>-17-Aug-20-06-00-23.mp4", in English whatever the locale.
        file_seconds = start_ms // 1000 - rng.randint(0, 900)
        file_start = time.gmtime(file_seconds)
        month = _MONTHS[file_start.tm_mon - 1]
        started = time.strftime(f"%d-{month}-%y-%H-%M-%S", file_start)
        file_name = f"{device_id}-{file_seconds}-{started}.mp4"
        session = _Session(str(start_ms), start_ms, device_id, rng.choice(MODEL_IDS), file_name)
        self._sessions.append(session)
        self._session_ids.add(session.session_id)
        return len(self._sessions) - 1

    def _session_records(
        self, session_index: int, frames: int, fps: int, seed: int
    ) -> Iterator[_RecordKey]:
        """A session's records in time order, drawn lazily from the session's own generator.

        Its own generator keeps the data independent of the order in which the merge reads
        sessions. Frames come at whole seconds after the session start; several share a second.
        """
        rng = random.Random(seed)
        session = self._sessions[session_index]
        classes = _MODEL_CLASS_INDEXES[session.model_id]
        start_ms = session.start_ms
        first_second = -(-start_ms // 1000)  # ceiling: no frame before its session
        frame_number = rng.randint(1, _MAX_FRAME_STEP)
        for _ in range(frames):
            timestamp_ms = (first_second + frame_number // fps) * 1000
            reported = [c for c in classes if rng.random() < _CLASS_PRESENCE]
            if not reported:  # a reported frame has at least one detection
                reported = [rng.choice(classes)]
            for class_index in reported:
                count = rng.randint(0, _MAX_COUNT[class_index])
                yield timestamp_ms, start_ms, frame_number, class_index, count, session_index
            frame_number += rng.randint(1, _MAX_FRAME_STEP)

    def add_session(self, device_id: str, start: datetime, frames: int) -> list[dict[str, Any]]:
        """Add a session of `frames` frames starting at `start`; return its records.

        This is new data arriving between two syncs. A naive `start` is taken as UTC, and an
        unknown `device_id` becomes a new device.
        """
        start_ms = to_epoch_ms(as_utc(start))
        with self._data_lock:
            rng = random.Random(f"{self.seed}:{device_id}:{start_ms}")
            session_index = self._new_session(rng, device_id, start_ms)
            records = self._session_records(session_index, frames, _VIDEO_FPS, rng.getrandbits(64))
            new_records = list(records)
            table = self._tables.get(device_id)
            runs = [new_records] if table is None else [table.records(self._sessions), new_records]
            self._tables[device_id] = _DeviceTable.merged(runs)
        return [
            self._record_dict(self._values(timestamp_ms, *rest))
            for timestamp_ms, _, *rest in new_records
        ]

    # Ground truth for tests --------------------------------------------------------------------

    def device_ids(self) -> list[str]:
        """Device ids, as the devices route lists them."""
        return list(self._tables)

    def session_ids(self) -> list[str]:
        """Session ids of all devices, oldest first, as the sessions route lists them."""
        return sorted(session.session_id for session in list(self._sessions))

    def record_count(self, device_id: str | None = None) -> int:
        """Number of records of one device, or of all devices; cheap even for millions."""
        tables = self._tables.values() if device_id is None else [self._tables.get(device_id)]
        return sum(len(table) for table in tables if table is not None)

    def truth_records(self, device_id: str | None = None) -> list[dict[str, Any]]:
        """Every record (of one device, or all), keyed like the tableau route, values as served.

        Records come in "time" order per device, devices in `device_ids()` order.
        """
        device_ids = self.device_ids() if device_id is None else [device_id]
        return [
            self._record_dict(self._row(table, position))
            for table in (self._tables.get(device) for device in device_ids)
            if table is not None
            for position in range(len(table))
        ]

    # Serving -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Route like the real API: maintenance first, then authentication, then the path."""
        if self.maintenance:
            return _error(503, *MAINTENANCE)
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if request.method not in ("GET", "HEAD"):
            return _error(404, "Not Found")
        match request.path.split("/"):
            case ["", "v1", "analytics", "version"]:
                return Response.raw(VERSION_BODY)
            case ["", "v1", "analytics", "devices"]:
                return Response.json(self.device_ids())
            case ["", "v1", "analytics", "sessions"]:
                return Response.json(self.session_ids())
            case ["", "v1", "analytics", "tableau", device_id, from_ms, to_ms, page]:
                return self._data_response(device_id, from_ms, to_ms, page, tableau=True)
            case ["", "v1", "analytics", device_id, from_ms, to_ms, page]:
                return self._data_response(device_id, from_ms, to_ms, page, tableau=False)
        return _error(404, "Not Found")

    def _refusal(self, request: Request) -> Response | None:
        """None when a valid API key or access token is present, else the gateway's refusal."""
        if request.header("x-api-key") in self.api_keys:
            return None
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        if bearer in self.access_tokens:
            return None
        if bearer in self.expired_tokens:
            return _error(401, EXPIRED_MESSAGE)
        return _error(403, FORBIDDEN_MESSAGE)

    def _data_response(
        self, device_id: str, from_text: str, to_text: str, page_text: str, *, tableau: bool
    ) -> Response:
        """One page of a device's records between two epoch-millisecond timestamps."""
        if not all(_INTEGER.fullmatch(text) for text in (from_text, to_text, page_text)):
            return _error(400, *BAD_REQUEST)
        from_ms, to_ms, page = int(from_text), int(to_text), int(page_text)
        if page < 1 or from_ms > to_ms:
            return _error(422, *VALIDATION_FAILED)
        total_pages, rows = self._page(device_id, from_ms, to_ms, page)
        if tableau:
            objects = [self._record_dict(row) for row in rows]
            response = Response.json({"total_num_pages": total_pages, "data": objects})
        else:
            response = Response.json({"keys": KEYS, "total_num_pages": total_pages, "data": rows})
        response.past_last_page = page > max(total_pages, 1)  # an empty range still needs page 1
        return response

    def _page(
        self, device_id: str, from_ms: int, to_ms: int, page: int
    ) -> tuple[int, list[tuple[Any, ...]]]:
        """Total pages for the range and the rows of 1-based `page` (none past the last page).

        An unknown device has no records rather than being an error: the docs do not say.
        """
        table = self._tables.get(device_id)
        if table is None:
            return 0, []
        positions = table.index_range(from_ms, to_ms, self.include_from, self.include_to)
        total_pages = math.ceil(len(positions) / self.page_size)
        ordered: Sequence[int] = positions
        if self.order == "shuffled":
            ordered = table.shuffled(positions, self.seed)
        first = (page - 1) * self.page_size
        page_positions = ordered[first : first + self.page_size]
        return total_pages, [self._row(table, position) for position in page_positions]

    def _row(self, table: _DeviceTable, position: int) -> tuple[Any, ...]:
        """The record at `position` of `table` as served."""
        return self._values(
            table.timestamps_ms[position],
            table.frame_numbers[position],
            table.class_indexes[position],
            table.counts[position],
            table.session_indexes[position],
        )

    def _values(
        self, timestamp_ms: int, frame_number: int, class_index: int, count: int, session_index: int
    ) -> tuple[Any, ...]:
        """A stored record's served values, in `KEYS` order."""
        session = self._sessions[session_index]
        return (
            CLASS_NAMES[class_index],
            count,
            session.device_id,
            frame_number,
            session.model_id,
            session.session_id,
            session.source_file_name,
            _iso_timestamp(timestamp_ms),
        )

    @staticmethod
    def _record_dict(values: Sequence[Any]) -> dict[str, Any]:
        """Served values as an object with the tableau route's key order."""
        by_key = dict(zip(KEYS, values, strict=True))
        return {key: by_key[key] for key in TABLEAU_KEYS}


def _error(status: int, message: str, name: str | None = None) -> Response:
    """An error body as the API sends it: `message`, plus `name` for the API's own errors."""
    body = {"message": message} if name is None else {"message": message, "name": name}
    return Response.json(body, status)


def _string_set(values: Iterable[str] | str) -> frozenset[str]:
    """Accept one string or several, so `--option api_keys=abc` means one key, not three letters."""
    return frozenset([values] if isinstance(values, str) else values)


def _new_device_id(rng: random.Random, taken: Iterable[str]) -> str:
    """A device id like the docs' "W9d3f1bcad8e8abd": "W" and 15 hex digits."""
    while (device_id := f"W{rng.getrandbits(60):015x}") in taken:
        pass
    return device_id








def _iso_timestamp(epoch_ms: int) -> str:
    """The docs' timestamp format: "2020-08-17T06:16:45.000Z"."""
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"

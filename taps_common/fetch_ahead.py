"""Fetching ahead: a bounded number of requests in flight while records are processed.

The SDK makes one request at a time (sdk issue 2121). A sync spends most of its
wall time waiting for answers when the API is far away, so the next pages of a
stream whose page count is known, and the first requests of the next partitions,
are sent early by a few worker threads. Their answers are handed to the sync in
the order it asks for them, so records, their order and the state are exactly
those of a sequential sync: only the waiting overlaps.

Only while the API is far: when the sync's own answers come within a few
milliseconds (an API on the same machine or network), there is too little
waiting to overlap, and the threads' hand-offs would cost more than they save
(`WORTH_FETCHING_AHEAD_SECONDS`).

Workers send each request once; a failed one is retried by the sync itself with
the usual backoff, when it comes to it. A 429 or 503 holds the shared gate, so
every worker waits, not only the one that was told to.

An answer waits for its turn as the bytes it came in: it is decoded (and its body
checked) only when the sync takes it, in the sync's own thread, one at a time as
in a sequential sync. The budget counts each answer at what it will cost decoded
(`DECODED_FACTOR`), so an answer too big to be decoded beside others (a month of
usage events) is not fetched ahead at all: the peak memory of a sync stays that
of a sequential sync, plus a bounded amount.
"""

from __future__ import annotations

import threading
import time
import typing as t
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

if t.TYPE_CHECKING:
    from collections.abc import Callable

    import requests


_worker = threading.local()


def sending_ahead() -> bool:
    """Whether this thread is a worker sending a request ahead (its answer then waits, undecoded)."""
    return getattr(_worker, "active", False)


def _mark_worker() -> None:
    _worker.active = True


def request_key(request: requests.PreparedRequest) -> tuple[str, str, bytes]:
    """What makes two requests the same request: method, URL and body."""
    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
    return (request.method or "GET", request.url or "", body)


#: The memory answers fetched ahead may take, each counted at what it will cost once decoded, and
#: each request still out as big as the last answer of its kind (see `FetchAhead.has_room`). Eight
#: pages of 256 KiB fit, as many as fetching ahead sends by default; an answer that grows with the
#: range it covers (a WMSPanel slice's whole range) goes ahead one at a time at most once it passes
#: 1 MiB, so that the answers waiting add little to a sync's peak memory, however long the range.
HELD_BYTES = 8 << 20
#: What an answer costs once decoded, in multiples of its bytes: its objects take about three times
#: its bytes (26 MiB for the 8.4 MiB of a month of usage events), and the bytes are alive as well
#: while it is decoded.
DECODED_FACTOR = 4
#: Nothing is fetched ahead while the sync's own answers come quicker than this (the median of its
#: last `RECENT_ANSWERS`, from sending to the answer's headers). Fetching ahead overlaps waiting:
#: with little to wait for, handing requests to threads costs more CPU than it saves. Against the
#: emulators on loopback, answers come in under a millisecond and a sync fetching ahead spent 10
#: to 30 % more time than one asking one request at a time; a remote API takes tens of milliseconds.
WORTH_FETCHING_AHEAD_SECONDS = 0.005
RECENT_ANSWERS = 5


class RequestGate:
    """Holds every worker back until a time the API asked for (Retry-After) has passed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0

    def hold(self, seconds: float) -> None:
        """No request before `seconds` from now (the longest hold wins)."""
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def wait(self) -> None:
        """Sleep until the gate opens."""
        while (delay := self._not_before - time.monotonic()) > 0:
            time.sleep(delay)


class FetchAhead:
    """The workers, the answers waiting to be taken, and the bound on requests in flight.

    `max_in_flight` counts the sync's own request too, so `max_in_flight - 1`
    requests are sent ahead at most; 1 turns fetching ahead off.
    """

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.gate = RequestGate()
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, str, bytes], Future[requests.Response]] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, max_in_flight - 1), thread_name_prefix="fetch-ahead", initializer=_mark_worker
        )
        #: Nothing is sent ahead until a request has succeeded: with refused credentials
        #: a sync must stop after its one request, not after a burst of them.
        self.proven = False
        self._held: dict[tuple[str, str, bytes], int] = {}  # sizes of answers not yet taken
        #: The size of the last answer of each kind (a stream's name): a listing says nothing of
        #: the size of what it lists, so each kind is sized by its own answers.
        self._last_sizes: dict[str, int] = {}
        #: How long the sync's own last answers took to come (see `WORTH_FETCHING_AHEAD_SECONDS`).
        self._recent_waits: deque[float] = deque(maxlen=RECENT_ANSWERS)

    @property
    def enabled(self) -> bool:
        """Whether anything is fetched ahead at all."""
        return self.max_in_flight > 1

    def has_room(self, kind: str = "") -> bool:
        """Whether another request of `kind` (a stream's name) may be sent ahead now.

        Only once a request of the sync's own has succeeded, and while its answers are slow
        enough for fetching ahead to pay (`answers_are_slow`). Answers wait in memory until
        their turn, so besides the count, the answers held
        (plus, for each request still out, one the size of the last answer of `kind`),
        counted at `DECODED_FACTOR` times their bytes, stay within `HELD_BYTES`: big answers
        are fetched ahead fewer at a time, and answers of more than a quarter of it (a month
        of usage events, say) not at all.
        """
        with self._lock:
            return self._has_room(kind)

    def answers_are_slow(self) -> bool:
        """Whether the sync's recent answers took long enough to come for fetching ahead to pay."""
        with self._lock:
            return self._answers_are_slow()

    def _answers_are_slow(self) -> bool:
        waits = sorted(self._recent_waits)
        return bool(waits) and waits[len(waits) // 2] >= WORTH_FETCHING_AHEAD_SECONDS

    def _has_room(self, kind: str) -> bool:
        if not self.proven or len(self._waiting) >= self.max_in_flight - 1 or not self._answers_are_slow():
            return False
        pending = sum(1 for future in self._waiting.values() if not future.done())
        held = sum(self._held.values())
        last_size = self._last_sizes.get(kind, 0)
        # Before an answer of this kind is known, the next one may be of any size: one at a time.
        if last_size == 0 and self._waiting:
            return False
        return (held + (pending + 1) * last_size) * DECODED_FACTOR <= HELD_BYTES

    def submit(
        self,
        request: requests.PreparedRequest,
        send: Callable[[requests.PreparedRequest], requests.Response],
        kind: str = "",
    ) -> bool:
        """Send `request` (of `kind`) ahead unless it is already on its way or there is no room."""
        key = request_key(request)
        with self._lock:
            if key in self._waiting or not self._has_room(kind):
                return False
            self._waiting[key] = self._pool.submit(self._send_after_gate, send, request, kind)
        return True

    def saw_answer(self, response: requests.Response, kind: str = "") -> None:
        """A request of the sync's own succeeded: fetching ahead may start, sized by this answer.

        How long it took to come counts towards whether fetching ahead pays (`answers_are_slow`).
        """
        with self._lock:
            self.proven = True
            self._last_sizes[kind] = len(response.content)
            self._recent_waits.append(response.elapsed.total_seconds())

    def take(self, request: requests.PreparedRequest) -> Future[requests.Response] | None:
        """The answer to `request` if it was sent ahead (it then leaves the waiting set)."""
        with self._lock:
            key = request_key(request)
            self._held.pop(key, None)
            return self._waiting.pop(key, None)

    def close(self) -> None:
        """Stop the workers; answers nobody asked for are dropped."""
        with self._lock:
            self._waiting.clear()
            self._held.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _send_after_gate(
        self,
        send: Callable[[requests.PreparedRequest], requests.Response],
        request: requests.PreparedRequest,
        kind: str,
    ) -> requests.Response:
        self.gate.wait()
        response = send(request)
        size = len(response.content)
        key = request_key(request)
        with self._lock:
            if key in self._waiting:  # not yet taken: it waits in memory
                self._held[key] = size
            self._last_sizes[kind] = size
        return response

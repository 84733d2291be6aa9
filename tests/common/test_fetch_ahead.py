"""Fetching ahead: same records, order, state and request count; a 429 holds every worker."""

from __future__ import annotations

import threading
import time
import typing as t

import pytest
import requests

from emulators.framework import EmulatorServer, Fault
from emulators.unleash import UnleashEmulator
from taps_common.fetch_ahead import FetchAhead, RequestGate
from tap_unleash.tap import TapUnleash
from tests.helpers import run_sync, without_clock_values


@pytest.fixture
def server() -> t.Iterator[EmulatorServer]:
    app = UnleashEmulator(seed=8, devices=4, sessions_per_device=4, frames_per_session=40, page_size=40)
    with EmulatorServer(app) as running:
        yield running


def config(server: EmulatorServer, requests_in_flight: int) -> dict[str, t.Any]:
    app = t.cast("UnleashEmulator", server.app)
    return {
        "api_url": f"{server.url}/v1",
        "access_token": "ul_pat_test-token",
        "start_date": app.span_start.isoformat(),
        "end_date": app.anchor.isoformat(),
        "window_days": 4,
        "concurrent_requests": requests_in_flight,
        "max_tries": 3,
        "backoff_base_seconds": 0.01,
    }


def test_records_order_state_and_request_count_are_those_of_a_sequential_sync(server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    sequential = run_sync(TapUnleash, config(server, 1))
    sequential_requests = sorted(r.path for r in app.requests)
    app.reset_requests()
    ahead = run_sync(TapUnleash, config(server, 4))
    assert sorted(r.path for r in app.requests) == sequential_requests  # the same requests, none extra
    assert len(sequential_requests) > 20  # several pages and windows per device
    # Every message, STATE included, in the same order.
    assert without_clock_values(ahead.messages) == without_clock_values(sequential.messages)


def test_a_failed_request_sent_ahead_is_retried_when_its_turn_comes(server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    expected = run_sync(TapUnleash, config(server, 1)).records
    app.inject_many([Fault(kind="status", status=503, path_regex=r"/2$"), Fault(kind="drop", path_regex=r"/3$")])
    assert run_sync(TapUnleash, config(server, 4)).records == expected
    assert app.pending_faults == 0


def test_the_gate_holds_every_worker_until_the_time_asked() -> None:
    gate = RequestGate()
    gate.hold(0.2)
    started = time.monotonic()
    waited: list[float] = []

    def worker() -> None:
        gate.wait()
        waited.append(time.monotonic() - started)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(waited) == 3
    assert min(waited) >= 0.19


def test_a_429_met_by_a_worker_holds_the_gate_for_its_retry_after(server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    app.inject(Fault(kind="status", status=429, retry_after="0.3", path_regex=r"/2$"))
    tap = TapUnleash(config=config(server, 4))
    holds: list[float] = []
    original = RequestGate.hold
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RequestGate, "hold", lambda self, seconds: (holds.append(seconds), original(self, seconds)))
        tap.sync_all()
    assert any(0.3 <= seconds <= 0.34 for seconds in holds), holds


def test_no_more_requests_in_flight_than_allowed() -> None:
    ahead = FetchAhead(3)
    release = threading.Event()

    def send(request: requests.PreparedRequest) -> requests.Response:
        release.wait(5)
        return requests.Response()

    made = [requests.Request("GET", f"http://x.test/{n}").prepare() for n in range(5)]
    assert not ahead.submit(made[0], send)  # nothing goes ahead before a request has succeeded
    small = requests.Response()
    small._content = b"{}"  # noqa: SLF001
    ahead.saw_answer(small)
    accepted = [ahead.submit(request, send) for request in made]
    assert accepted == [True, True, False, False, False]  # the sync's own request is the third
    assert not ahead.submit(made[0], send)  # already on its way
    release.set()
    assert ahead.take(made[0]) is not None
    assert ahead.take(made[0]) is None
    ahead.close()


def test_big_answers_are_fetched_ahead_fewer_at_a_time() -> None:
    from taps_common.fetch_ahead import HELD_BYTES  # noqa: PLC0415

    ahead = FetchAhead(8)
    big = requests.Response()
    big._content = b"x" * (HELD_BYTES // 3 + 1)  # noqa: SLF001

    made = [requests.Request("GET", f"http://x.test/{n}").prepare() for n in range(4)]
    ahead.saw_answer(big)  # the sync's own answer was this big
    assert ahead.submit(made[0], lambda request: big)
    ahead._waiting[  # noqa: SLF001
        next(iter(ahead._waiting))  # noqa: SLF001
    ].result()  # the answer is in memory, waiting for its turn
    time.sleep(0.05)  # let the worker record its size
    assert ahead.submit(made[1], lambda request: big)  # one more fits beside it
    ahead._waiting[list(ahead._waiting)[1]].result()  # noqa: SLF001
    time.sleep(0.05)
    assert not ahead.has_room()  # a third would pass the budget
    assert ahead.take(made[0]) is not None
    assert ahead.has_room()  # taking one frees its bytes
    ahead.close()

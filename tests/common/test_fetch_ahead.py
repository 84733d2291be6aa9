"""Fetching ahead: same records, order, state and request count; a 429 holds every worker."""

from __future__ import annotations

import datetime as dt
import threading
import time
import typing as t

import pytest
import requests

from emulators.framework import EmulatorServer, Fault
from emulators.unleash import UnleashEmulator
from taps_common.fetch_ahead import (
    DECODED_FACTOR,
    HELD_BYTES,
    WORTH_FETCHING_AHEAD_SECONDS,
    FetchAhead,
    RequestGate,
    sending_ahead,
)
from taps_common.rest import BaseAPIStream
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
    ahead = FetchAhead(8)
    big = requests.Response()
    big._content = b"x" * (HELD_BYTES // DECODED_FACTOR // 3 + 1)  # noqa: SLF001  (a third of the budget, decoded)

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


def test_an_answer_too_big_once_decoded_is_not_fetched_ahead() -> None:
    # Its bytes fit the budget four times over, but decoded it would not: a month of usage
    # events is read one window at a time, as in a sequential sync.
    ahead = FetchAhead(8)
    answer = requests.Response()
    answer._content = b"x" * (HELD_BYTES // DECODED_FACTOR + 1)  # noqa: SLF001
    ahead.saw_answer(answer)
    assert not ahead.has_room()
    assert not ahead.submit(requests.Request("GET", "http://x.test/1").prepare(), lambda request: answer)
    small = requests.Response()
    small._content = b"x" * (HELD_BYTES // DECODED_FACTOR)  # noqa: SLF001
    ahead.saw_answer(small)
    assert ahead.has_room()
    ahead.close()


def test_answers_fetched_ahead_wait_undecoded_and_are_decoded_in_the_syncs_turn(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent_by: list[str] = []
    decoded_by: list[str] = []
    send = requests.Session.send
    check = BaseAPIStream.validate_response_content

    def recording_send(session: requests.Session, *args: t.Any, **kwargs: t.Any) -> requests.Response:  # noqa: ANN401
        sent_by.append("worker" if sending_ahead() else "sync")
        return send(session, *args, **kwargs)

    def recording_check(stream: BaseAPIStream, response: requests.Response) -> None:
        decoded_by.append("worker" if sending_ahead() else "sync")
        check(stream, response)

    monkeypatch.setattr(requests.Session, "send", recording_send)
    monkeypatch.setattr(BaseAPIStream, "validate_response_content", recording_check)
    expected = run_sync(TapUnleash, config(server, 1))
    sent_by.clear()
    decoded_by.clear()
    ahead = run_sync(TapUnleash, config(server, 4))
    assert sent_by.count("worker") > 10  # most requests went ahead
    assert decoded_by == ["sync"] * len(sent_by)  # every answer decoded once, by the sync itself
    assert without_clock_values(ahead.messages) == without_clock_values(expected.messages)


def test_a_malformed_body_fetched_ahead_is_retried_when_its_turn_comes(server: EmulatorServer) -> None:
    app = t.cast("UnleashEmulator", server.app)
    expected = run_sync(TapUnleash, config(server, 1))
    app.reset_requests()
    app.inject_many([Fault(kind="malformed", path_regex=r"/2$"), Fault(kind="empty", path_regex=r"/3$")])
    result = run_sync(TapUnleash, config(server, 4))
    assert without_clock_values(result.messages) == without_clock_values(expected.messages)
    assert app.pending_faults == 0
    assert app.request_count(r"/2$") >= 2  # the malformed page was asked again


def test_before_a_large_body_is_decoded_free_memory_goes_back_to_the_system(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from taps_common import rest  # noqa: PLC0415

    released: list[bool] = []
    monkeypatch.setattr(rest, "release_free_memory", lambda: released.append(True))
    small, large = requests.Response(), requests.Response()
    small._content = b'{"items": []}'  # noqa: SLF001
    large._content = b'{"items": [' + b"0," * (rest.LARGE_BODY_BYTES // 2) + b"0]}"  # noqa: SLF001
    assert rest.decoded_json(small) == {"items": []}
    assert released == []
    assert len(rest.decoded_json(large)["items"]) == rest.LARGE_BODY_BYTES // 2 + 1
    assert released == [True]


def test_releasing_free_memory_never_fails() -> None:
    from taps_common.rest import release_free_memory  # noqa: PLC0415

    release_free_memory()  # glibc's malloc_trim where there is one, else nothing


def test_each_kind_of_answer_is_sized_by_its_own_answers() -> None:
    # A small listing (data slices) says nothing of the size of what it lists (a slice's whole
    # range): until an answer of that kind is known, its requests go ahead one at a time.
    ahead = FetchAhead(8)
    release = threading.Event()
    listing = requests.Response()
    listing._content = b"[]"  # noqa: SLF001
    big = requests.Response()
    big._content = b"x" * (HELD_BYTES // DECODED_FACTOR // 2 + 1)  # noqa: SLF001

    def send(request: requests.PreparedRequest) -> requests.Response:
        release.wait(5)
        return big

    made = [requests.Request("GET", f"http://x.test/stats/{n}").prepare() for n in range(4)]
    ahead.saw_answer(listing, "data_slices")
    assert ahead.has_room("data_slices")
    assert ahead.submit(made[0], send, "stats")  # unknown size: one may go
    assert not ahead.submit(made[1], send, "stats")  # but only one, until its size is known
    release.set()
    ahead.take(made[0]).result()  # type: ignore[union-attr]
    ahead.saw_answer(big, "stats")  # half the budget, decoded: one more fits, not two
    assert ahead.submit(made[1], send, "stats")
    assert not ahead.submit(made[2], send, "stats")
    assert ahead.has_room("data_slices")  # small answers still fit beside it
    ahead.close()


# --- only while answers are slow to come --------------------------------------------------------


@pytest.fixture
def real_threshold(monkeypatch: pytest.MonkeyPatch) -> float:
    """The threshold as shipped (tests/conftest.py sets it to 0 for every other test)."""
    monkeypatch.setattr("taps_common.fetch_ahead.WORTH_FETCHING_AHEAD_SECONDS", WORTH_FETCHING_AHEAD_SECONDS)
    return WORTH_FETCHING_AHEAD_SECONDS


def answer_after(seconds: float) -> requests.Response:
    answer = requests.Response()
    answer._content = b"{}"  # noqa: SLF001
    answer.elapsed = dt.timedelta(seconds=seconds)
    return answer


def test_fetching_ahead_follows_the_median_wait_of_the_syncs_recent_answers(real_threshold: float) -> None:
    quick, slow = real_threshold / 5, real_threshold * 4
    ahead = FetchAhead(8)
    ahead.saw_answer(answer_after(quick))
    assert not ahead.answers_are_slow()
    assert not ahead.has_room()
    assert not ahead.submit(requests.Request("GET", "http://x.test/1").prepare(), lambda request: answer_after(0))
    ahead.saw_answer(answer_after(slow))  # one slow answer among quick ones: a hiccup
    ahead.saw_answer(answer_after(quick))
    assert not ahead.answers_are_slow()
    ahead.saw_answer(answer_after(slow))
    ahead.saw_answer(answer_after(slow))  # now most recent answers are slow
    assert ahead.answers_are_slow()
    assert ahead.has_room()
    for _ in range(3):  # the API got quick again
        ahead.saw_answer(answer_after(quick))
    assert not ahead.answers_are_slow()
    ahead.close()


def test_a_far_api_is_fetched_ahead_and_a_near_one_read_one_request_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # A threshold well apart from both latencies, so that a busy machine cannot blur them.
    monkeypatch.setattr("taps_common.fetch_ahead.WORTH_FETCHING_AHEAD_SECONDS", 0.02)
    sent_ahead: list[str] = []
    send = requests.Session.send

    def recording_send(session: requests.Session, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:  # noqa: ANN401
        if sending_ahead():
            sent_ahead.append(request.path_url)
        return send(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", recording_send)
    results = {}
    for latency in (0.0, 0.06):
        app = UnleashEmulator(seed=8, devices=3, sessions_per_device=2, frames_per_session=20, page_size=20, latency=latency)
        with EmulatorServer(app) as running:
            sent_ahead.clear()
            results[latency] = run_sync(TapUnleash, config(running, 4))
            if latency:
                assert len(sent_ahead) > 5
            else:
                assert sent_ahead == []
    near, far = results.values()
    assert without_clock_values(far.messages) == without_clock_values(near.messages)

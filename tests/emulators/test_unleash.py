"""The Unleash live emulator over real loopback HTTP, checked against its docs and ground truth."""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from emulators import emulator_class
from emulators.framework import EmulatorServer
from emulators.unleash import KEYS, MODEL_CLASSES, RANGE_MODES, UnleashEmulator

ANCHOR = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
API_KEY = {"x-api-key": "test-api-key"}
PAGE_SIZE = 40  # small, so the default data spans many pages
FAR_FUTURE_MS = 9_999_999_999_999
FORBIDDEN = b'{"message":"Forbidden"}'
BAD_REQUEST = {"message": "Bad Request - Wrong or missing parameters", "name": "BadRequestError"}
VALIDATION_FAILED = {
    "message": "Validation failed - Params content failed validation",
    "name": "ValidationError",
}

Served = tuple[UnleashEmulator, EmulatorServer]
ServeFactory = Callable[..., Served]


@pytest.fixture
def serve() -> Iterator[ServeFactory]:
    """Start an Unleash emulator with the given options (test defaults otherwise)."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> Served:
        emulator = UnleashEmulator(**{"anchor": ANCHOR, "page_size": PAGE_SIZE, **options})
        servers.append(EmulatorServer(emulator).start())
        return emulator, servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as client:
        client.headers.update(API_KEY)
        yield client


def epoch_ms(iso_timestamp: str) -> int:
    return int(datetime.fromisoformat(iso_timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def identity(record: dict[str, Any]) -> tuple[str, str, int, str]:
    """What makes a record unique: (device_id, session_id, frame_number, class_name)."""
    return record["device_id"], record["session_id"], record["frame_number"], record["class_name"]


def time_order(record: dict[str, Any]) -> tuple[str, str, int, str]:
    return record["timestamp"], record["session_id"], record["frame_number"], record["class_name"]


def fetch_all(
    session: requests.Session,
    server: EmulatorServer,
    device_id: str,
    from_ms: int,
    to_ms: int,
    *,
    tableau: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    """Read every page of a range like a tap would, checking the paging contract on the way."""
    route = "tableau/" if tableau else ""
    base = f"{server.url}/v1/analytics/{route}{device_id}/{from_ms}/{to_ms}"
    first = session.get(f"{base}/1").json()
    total_pages = first["total_num_pages"]
    pages = [first] + [session.get(f"{base}/{page}").json() for page in range(2, total_pages + 1)]
    past_the_end = session.get(f"{base}/{total_pages + 1}").json()
    assert past_the_end["data"] == [] and past_the_end["total_num_pages"] == total_pages
    records = []
    for page in pages:
        assert page["total_num_pages"] == total_pages
        if tableau:
            records.extend(page["data"])
        else:
            assert page["keys"] == list(KEYS)
            records.extend(dict(zip(page["keys"], row, strict=True)) for row in page["data"])
    return total_pages, records


def in_range(timestamp_ms: int, from_ms: int, to_ms: int, mode: str) -> bool:
    """The meaning of each `range_inclusive` mode, written independently of the emulator."""
    after_from = timestamp_ms > from_ms or (timestamp_ms == from_ms and mode in ("both", "start"))
    before_to = timestamp_ms < to_ms or (timestamp_ms == to_ms and mode in ("both", "end"))
    return after_from and before_to


# Authentication -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        API_KEY,
        {"Authorization": "Bearer ul_pat_test-token"},
        {"authorization": "bearer ul_pat_test-token"},
    ],
)
def test_api_key_and_access_token_are_both_accepted(
    serve: ServeFactory, headers: dict[str, str]
) -> None:
    _, server = serve()
    response = requests.get(f"{server.url}/v1/analytics/devices", headers=headers, timeout=5)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": ""},
        {"x-api-key": "wrong-key"},
        {"Authorization": "Bearer ul_pat_wrong"},
        {"Authorization": "test-api-key"},
        {"Authorization": "Basic dGVzdC1hcGkta2V5"},
    ],
)
@pytest.mark.parametrize(
    "path", ["/v1/analytics/version", "/v1/analytics/devices", "/v1/analytics/W/1/2/1"]
)
def test_missing_or_wrong_credentials_get_the_gateways_403(
    serve: ServeFactory, headers: dict[str, str], path: str
) -> None:
    _, server = serve()
    response = requests.get(f"{server.url}{path}", headers=headers, timeout=5)
    assert (response.status_code, response.content) == (403, FORBIDDEN)


def test_an_expired_access_token_gets_401_saying_so(serve: ServeFactory) -> None:
    _, server = serve()
    headers = {"Authorization": "Bearer ul_pat_expired-token"}
    response = requests.get(f"{server.url}/v1/analytics/version", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"message": "The incoming token has expired"}


# Simple routes ------------------------------------------------------------------------------------


def test_version_body_is_the_docs_invalid_json(
    serve: ServeFactory, session: requests.Session
) -> None:
    _, server = serve()
    response = session.get(f"{server.url}/v1/analytics/version")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == b'{"1.0.1"}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_devices_and_sessions_list_the_truth(
    serve: ServeFactory, session: requests.Session
) -> None:
    emulator, server = serve()
    devices = session.get(f"{server.url}/v1/analytics/devices").json()
    sessions = session.get(f"{server.url}/v1/analytics/sessions").json()
    assert devices == emulator.device_ids() and len(devices) == 3
    assert all(re.fullmatch(r"W[0-9a-f]{15}", device) for device in devices)
    assert sessions == emulator.session_ids() == sorted(sessions) and len(sessions) == 3 * 4
    assert all(re.fullmatch(r"[0-9]{13}", session_id) for session_id in sessions)
    assert set(sessions) == {record["session_id"] for record in emulator.truth_records()}


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1/analytics",
        "/v1/analytics/",
        "/v1/analytics/devices/extra",
        "/v2/analytics/version",
        "/v1/analytics/Wabc/1/2",
    ],
)
def test_unknown_routes_are_404(serve: ServeFactory, session: requests.Session, path: str) -> None:
    _, server = serve()
    response = session.get(f"{server.url}{path}")
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})


def test_only_get_is_routed(serve: ServeFactory, session: requests.Session) -> None:
    _, server = serve()
    assert session.post(f"{server.url}/v1/analytics/devices").status_code == 404


def test_maintenance_answers_503_everywhere(serve: ServeFactory) -> None:
    _, server = serve(maintenance=True)
    expected = {
        "message": "Service Unavailable - We're temporarily offline for maintenance. "
        "Please try again later.",
        "name": "ServiceUnavailableError",
    }
    for path in ["/v1/analytics/version", "/v1/analytics/W1/1/2/1", "/nowhere"]:
        response = requests.get(f"{server.url}{path}", timeout=5)
        assert (response.status_code, response.json()) == (503, expected)


# Synthetic data -----------------------------------------------------------------------------------


def test_truth_records_look_like_the_docs() -> None:
    emulator = UnleashEmulator(anchor=ANCHOR)
    records = emulator.truth_records()
    assert len(records) == emulator.record_count() > 0
    assert len({identity(record) for record in records}) == len(records)
    span_start_ms = epoch_ms((ANCHOR - timedelta(days=10)).isoformat())
    anchor_ms = epoch_ms(ANCHOR.isoformat())
    frames_by_session: dict[str, list[tuple[int, str]]] = {}
    for record in records:
        assert set(record) == set(KEYS)
        assert record["class_name"] in MODEL_CLASSES[record["model_id"]]
        assert isinstance(record["count"], int) and record["count"] >= 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", record["timestamp"])
        assert re.fullmatch(
            re.escape(record["device_id"]) + r"-\d{10}-\d\d-[A-Z][a-z]{2}-\d\d(-\d\d){3}\.mp4",
            record["source_file_name"],
        )
        session_start_ms = int(record["session_id"])
        assert span_start_ms < session_start_ms < anchor_ms
        assert session_start_ms <= epoch_ms(record["timestamp"]) <= anchor_ms
        frames_by_session.setdefault(record["session_id"], []).append(
            (record["frame_number"], record["timestamp"])
        )
    for frames in frames_by_session.values():
        distinct = sorted(set(frames))
        assert [timestamp for _, timestamp in distinct] == sorted(t for _, t in distinct)
    timestamps_per_frame = {
        (sid, f): t for sid, frames in frames_by_session.items() for f, t in frames
    }
    assert len(set(timestamps_per_frame.values())) < len(
        timestamps_per_frame
    )  # frames share seconds


def test_the_same_seed_gives_the_same_data() -> None:
    def truth(seed: int) -> list[dict[str, Any]]:
        return UnleashEmulator(seed=seed, anchor=ANCHOR).truth_records()

    assert truth(7) == truth(7)
    assert truth(7) != truth(8)


def test_anchor_defaults_to_now_in_whole_seconds() -> None:
    emulator = UnleashEmulator(devices=1, sessions_per_device=1, frames_per_session=1)
    assert abs(emulator.anchor - datetime.now(timezone.utc)) < timedelta(seconds=5)
    assert emulator.anchor.microsecond == 0


@pytest.mark.parametrize(
    "options",
    [{"range_inclusive": "sometimes"}, {"order": "random"}, {"page_size": 0}, {"span_days": 0}],
)
def test_invalid_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        UnleashEmulator(**options)


def test_unleash_is_registered() -> None:
    assert emulator_class("unleash") is UnleashEmulator


# Paging -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tableau", [False, True], ids=["size-optimized", "tableau"])
def test_all_pages_together_are_exactly_the_truth(
    serve: ServeFactory, session: requests.Session, tableau: bool
) -> None:
    emulator, server = serve()
    for device_id in emulator.device_ids():
        truth = emulator.truth_records(device_id)
        total_pages, served = fetch_all(
            session, server, device_id, 0, FAR_FUTURE_MS, tableau=tableau
        )
        assert total_pages == math.ceil(len(truth) / PAGE_SIZE) > 1
        assert served == truth  # same records, same values, same "time" order
        assert len({identity(record) for record in served}) == len(served)
        assert served == sorted(served, key=time_order)


def test_a_partial_range_holds_only_its_records(
    serve: ServeFactory, session: requests.Session
) -> None:
    emulator, server = serve()
    device_id = emulator.device_ids()[1]
    truth = emulator.truth_records(device_id)
    from_ms, to_ms = (epoch_ms(truth[len(truth) * share // 4]["timestamp"]) for share in (1, 3))
    expected = [record for record in truth if from_ms <= epoch_ms(record["timestamp"]) <= to_ms]
    total_pages, served = fetch_all(session, server, device_id, from_ms, to_ms)
    assert served == expected
    assert total_pages == math.ceil(len(expected) / PAGE_SIZE)


@pytest.mark.parametrize("device_id", ["known-device-without-data-in-range", "Wdoesnotexist0000"])
def test_an_empty_result_has_zero_pages(
    serve: ServeFactory, session: requests.Session, device_id: str
) -> None:
    emulator, server = serve()
    if device_id.startswith("known"):
        device_id = emulator.device_ids()[0]
    for page in (1, 2):
        body = session.get(f"{server.url}/v1/analytics/{device_id}/0/1000/{page}").json()
        assert body == {"keys": list(KEYS), "total_num_pages": 0, "data": []}


@pytest.mark.parametrize("mode", RANGE_MODES)
def test_range_inclusive_modes_at_boundary_timestamps(
    serve: ServeFactory, session: requests.Session, mode: str
) -> None:
    emulator, server = serve(range_inclusive=mode)
    device_id = emulator.device_ids()[0]
    truth = emulator.truth_records(device_id)
    from_ms, to_ms = (epoch_ms(truth[len(truth) * share // 3]["timestamp"]) for share in (1, 2))
    stamps = [epoch_ms(record["timestamp"]) for record in truth]
    assert from_ms in stamps and to_ms in stamps  # records sit exactly on both ends

    _, served = fetch_all(session, server, device_id, from_ms, to_ms)
    expected = [r for r in truth if in_range(epoch_ms(r["timestamp"]), from_ms, to_ms, mode)]
    assert served == expected

    _, at_one_instant = fetch_all(session, server, device_id, from_ms, from_ms)
    expected_at_instant = [r for r in truth if epoch_ms(r["timestamp"]) == from_ms]
    assert at_one_instant == (expected_at_instant if mode == "both" else [])


def test_shuffled_order_serves_the_same_records(
    serve: ServeFactory, session: requests.Session
) -> None:
    emulator, server = serve(order="shuffled")
    device_id = emulator.device_ids()[0]
    truth = emulator.truth_records(device_id)
    _, served = fetch_all(session, server, device_id, 0, FAR_FUTURE_MS)
    _, served_again = fetch_all(session, server, device_id, 0, FAR_FUTURE_MS)
    assert len(served) == len(truth) == len({identity(record) for record in served})
    assert sorted(served, key=time_order) == truth
    assert served != truth  # not in time order...
    assert served_again == served  # ...but the same order on every read


@pytest.mark.parametrize(
    ("from_ms", "to_ms", "page", "status", "body"),
    [
        ("abc", "2", "1", 400, BAD_REQUEST),
        ("1", "2.5", "1", 400, BAD_REQUEST),
        ("1", "2", "one", 400, BAD_REQUEST),
        ("1", "2", "+1", 400, BAD_REQUEST),
        ("1", "2", "0", 422, VALIDATION_FAILED),
        ("1", "2", "-1", 422, VALIDATION_FAILED),
        ("3", "2", "1", 422, VALIDATION_FAILED),
    ],
)
@pytest.mark.parametrize("route", ["", "tableau/"])
def test_bad_parameters_get_the_docs_errors(
    serve: ServeFactory,
    session: requests.Session,
    route: str,
    from_ms: str,
    to_ms: str,
    page: str,
    status: int,
    body: dict[str, str],
) -> None:
    emulator, server = serve()
    device_id = emulator.device_ids()[0]
    response = session.get(f"{server.url}/v1/analytics/{route}{device_id}/{from_ms}/{to_ms}/{page}")
    assert (response.status_code, response.json()) == (status, body)


# New data between syncs ---------------------------------------------------------------------------


def test_added_sessions_appear_in_later_queries(
    serve: ServeFactory, session: requests.Session
) -> None:
    emulator, server = serve()
    device_id = emulator.device_ids()[0]
    before = emulator.truth_records(device_id)

    later = emulator.add_session(device_id, ANCHOR + timedelta(hours=1), frames=5)
    earlier = emulator.add_session(device_id, ANCHOR - timedelta(days=5), frames=5)  # amid old data
    new_device = emulator.add_session("Wnewdevice000001", ANCHOR + timedelta(hours=2), frames=3)

    for added in (later, earlier, new_device):
        assert added and all(set(record) == set(KEYS) for record in added)
    _, served = fetch_all(session, server, device_id, 0, FAR_FUTURE_MS)
    assert served == sorted(before + later + earlier, key=time_order)
    _, served_new_device = fetch_all(session, server, "Wnewdevice000001", 0, FAR_FUTURE_MS)
    assert served_new_device == new_device
    assert "Wnewdevice000001" in session.get(f"{server.url}/v1/analytics/devices").json()
    sessions = session.get(f"{server.url}/v1/analytics/sessions").json()
    assert {later[0]["session_id"], earlier[0]["session_id"], new_device[0]["session_id"]} <= set(
        sessions
    )


# Scale --------------------------------------------------------------------------------------------


@pytest.mark.skipif(
    os.environ.get("EMULATOR_BIG") != "1", reason="set EMULATOR_BIG=1 to time 1M records"
)
def test_generating_a_million_records(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    emulator = UnleashEmulator(devices=10, sessions_per_device=35, frames_per_session=1000)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n{emulator.record_count():,} Unleash records generated in {elapsed:.2f} s")
    assert emulator.record_count() > 900_000

"""What the emulators offer benchmarks: memoized answers, and a count of pages asked past the last."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import requests

from emulators.framework import EmulatorApp, EmulatorServer, Fault, Request, Response
from emulators.openspace import OpenSpaceEmulator
from emulators.seemetrix import SeemetrixEmulator
from emulators.unleash import UnleashEmulator


class CountingApp(EmulatorApp):
    """Answers with how many times `handle` ran, so a remembered answer shows."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = itertools.count(1)

    def handle(self, request: Request) -> Response:
        response = Response.json({"call": next(self.calls)})
        response.past_last_page = request.path == "/past"
        return response


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(CountingApp()) as running:
        yield running


def test_memoized_answers_are_computed_once_per_question(server: EmulatorServer) -> None:
    control = f"{server.url}/_emulator"
    with requests.Session() as session:
        assert session.post(f"{control}/memoize", json={"enabled": True}).json() == {"memoize": True}
        first = session.get(f"{server.url}/a?x=1").json()
        again = requests.get(f"{server.url}/a?x=1", headers={"User-Agent": "other"}, timeout=5).json()
        assert again == first  # another client, same question: the remembered answer
        assert session.get(f"{server.url}/a?x=2").json() != first
        assert session.get(f"{server.url}/a?x=1", headers={"X-Token": "t"}).json() != first
        assert session.get(f"{control}/stats").json()["requests"] == 4  # every request still counts
        session.post(f"{control}/memoize", json={"enabled": False})
        assert session.get(f"{server.url}/a?x=1").json() != first


def test_faults_still_apply_while_memoizing(server: EmulatorServer) -> None:
    server.app.memoize()
    assert requests.get(f"{server.url}/a", timeout=5).status_code == 200
    server.app.inject(Fault("status", status=503))
    assert requests.get(f"{server.url}/a", timeout=5).status_code == 503
    assert requests.get(f"{server.url}/_emulator/stats", timeout=5).json()["pending_faults"] == 0


def test_memoize_refuses_a_body_that_is_not_an_object(server: EmulatorServer) -> None:
    assert requests.post(f"{server.url}/_emulator/memoize", data=b"[1]", timeout=5).status_code == 400


def test_pages_past_the_last_are_counted_until_reset(server: EmulatorServer) -> None:
    for path in ("/past", "/a", "/past"):
        requests.get(f"{server.url}{path}", timeout=5)
    assert requests.get(f"{server.url}/_emulator/stats", timeout=5).json()["pages_past_last"] == 2
    requests.post(f"{server.url}/_emulator/reset", timeout=5)
    assert server.app.pages_past_last == 0


def _asks(app: EmulatorApp, target: str, headers: dict[str, str]) -> bool:
    """Whether the app marks `target` as a page past the last one."""
    return app.handle(Request.build("GET", target, headers.items())).past_last_page


def test_unleash_marks_pages_after_total_num_pages() -> None:
    app = UnleashEmulator(devices=1, sessions_per_device=1, frames_per_session=5, page_size=1000)
    device = app.device_ids()[0]
    auth = {"x-api-key": "test-api-key"}
    assert not _asks(app, f"/v1/analytics/{device}/0/9999999999999/1", auth)
    assert _asks(app, f"/v1/analytics/{device}/0/9999999999999/2", auth)
    assert not _asks(app, f"/v1/analytics/{device}/0/1/1", auth)  # nothing there: page 1 still needed


def test_openspace_marks_pages_from_total_pages_on() -> None:
    app = OpenSpaceEmulator(videos=30, max_page_size=20)
    auth = {"api-key": "test-openspace-key"}
    path = "/api/external/v1/reports/360-videos?size=20&page="
    assert [_asks(app, path + str(page), auth) for page in range(3)] == [False, False, True]


def test_seemetrix_marks_tree_pages_from_pages_total_on() -> None:
    app = SeemetrixEmulator(devices=3, days=2, anchor="2024-05-03T00:00:00Z")
    path = (
        "/api/v2/statistics/user/632/devices/dates/?key=test-user-key&tzo=0&obj_in_page=2"
        "&b=2024/05/01 00:00:00&e=2024/05/03 00:00:00&page="
    )
    assert [_asks(app, path + str(page), {}) for page in range(3)] == [False, False, True]

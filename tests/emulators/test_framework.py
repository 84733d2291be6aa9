"""The emulator framework over real loopback HTTP: serving, faults, control endpoints, the CLI."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.__main__ import main, parse_option
from emulators.framework import EmulatorApp, EmulatorServer, Fault, Request, Response

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Big enough that half of it is clearly not the whole, and not valid JSON.
PAYLOAD = {"items": list(range(200))}


class EchoApp(EmulatorApp):
    """A vendor-free app: echoes the request, serves a JSON payload, and fails on demand."""

    def handle(self, request: Request) -> Response:
        if request.path == "/boom":
            raise RuntimeError("emulator bug")
        if request.path.startswith("/payload"):
            return Response.json(PAYLOAD)
        return Response.json(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "token": request.header("X-Token"),
                "body": request.body.decode(),
            }
        )


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EchoApp()) as running:
        yield running


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as client:
        yield client


def test_serves_on_a_free_port_and_stops(server: EmulatorServer, session: requests.Session) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.port > 0
    echoed = session.get(f"{server.url}/a/b%20c", params={"x": ["1", "2"], "empty": ""}).json()
    assert echoed["path"] == "/a/b c"
    assert echoed["query"] == {"x": ["1", "2"], "empty": [""]}
    server.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{server.url}/after-stop", timeout=2)


def test_request_headers_are_case_insensitive(server: EmulatorServer) -> None:
    echoed = requests.get(f"{server.url}/h", headers={"x-token": "secret"}, timeout=5).json()
    assert echoed["token"] == "secret"


def test_post_body_reaches_the_app(server: EmulatorServer) -> None:
    echoed = requests.post(f"{server.url}/p", data=b"hello", timeout=5).json()
    assert (echoed["method"], echoed["body"]) == ("POST", "hello")


def test_head_sends_headers_only(server: EmulatorServer) -> None:
    response = requests.head(f"{server.url}/payload", timeout=5)
    assert response.status_code == 200
    compact_payload = json.dumps(PAYLOAD, separators=(",", ":"))
    assert int(response.headers["Content-Length"]) == len(compact_payload)
    assert response.content == b""


def test_keep_alive_reuses_one_connection(server: EmulatorServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("GET", "/first")
        connection.getresponse().read()
        first_socket = connection.sock
        connection.request("GET", "/second")
        assert connection.getresponse().status == 200
        assert first_socket is not None and connection.sock is first_socket
    finally:
        connection.close()


def test_keep_alive_requests_do_not_stall(
    server: EmulatorServer, session: requests.Session
) -> None:
    # With Nagle's algorithm on, each request waits ~40 ms for a delayed ACK: 30 would take 1.2 s.
    started = time.perf_counter()
    for _ in range(30):
        session.get(f"{server.url}/fast").raise_for_status()
    assert time.perf_counter() - started < 1.0


def test_an_exception_in_handle_becomes_a_500(
    server: EmulatorServer, session: requests.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    response = session.get(f"{server.url}/boom")
    assert response.status_code == 500
    assert "RuntimeError: emulator bug" in response.json()["error"]
    assert "emulator bug" in capsys.readouterr().err
    assert session.get(f"{server.url}/still-serving").status_code == 200


def test_latency_is_added_to_every_response(session: requests.Session) -> None:
    with EmulatorServer(EchoApp(latency=0.2)) as slow_server:
        started = time.perf_counter()
        session.get(f"{slow_server.url}/x").raise_for_status()
        assert time.perf_counter() - started >= 0.2


def test_only_loopback_hosts_are_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorServer(EchoApp(), host="0.0.0.0")


# Faults ------------------------------------------------------------------------------------------


def test_status_fault_answers_with_retry_after(
    server: EmulatorServer, session: requests.Session
) -> None:
    server.app.inject(Fault("status", status=429, retry_after="7"))
    response = session.get(f"{server.url}/x")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"message": "Too Many Requests"}
    assert session.get(f"{server.url}/x").status_code == 200


def test_status_fault_with_a_custom_body(server: EmulatorServer, session: requests.Session) -> None:
    gateway_page = "<html>Bad Gateway</html>"
    server.app.inject(Fault("status", status=502, body=gateway_page, content_type="text/html"))
    response = session.get(f"{server.url}/x")
    assert (response.status_code, response.text) == (502, gateway_page)
    assert response.headers["Content-Type"] == "text/html"


def test_status_fault_with_headers_answers_a_redirect(server: EmulatorServer, session: requests.Session) -> None:
    server.app.inject(Fault("status", status=302, headers={"Location": "https://elsewhere.invalid/x?key=k"}))
    response = session.get(f"{server.url}/x", allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://elsewhere.invalid/x?key=k"


def test_transform_fault_changes_the_json_body(server: EmulatorServer, session: requests.Session) -> None:
    def drift(body: Any) -> Any:
        body["items"] = [str(item) for item in body["items"][:2]]
        body["added"] = True
        return body

    server.app.inject(Fault("transform", transform=drift, path_regex="^/payload", times=2))
    assert session.get(f"{server.url}/payload").json() == {"items": ["0", "1"], "added": True}
    assert session.get(f"{server.url}/payload").headers["Content-Type"] == "application/json"
    assert session.get(f"{server.url}/payload").json() == PAYLOAD  # two uses, then as served


def test_transform_fault_leaves_a_body_that_is_not_json_alone(server: EmulatorServer, session: requests.Session) -> None:
    class TextApp(EchoApp):
        def handle(self, request: Request) -> Response:
            return Response.text("not json")

    with EmulatorServer(TextApp()) as text_server:
        text_server.app.inject(Fault("transform", transform=lambda body: {"changed": body}))
        assert session.get(f"{text_server.url}/x").text == "not json"


def test_a_transform_is_in_process_only() -> None:
    with pytest.raises(ValueError, match="needs a transform function"):
        Fault("transform")
    with pytest.raises(ValueError, match="only it takes one"):
        Fault("status", transform=lambda body: body)
    with pytest.raises(ValueError, match="unknown fault fields"):
        Fault.from_dict({"kind": "transform", "transform": "lambda body: body"})


def test_drop_fault_cuts_the_body_short(server: EmulatorServer, session: requests.Session) -> None:
    server.app.inject(Fault("drop"))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        session.get(f"{server.url}/payload")
    assert session.get(f"{server.url}/payload").json() == PAYLOAD


def test_malformed_fault_sends_half_a_body(
    server: EmulatorServer, session: requests.Session
) -> None:
    server.app.inject(Fault("malformed"))
    response = session.get(f"{server.url}/payload")
    assert response.status_code == 200
    assert len(response.content) == int(response.headers["Content-Length"]) > 0
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_empty_fault_sends_no_body(server: EmulatorServer, session: requests.Session) -> None:
    server.app.inject(Fault("empty"))
    response = session.get(f"{server.url}/payload")
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["Content-Length"] == "0"


def test_slow_fault_delays_then_answers(server: EmulatorServer, session: requests.Session) -> None:
    server.app.inject(Fault("slow", delay=0.3))
    started = time.perf_counter()
    response = session.get(f"{server.url}/payload")
    assert time.perf_counter() - started >= 0.3
    assert response.json() == PAYLOAD


def test_fault_times_counts_matching_requests(
    server: EmulatorServer, session: requests.Session
) -> None:
    server.app.inject(Fault("status", status=503, times=2))
    statuses = [session.get(f"{server.url}/x").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert server.app.pending_faults == 0


def test_fault_with_no_uses_left_is_never_queued(server: EmulatorServer) -> None:
    server.app.inject(Fault("status", times=0))
    assert server.app.pending_faults == 0


def test_path_regex_limits_a_fault_to_matching_paths(
    server: EmulatorServer, session: requests.Session
) -> None:
    server.app.inject(Fault("status", status=500, path_regex=r"^/b"))
    assert session.get(f"{server.url}/a").status_code == 200
    assert session.get(f"{server.url}/b").status_code == 500
    assert session.get(f"{server.url}/b").status_code == 200


def test_matching_faults_apply_first_in_first_out(
    server: EmulatorServer, session: requests.Session
) -> None:
    server.app.inject_many(
        [
            Fault("status", status=500, path_regex="^/other"),
            Fault("status", status=502),
            Fault("status", status=503),
        ]
    )
    assert [session.get(f"{server.url}/x").status_code for _ in range(3)] == [502, 503, 200]
    server.app.clear_faults()
    assert session.get(f"{server.url}/other").status_code == 200


def test_injected_fault_objects_are_not_changed(server: EmulatorServer) -> None:
    fault = Fault("empty", times=1)
    server.app.inject(fault)
    requests.get(f"{server.url}/x", timeout=5)
    assert fault.times == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "explode"},
        {"kind": "status", "status": 42},
        {"kind": "slow", "delay": -1},
        {"kind": "status", "path_regex": "("},
        {"kind": "status", "colour": "red"},
        {"kind": "status", "headers": {"Location": 3}},
        {"kind": "transform"},
        {"status": 500},
        "not an object",
    ],
)
def test_invalid_faults_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        Fault.from_dict(bad)


# Control endpoints -------------------------------------------------------------------------------


def test_control_endpoints_drive_the_emulator_over_http(
    server: EmulatorServer, session: requests.Session
) -> None:
    control = f"{server.url}/_emulator"
    one: dict[str, Any] = {
        "kind": "status",
        "status": 429,
        "retry_after": 1,
        "path_regex": "^/limited",
    }
    assert session.post(f"{control}/faults", json=one).json()["pending_faults"] == 1
    several: list[dict[str, Any]] = [
        {"kind": "empty"},
        {"kind": "status", "status": 503, "times": 2},
    ]
    assert session.post(f"{control}/faults", json=several).json() == {
        "injected": 2,
        "pending_faults": 3,
    }

    limited = session.get(f"{server.url}/limited")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    assert session.get(f"{server.url}/x").content == b""
    assert session.get(f"{server.url}/x").status_code == 503

    stats = session.get(f"{control}/stats").json()
    assert stats == {
        "requests": 3,
        "by_path": {"/limited": 1, "/x": 2},
        "pending_faults": 1,
        "pages_past_last": 0,
    }

    assert session.post(f"{control}/reset").json() == {"reset": True}
    emptied = {"requests": 0, "by_path": {}, "pending_faults": 0, "pages_past_last": 0}
    assert session.get(f"{control}/stats").json() == emptied
    assert session.get(f"{server.url}/x").status_code == 200


def test_control_endpoints_refuse_bad_input(
    server: EmulatorServer, session: requests.Session
) -> None:
    control = f"{server.url}/_emulator"
    assert session.post(f"{control}/faults", data=b"{not json").status_code == 400
    refused = session.post(f"{control}/faults", json=[{"kind": "empty"}, {"kind": "nope"}])
    assert refused.status_code == 400
    assert server.app.pending_faults == 0  # none of a partly bad list is injected
    assert session.get(f"{control}/nowhere").status_code == 404


def test_control_endpoints_are_neither_counted_nor_faulted(
    server: EmulatorServer, session: requests.Session
) -> None:
    server.app.inject(Fault("status", status=500))
    assert session.get(f"{server.url}/_emulator/stats").status_code == 200
    assert server.app.request_count() == 0
    assert session.get(f"{server.url}/a").status_code == 500  # the fault waited for a real request
    session.get(f"{server.url}/a")
    session.get(f"{server.url}/b")
    assert server.app.request_count() == 3
    assert server.app.request_count("^/a$") == 2
    assert [request.path for request in server.app.requests] == ["/a", "/a", "/b"]
    server.app.reset_requests()
    assert server.app.request_count() == 0


# Command line -------------------------------------------------------------------------------------


def test_cli_lists_the_vendors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert "unleash" in capsys.readouterr().out.split()


def test_cli_refuses_a_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "unleash", "--host", "0.0.0.0", "--port", "0"])
    assert exit_info.value.code == 2
    assert "loopback" in capsys.readouterr().err


def test_cli_refuses_an_unknown_emulator_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "unleash", "--port", "0", "--option", "colour=red"])
    assert "colour" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("devices=5", (None, "devices", 5)),
        ("maintenance=true", (None, "maintenance", True)),
        ("anchor=2024-01-01T00:00:00Z", (None, "anchor", "2024-01-01T00:00:00Z")),
        ('unleash.api_keys=["a","b"]', ("unleash", "api_keys", ["a", "b"])),
        ("order=", (None, "order", "")),
    ],
)
def test_cli_options_are_json_when_they_parse(text: str, parsed: tuple[object, ...]) -> None:
    assert tuple(parse_option(text)) == parsed


def test_cli_serves_until_sigterm_then_exits_cleanly() -> None:
    command = [sys.executable, "-m", "emulators", "serve", "unleash", "--port", "0"]
    command += ["--option", "devices=2"]
    with subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            vendor, url = process.stdout.readline().split()  # type: ignore[union-attr]
            assert vendor == "unleash"
            devices = requests.get(
                f"{url}/v1/analytics/devices", headers={"x-api-key": "test-api-key"}, timeout=5
            )
            assert len(devices.json()) == 2
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr

"""Proxy settings from the environment are read once per stream, and choose what requests would."""

from __future__ import annotations

import http.server
import threading
import typing as t

import orjson
import pytest
import requests
from requests.utils import resolve_proxies

from tests.common.test_retries_and_errors import CONFIG, ExampleTap
from tests.helpers import run_sync

if t.TYPE_CHECKING:
    from collections.abc import Iterator

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without proxy variables, to set them in."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("api_url", "variables"),
    [
        ("https://api.example.test", {}),
        ("https://api.example.test", {"HTTPS_PROXY": "http://proxy.example:3128"}),
        ("https://api.example.test", {"https_proxy": "http://proxy.example:3128", "NO_PROXY": "example.test"}),
        ("https://api.example.test", {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "other.test"}),
        ("https://api.example.test", {"HTTP_PROXY": "http://proxy.example:3128"}),  # another scheme's
        ("https://api.example.test", {"ALL_PROXY": "socks5://proxy.example:1080"}),
        ("http://127.0.0.1:8080", {"HTTP_PROXY": "http://proxy.example:3128", "NO_PROXY": "127.0.0.1"}),
        ("http://127.0.0.1:8080", {"HTTP_PROXY": "http://proxy.example:3128"}),
    ],
)
def test_the_proxy_chosen_once_is_the_one_requests_chooses_per_request(
    environment: pytest.MonkeyPatch, api_url: str, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        environment.setenv(name, value)
    stream = ExampleTap(config={**CONFIG, "api_url": api_url}).streams["items"]
    session = stream.requests_session
    assert session.trust_env is False  # the environment is not read again for every request
    for path in ("/items?page=0", "/items?page=12&key=x", "/version"):
        request = requests.Request("GET", f"{api_url}{path}").prepare()
        assert resolve_proxies(request, session.proxies, session.trust_env) == resolve_proxies(request, {}, True)


class RecordingProxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy on loopback that answers every page itself, and notes what it was asked."""

    asked: t.ClassVar[list[str]] = []

    def do_GET(self) -> None:  # noqa: N802
        RecordingProxy.asked.append(self.path)  # a proxy is asked for the absolute URL
        body = orjson.dumps({"items": [{"id": len(RecordingProxy.asked)}], "pages": 2})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: t.Any) -> None:  # noqa: ANN401
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RecordingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    RecordingProxy.asked.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_sync_goes_through_the_proxy_the_environment_names(environment: pytest.MonkeyPatch, proxy: str) -> None:
    environment.setenv("HTTP_PROXY", proxy)
    result = run_sync(ExampleTap, {**CONFIG, "api_url": "http://api.example.test", "concurrent_requests": 1})
    assert [r["id"] for r in result.records["items"]] == [1, 2]
    assert RecordingProxy.asked == [
        "http://api.example.test/items?page=0&key=query-secret-123",
        "http://api.example.test/items?page=1&key=query-secret-123",
    ]

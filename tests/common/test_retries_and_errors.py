"""The shared base stream: retries honour Retry-After, errors are clear and secret-free.

Each test runs a tiny tap built on the shared classes against requests-mock;
backoff's sleep is replaced so that no test waits for real.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import typing as t

import pytest
import requests
from singer_sdk import typing as th
from singer_sdk.authenticators import APIKeyAuthenticator

from taps_common.errors import APIRequestError, APIUnavailableError, CredentialsError
from taps_common.redaction import SECRETS
from taps_common.rest import BaseAPIStream, TotalPagesPaginator, decoded_json
from taps_common.retry import RetryPolicy, parse_retry_after
from taps_common.tap import BaseUsageTap
from taps_common.timestamps import UTC
from tests.helpers import run_sync

if t.TYPE_CHECKING:
    import requests_mock as rm

BASE = "https://api.example.test"
KEY = "query-secret-123"


class ItemsStream(BaseAPIStream):
    """Pages of items; the key travels in the query string, like two real vendors."""

    name = "items"
    path = "/items"
    vendor_name = "Example"
    credential_settings = ("api_key",)
    primary_keys = ("id",)
    schema = th.PropertiesList(th.Property("id", th.IntegerType)).to_dict()

    @property
    def authenticator(self) -> APIKeyAuthenticator:
        return APIKeyAuthenticator(key="key", value=self.config["api_key"], location="params")

    def get_new_paginator(self) -> TotalPagesPaginator:
        return TotalPagesPaginator(lambda response: decoded_json(response)["pages"], first_page=0)

    def get_url_params(self, context: t.Any, next_page_token: t.Any) -> dict:  # noqa: ANN401
        return {"page": next_page_token}

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        yield from decoded_json(response)["items"]


class ExampleTap(BaseUsageTap):
    name = "tap-example"
    connection_test_path = "/version"
    config_jsonschema = BaseUsageTap.with_common_settings(
        th.PropertiesList(
            th.Property("api_url", th.StringType, default=BASE),
            th.Property("api_key", th.StringType, secret=True, required=True),
            th.Property("start_date", th.DateTimeType),
        )
    )

    def discover_streams(self) -> list:
        return [ItemsStream(self)]


CONFIG = {"api_key": KEY, "max_tries": 4, "backoff_base_seconds": 0.5, "retry_after_max_seconds": 30}


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits backoff asks for, recorded instead of slept."""
    asked: list[float] = []
    monkeypatch.setattr("backoff._sync.time.sleep", asked.append)
    return asked


def page(n: int, pages: int = 2) -> dict:
    return {"json": {"items": [{"id": n * 10}, {"id": n * 10 + 1}], "pages": pages}}


def test_pages_are_read_until_the_announced_count_and_no_further(requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE}/items?page=0", **page(0, pages=3))
    requests_mock.get(f"{BASE}/items?page=1", json={"items": [], "pages": 3})  # empty, not last
    requests_mock.get(f"{BASE}/items?page=2", **page(2, pages=3))
    result = run_sync(ExampleTap, CONFIG)
    assert [r["id"] for r in result.records["items"]] == [0, 1, 20, 21]
    assert requests_mock.call_count == 3


def test_429_waits_what_retry_after_says_in_seconds(requests_mock: rm.Mocker, waits: list[float]) -> None:
    requests_mock.get(
        f"{BASE}/items?page=0",
        [{"status_code": 429, "headers": {"Retry-After": "7"}}, page(0, pages=1)],
    )
    result = run_sync(ExampleTap, CONFIG)
    assert len(result.records["items"]) == 2
    assert len(waits) == 1
    assert 7.0 <= waits[0] <= 7.7  # jitter only ever adds, at most 10 %


def test_retry_after_as_http_date_is_honoured_and_capped(requests_mock: rm.Mocker, waits: list[float]) -> None:
    soon = email.utils.format_datetime(dt.datetime.now(tz=UTC) + dt.timedelta(seconds=20), usegmt=True)
    much_later = email.utils.format_datetime(dt.datetime.now(tz=UTC) + dt.timedelta(hours=5), usegmt=True)
    requests_mock.get(
        f"{BASE}/items?page=0",
        [
            {"status_code": 503, "headers": {"Retry-After": soon}},
            {"status_code": 429, "headers": {"Retry-After": much_later}},
            page(0, pages=1),
        ],
    )
    run_sync(ExampleTap, CONFIG)
    assert 17 <= waits[0] <= 22
    assert 30 <= waits[1] <= 33  # capped by retry_after_max_seconds


def test_without_retry_after_waits_grow_exponentially(requests_mock: rm.Mocker, waits: list[float]) -> None:
    requests_mock.get(
        f"{BASE}/items?page=0",
        [{"status_code": 500}, {"status_code": 502}, {"exc": requests.exceptions.ConnectTimeout}, page(0, 1)],
    )
    run_sync(ExampleTap, CONFIG)
    assert [round(w, 1) for w in waits] == pytest.approx([0.5, 1.0, 2.0], rel=0.11)


def test_malformed_json_body_is_retried(requests_mock: rm.Mocker, waits: list[float]) -> None:
    requests_mock.get(f"{BASE}/items?page=0", [{"text": '{"items": [{"id"'}, {"text": ""}, page(0, 1)])
    result = run_sync(ExampleTap, CONFIG)
    assert len(result.records["items"]) == 2
    assert len(waits) == 2


def test_giving_up_names_the_failure_and_never_the_secret(
    requests_mock: rm.Mocker, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    requests_mock.get(
        f"{BASE}/items?page=0",
        exc=requests.exceptions.ConnectionError(f"Max retries exceeded with url: /items?key={KEY}"),
    )
    with pytest.raises(APIUnavailableError) as failure:
        run_sync(ExampleTap, CONFIG)
    assert "gave up after 4 tries" in str(failure.value)
    assert "api_url" in str(failure.value)
    assert len(waits) == 3
    assert KEY not in str(failure.value)
    assert KEY not in caplog.text
    assert failure.value.__cause__ is None and failure.value.__suppress_context__


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_fail_at_once_naming_the_setting(
    requests_mock: rm.Mocker, waits: list[float], status: int
) -> None:
    requests_mock.get(f"{BASE}/items?page=0", status_code=status, json={"message": f"bad key {KEY}"})
    with pytest.raises(CredentialsError, match="api_key") as failure:
        run_sync(ExampleTap, CONFIG)
    assert requests_mock.call_count == 1
    assert waits == []
    assert KEY not in str(failure.value)


def test_other_client_errors_fail_at_once_with_path_and_body_but_no_query(requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE}/items?page=0", status_code=422, json={"message": "page out of range"})
    with pytest.raises(APIRequestError) as failure:
        run_sync(ExampleTap, CONFIG)
    assert "HTTP 422" in str(failure.value)
    assert "/items" in str(failure.value)
    assert "page out of range" in str(failure.value)
    assert "key=" not in str(failure.value)
    assert requests_mock.call_count == 1


def test_redirects_are_not_followed(requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE}/items?page=0", status_code=302, headers={"Location": "https://elsewhere.test/x"})
    with pytest.raises(APIRequestError, match="elsewhere.test"):
        run_sync(ExampleTap, CONFIG)
    assert requests_mock.call_count == 1


def test_connection_test_reads_a_non_json_body(requests_mock: rm.Mocker) -> None:
    requests_mock.get(f"{BASE}/version", text="{not json}")
    tap = ExampleTap(config=CONFIG)
    assert tap.check_connection() == "{not json}"


def test_secret_settings_are_registered_when_the_tap_starts() -> None:
    SECRETS.clear()
    ExampleTap(config=CONFIG)
    assert KEY not in SECRETS.redact(f"x {KEY} y")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("12", 12.0), ("0", 0.0), ("-5", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_http_date_in_the_past_means_no_wait() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_policy_waits_double_up_to_the_limit() -> None:
    policy = RetryPolicy(base_seconds=1, max_backoff_seconds=5)
    assert [policy.wait_seconds(n, None) for n in range(5)] == [1, 2, 4, 5, 5]

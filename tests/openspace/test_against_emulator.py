"""tap-openspace against the OpenSpace emulator over real HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import math
import typing as t

import pytest
from singer_sdk.testing import get_tap_test_class

from emulators.framework import EmulatorServer, Fault, Request, Response
from emulators.openspace import OpenSpaceEmulator
from taps_common.fetch_ahead import FetchAhead, RequestGate
from taps_common.errors import APIRequestError, APIUnavailableError
from tap_openspace.tap import TapOpenSpace
from tests.contract import assert_keys_declared_in_schemas, assert_primary_keys_unique_and_present
from tests.helpers import CapturingWriter, run_sync, without_clock_values

if t.TYPE_CHECKING:
    from collections.abc import Iterator

KEY = "test-openspace-key"
CAP = 25  # the emulator's cap on `size`; the tap asks for 1000
FAST_RETRIES = {"max_tries": 3, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}
UTC = dt.timezone.utc

# How each report's fields are named in the tap's records, written out here rather than taken from the tap.
EMITTED = {
    "360-videos": (
        "videos_360",
        ("video_id",),
        {
            "videoId": "video_id",
            "videoStart": "video_start",
            "videoNumberOfFrames": "video_number_of_frames",
            "siteId": "site_id",
            "siteName": "site_name",
            "userEmail": "user_email",
            "week": "week",
        },
    ),
    "sites": (
        "sites",
        ("site_id",),
        {
            "siteId": "site_id",
            "siteName": "site_name",
            "siteStatus": "site_status",
            "siteCreated": "site_created",
            "orgId": "org_id",
            "orgName": "org_name",
        },
    ),
    "memberships": (
        "memberships",
        ("membership_key",),
        {
            "userId": "user_id",
            "userEmail": "user_email",
            "userFullName": "user_full_name",
            "role": "role",
            "orgId": "org_id",
            "orgName": "org_name",
            "siteId": "site_id",
            "siteName": "site_name",
        },
    ),
    "field-notes": (
        "field_notes",
        ("id",),
        {
            "id": "id",
            "description": "description",
            "status": "status",
            "modifiedAt": "modified_at",
            "siteId": "site_id",
            "siteName": "site_name",
        },
    ),
}
TIME_FIELDS = {"videoStart", "siteCreated", "modifiedAt"}


def utc_text(value: str | int | None) -> str | None:
    """A served time in the tap's one UTC form, computed without the tap's code."""
    if value is None:
        return None
    if isinstance(value, int):
        moment = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=value)
    else:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def as_emitted(report: str, served: dict[str, t.Any]) -> dict[str, t.Any]:
    """A ground-truth record as the tap should emit it."""
    _, _, names = EMITTED[report]
    record: dict[str, t.Any] = {}
    for field, value in served.items():
        if field in TIME_FIELDS:
            record[names[field]] = utc_text(value)
        elif field == "id":
            record[names[field]] = str(value)
        else:
            record[names[field]] = value
    if report == "memberships":
        record["membership_key"] = f"{served['userId']}/{served['orgId']}/{served['siteId'] or ''}"
    return record


def key_of(report: str) -> t.Callable[[dict[str, t.Any]], tuple]:
    _, primary_keys, _ = EMITTED[report]
    return lambda record: tuple(record[name] for name in primary_keys)


def assert_emitted_exactly(result: t.Any, app: OpenSpaceEmulator, report: str) -> None:  # noqa: ANN401
    stream, primary_keys, _ = EMITTED[report]
    emitted = result.records[stream]
    assert_primary_keys_unique_and_present(emitted, primary_keys, stream)
    expected = [as_emitted(report, record) for record in app.truth(report)]
    assert sorted(emitted, key=key_of(report)) == sorted(expected, key=key_of(report))


def pages(count: int) -> int:
    """Requests needed for `count` records at the server's real page size (an empty report takes one)."""
    return max(1, math.ceil(count / CAP))


def tap_config(server: EmulatorServer, **overrides: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    return {"api_url": server.url, "api_key": KEY, **FAST_RETRIES, **overrides}


def video_bookmark(state: dict[str, t.Any]) -> str | None:
    return state["bookmarks"].get("videos_360", {}).get("replication_key_value")


def newest_first(app: OpenSpaceEmulator) -> list[dict[str, t.Any]]:
    """Every capture as the tap emits it, newest first (ties in any order)."""
    captures = [as_emitted("360-videos", record) for record in app.truth("360-videos")]
    return sorted(captures, key=lambda record: record["video_start"], reverse=True)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    options = {"seed": 11, "videos": 240, "field_notes": 30, "max_page_size": CAP}
    options.update(getattr(request, "param", {}))
    with EmulatorServer(OpenSpaceEmulator(**options)) as running:
        yield running


# --- the SDK's standard suite, against a long-lived emulator ---------------------------

_SUITE_SERVER = EmulatorServer(OpenSpaceEmulator(seed=5, videos=60, field_notes=10, max_page_size=20))
_SUITE_SERVER.start()
TestTapOpenSpaceStandard = get_tap_test_class(tap_class=TapOpenSpace, config=tap_config(_SUITE_SERVER))


@pytest.fixture(scope="module", autouse=True)
def _stop_suite_server() -> Iterator[None]:
    yield
    _SUITE_SERVER.stop()


# --- full syncs ---------------------------------------------------------------------------


def test_catalog_keys_exist_in_schemas(server: EmulatorServer) -> None:
    assert_keys_declared_in_schemas(TapOpenSpace(config=tap_config(server)))


def test_full_sync_emits_exactly_the_emulator_records_in_capped_pages(server: EmulatorServer) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    result = run_sync(TapOpenSpace, tap_config(server))  # page_size 1000, the server sends 25
    for report in EMITTED:
        assert_emitted_exactly(result, app, report)
        assert app.request_count(f"/reports/{report}$") == pages(app.record_count(report)), report
    assert app.request_count("360-videos$") > 5  # the cap really split the report
    assert app.request_count() == sum(pages(app.record_count(report)) for report in EMITTED)
    assert video_bookmark(result.final_state) == newest_first(app)[0]["video_start"]


@pytest.mark.parametrize("timestamp_format", ["offset", "local", "epoch_ms"])
def test_every_timestamp_format_gives_the_same_records(timestamp_format: str) -> None:
    app = OpenSpaceEmulator(seed=11, videos=60, max_page_size=CAP, timestamp_format=timestamp_format)
    with EmulatorServer(app) as running:
        result = run_sync(TapOpenSpace, tap_config(running))
    for report in EMITTED:
        assert_emitted_exactly(result, app, report)
    reference = OpenSpaceEmulator(seed=11, videos=60, anchor=app.anchor)  # the default `instant` form
    assert sorted(r["video_start"] for r in result.records["videos_360"]) == sorted(
        r["video_start"] for r in newest_first(reference)
    )


# --- incremental syncs ----------------------------------------------------------------------


def test_second_sync_asks_only_for_the_pages_of_new_captures_plus_at_most_one(server: EmulatorServer) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    config = tap_config(server)
    first = run_sync(TapOpenSpace, config)
    bookmark = video_bookmark(first.final_state)
    assert bookmark is not None
    at_bookmark_before = [r for r in newest_first(app) if r["video_start"] == bookmark]
    assert len(at_bookmark_before) >= 2  # the emulator's newest captures share their start

    # 60 captures arrive, one of them started in the very millisecond of the bookmark.
    newest = dt.datetime.fromisoformat(bookmark)
    arrived = app.add_videos([newest + dt.timedelta(minutes=5 * n) for n in range(1, 60)] + [newest])
    app.reset_requests()
    second = run_sync(TapOpenSpace, config, state=first.final_state)

    expected = [as_emitted("360-videos", r) for r in arrived] + at_bookmark_before
    assert sorted(second.records["videos_360"], key=key_of("360-videos")) == sorted(expected, key=key_of("360-videos"))
    # Reading newest first, the first capture older than the bookmark sits on the last page read.
    first_older = next(i for i, r in enumerate(newest_first(app)) if r["video_start"] < bookmark)
    assert app.request_count("360-videos$") == first_older // CAP + 1
    assert app.request_count("360-videos$") <= math.ceil(len(arrived) / CAP) + 1
    assert app.request_count("360-videos$") < pages(app.record_count("360-videos")) - 5
    assert video_bookmark(second.final_state) == as_emitted("360-videos", arrived[-2])["video_start"]


def test_a_sync_without_new_captures_makes_one_request_and_keeps_the_bookmark(server: EmulatorServer) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    config = tap_config(server)
    first = run_sync(TapOpenSpace, config)
    app.reset_requests()
    second = run_sync(TapOpenSpace, config, state=first.final_state)
    bookmark = video_bookmark(first.final_state)
    assert {r["video_start"] for r in second.records["videos_360"]} == {bookmark}
    assert app.request_count("360-videos$") == 1
    assert video_bookmark(second.final_state) == bookmark


def test_start_date_reads_only_the_pages_back_to_it(server: EmulatorServer) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    captures = newest_first(app)
    start_date = captures[len(captures) // 4]["video_start"]
    result = run_sync(TapOpenSpace, tap_config(server, start_date=start_date))
    expected = [r for r in captures if r["video_start"] >= start_date]
    assert sorted(map(key_of("360-videos"), result.records["videos_360"])) == sorted(
        map(key_of("360-videos"), expected)
    )
    assert app.request_count("360-videos$") == len(expected) // CAP + 1


def test_an_interrupted_sync_keeps_its_bookmark_and_the_next_one_loses_nothing(server: EmulatorServer) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    config = tap_config(server, max_tries=1)
    first = run_sync(TapOpenSpace, config)
    old_bookmark = video_bookmark(first.final_state)
    newest = dt.datetime.fromisoformat(old_bookmark)
    arrived = app.add_videos([newest + dt.timedelta(minutes=n) for n in range(1, 101)])

    # Two pages of new captures get through, then the API fails.
    app.inject_many(
        [Fault(kind="slow", delay=0.0, path_regex="360-videos$") for _ in range(2)]
        + [Fault(kind="status", status=503, path_regex="360-videos$")]
    )
    writer = CapturingWriter()
    crashing = TapOpenSpace(config=config, state=first.final_state, message_writer=writer)
    with pytest.raises(APIUnavailableError):
        crashing.sync_all()
    crashed = [m["record"] for m in writer.messages if m["type"] == "RECORD" and m["stream"] == "videos_360"]
    states = [m["value"] for m in writer.messages if m["type"] == "STATE"]
    assert len(crashed) == 2 * CAP  # the newest 50 captures were emitted...
    assert {video_bookmark(state) for state in states} == {old_bookmark}  # ...but the bookmark stayed,
    assert video_bookmark(crashing.state) == old_bookmark  # even in the state not yet written

    resumed = run_sync(TapOpenSpace, config, state=states[-1])
    read = {r["video_id"] for r in crashed} | {r["video_id"] for r in resumed.records["videos_360"]}
    assert {r["videoId"] for r in arrived} <= read
    assert video_bookmark(resumed.final_state) == as_emitted("360-videos", arrived[-1])["video_start"]


@pytest.mark.parametrize("server", [{"honour_sort": False}], indirect=True)
def test_a_server_that_ignores_sort_costs_a_full_read_but_loses_nothing(server: EmulatorServer) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    config = tap_config(server)
    first = run_sync(TapOpenSpace, config)
    bookmark = video_bookmark(first.final_state)
    assert bookmark == newest_first(app)[0]["video_start"]
    arrived = app.add_videos([dt.datetime.fromisoformat(bookmark) + dt.timedelta(hours=1)])
    app.reset_requests()
    second = run_sync(TapOpenSpace, config, state=first.final_state)
    assert arrived[0]["videoId"] in {r["video_id"] for r in second.records["videos_360"]}
    assert app.request_count("360-videos$") == pages(app.record_count("360-videos"))


def test_lookback_rereads_captures_uploaded_late(server: EmulatorServer) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    config = tap_config(server, lookback_hours=6)
    first = run_sync(TapOpenSpace, config)
    bookmark = dt.datetime.fromisoformat(video_bookmark(first.final_state))
    late = app.add_videos([bookmark - dt.timedelta(hours=5)])  # recorded before the bookmark, uploaded after
    second = run_sync(TapOpenSpace, config, state=first.final_state)
    assert late[0]["videoId"] in {r["video_id"] for r in second.records["videos_360"]}


# --- memberships per org, and transient failures ----------------------------------------------


@pytest.mark.parametrize("server", [{"memberships_require_orgs": True}], indirect=True)
def test_memberships_that_need_orgs_are_read_per_org_id(server: EmulatorServer) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    result = run_sync(TapOpenSpace, tap_config(server, org_ids=app.org_ids()))
    assert_emitted_exactly(result, app, "memberships")
    assert app.request_count("memberships$") == sum(
        pages(len(app.truth("memberships", orgs=[org]))) for org in app.org_ids()
    )
    with pytest.raises(APIRequestError, match="Set `org_ids`"):
        run_sync(TapOpenSpace, tap_config(server))


# --- fetching ahead -------------------------------------------------------------------------


def pages_sent_ahead(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs of the requests sent ahead from now on (accepted by `FetchAhead.submit`)."""
    sent: list[str] = []
    submit = FetchAhead.submit

    def recording_submit(ahead: FetchAhead, request: t.Any, *args: t.Any) -> bool:  # noqa: ANN401
        accepted = submit(ahead, request, *args)
        if accepted:
            sent.append(request.url)
        return accepted

    monkeypatch.setattr(FetchAhead, "submit", recording_submit)
    return sent


def requests_made(app: OpenSpaceEmulator) -> list[str]:
    return sorted(request.raw_path for request in app.requests)


def test_a_full_read_fetches_the_announced_pages_ahead_and_emits_what_a_sequential_read_does(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    sequential = run_sync(TapOpenSpace, tap_config(server, concurrent_requests=1))
    asked_sequentially = requests_made(app)
    app.reset_requests()
    sent_ahead = pages_sent_ahead(monkeypatch)
    ahead = run_sync(TapOpenSpace, tap_config(server, concurrent_requests=4))
    # Every message in the same order (records, their order, every STATE), and the same requests.
    assert without_clock_values(ahead.messages) == without_clock_values(sequential.messages)
    assert requests_made(app) == asked_sequentially
    video_pages = pages(app.record_count("360-videos"))
    assert len([url for url in sent_ahead if "360-videos" in url]) == video_pages - 1  # all but the first
    assert any("field-notes" in url for url in sent_ahead)  # full-table reports page ahead too


def test_an_incremental_read_fetches_no_page_ahead(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    videos_only = tap_config(server)
    first = run_sync(TapOpenSpace, videos_only)
    newest = dt.datetime.fromisoformat(video_bookmark(first.final_state))
    app.add_videos([newest + dt.timedelta(minutes=n) for n in range(1, 80)])
    app.reset_requests()
    sequential = run_sync(TapOpenSpace, tap_config(server, concurrent_requests=1), state=first.final_state)
    asked_sequentially = requests_made(app)
    app.reset_requests()
    sent_ahead = pages_sent_ahead(monkeypatch)
    ahead = run_sync(TapOpenSpace, tap_config(server, concurrent_requests=8), state=first.final_state)
    assert without_clock_values(ahead.messages) == without_clock_values(sequential.messages)
    assert requests_made(app) == asked_sequentially  # not one page more than the read needs
    assert app.request_count("360-videos$") == 80 // CAP + 1
    assert not [url for url in sent_ahead if "360-videos" in url]


def test_a_start_date_read_fetches_no_page_ahead(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    app = t.cast("OpenSpaceEmulator", server.app)
    captures = newest_first(app)
    start_date = captures[len(captures) // 3]["video_start"]
    sent_ahead = pages_sent_ahead(monkeypatch)
    run_sync(TapOpenSpace, tap_config(server, start_date=start_date))
    assert app.request_count("360-videos$") == len([r for r in captures if r["video_start"] >= start_date]) // CAP + 1
    assert not [url for url in sent_ahead if "360-videos" in url]


class _TooManyRequestsOnce(OpenSpaceEmulator):
    """Answers 429 with `Retry-After: 0.3` the first time page 5 of the 360 videos is asked."""

    refused = False

    def handle(self, request: Request) -> Response:
        if request.path.endswith("360-videos") and request.query.get("page") == ["5"] and not self.refused:
            self.refused = True
            return Response.json({"status": 429, "error": "Too Many Requests"}, 429, {"Retry-After": "0.3"})
        return super().handle(request)


def test_a_429_on_a_page_fetched_ahead_holds_every_worker_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _TooManyRequestsOnce(seed=11, videos=240, max_page_size=CAP)
    holds: list[float] = []
    hold = RequestGate.hold
    sent_ahead = pages_sent_ahead(monkeypatch)
    monkeypatch.setattr(RequestGate, "hold", lambda gate, seconds: (holds.append(seconds), hold(gate, seconds)))
    with EmulatorServer(app) as running:
        result = run_sync(TapOpenSpace, tap_config(running, concurrent_requests=4))
    assert app.refused
    assert any("page=5&" in url and "360-videos" in url for url in sent_ahead)  # page 5 went ahead
    assert any(0.3 <= seconds <= 0.34 for seconds in holds), holds  # the gate held every worker
    assert result.records["videos_360"] == newest_first_as_served(app)


def newest_first_as_served(app: OpenSpaceEmulator) -> list[dict[str, t.Any]]:
    """The captures in the order the emulator serves them newest first (its ties in its own order)."""
    with EmulatorServer(OpenSpaceEmulator(seed=11, videos=240, max_page_size=CAP, anchor=app.anchor)) as running:
        return run_sync(TapOpenSpace, tap_config(running, concurrent_requests=1)).records["videos_360"]


def test_transient_failures_are_retried_and_lose_nothing(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("backoff._sync.time.sleep", waits.append)
    app = t.cast("OpenSpaceEmulator", server.app)
    app.inject_many(
        [
            Fault(kind="status", status=429, retry_after="7", path_regex="360-videos$"),
            Fault(kind="drop", path_regex="360-videos$"),
            Fault(kind="malformed", path_regex="sites$"),
            Fault(kind="status", status=502, path_regex="field-notes$"),
        ]
    )
    result = run_sync(TapOpenSpace, tap_config(server))
    for report in EMITTED:
        assert_emitted_exactly(result, app, report)
    assert app.pending_faults == 0
    assert any(wait >= 7 for wait in waits)  # Retry-After honoured

"""tap-headspin against the HeadSpin emulator over real HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import typing as t
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from singer_sdk.testing import get_tap_test_class

from emulators.framework import EmulatorServer, Fault
from emulators.headspin import HeadSpinEmulator
from taps_common import fetch_ahead
from taps_common.errors import APIUnavailableError
from taps_common.fetch_ahead import FetchAhead
from taps_common.timestamps import parse_timestamp, utc_now
from tap_headspin.streams import GROUPING_STREAMS, LEGACY_STREAMS, LEGACY_METRICS
from tap_headspin.tap import GROUPINGS, TapHeadSpin
from tests.contract import assert_keys_declared_in_schemas, assert_primary_keys_unique_and_present
from tests.headspin.support import in_the_newest_bin
from tests.helpers import CapturingWriter, DyingWriter, Killed, run_sync, without_clock_values

if t.TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN = "test-api-token"
FAST_RETRIES = {"max_tries": 3, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}
V2 = {stream.name: stream for stream in GROUPING_STREAMS}
LEGACY = {stream.name: stream for stream in LEGACY_STREAMS}
EVENT_KEY = ("device_id", "hostname", "start_time")


def tap_config(server: EmulatorServer, **overrides: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    app = t.cast("HeadSpinEmulator", server.app)
    return {
        "api_url": server.url,
        "api_token": TOKEN,
        "start_date": app.span_start.date().isoformat(),
        **FAST_RETRIES,
        # One request at a time, so that a fault injected for the n-th request meets the
        # n-th window; fetching ahead is checked on its own (tests/common/test_fetch_ahead.py).
        "concurrent_requests": 1,
        **overrides,
    }


def report_params(config: dict[str, t.Any], **extra: str) -> dict[str, t.Any]:
    """The parameters the tap should have asked for, for the emulator's ground truth."""
    params = {
        "start_date": config["start_date"][:10],
        "bin_size": str(config.get("bin_size", "day")),
        "timezone": config.get("timezone", "UTC"),
        **extra,
    }
    if config.get("end_date"):
        params["end_date"] = config["end_date"][:10]
    for setting, parameter in (
        ("filter_team_names", "filter_team_name"),
        ("filter_device_addresses", "filter_device_address"),
    ):
        if config.get(setting):
            params[parameter] = config[setting]
    return params


def local(value: str, zone: ZoneInfo) -> str:
    return parse_timestamp(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def as_served(record: dict[str, t.Any], keys: tuple[str, ...], zone: ZoneInfo) -> dict[str, t.Any]:
    """A v2 record turned back into the row the emulator served (times back on the local clock)."""
    row = {
        "datetime": record["datetime"],
        "start_time": local(record["start_time"], zone),
        "end_time": local(record["end_time"], zone),
        "total_time": record["total_time"],
        "device_count": record["device_count"],
    }
    row.update({key: record[key] for key in keys})
    row["unit"] = record["unit"]
    return row


def served_event(row: dict[str, t.Any]) -> dict[str, t.Any]:
    """An emulator event as the tap should emit it (the emulator was asked in UTC)."""

    def utc(text: str) -> str:
        return text.replace(" ", "T") + ".000000+00:00"

    extras = {k: v for k, v in row.items() if k in ("session_id", "automated")}
    return {
        "user": row.get("user"),
        "email": row.get("email"),
        "team": row.get("team"),
        "device_id": row["device_id"],
        "hostname": row["hostname"],
        "device_address": f"{row['device_id']}@{row['hostname']}",
        "start_time": utc(row["start_time"]),
        "end_time": utc(row["end_time"]),
        "duration": row["duration"],
        "date": row["date"],
        "extra_fields": extras,
    }


def by_key(records: list[dict[str, t.Any]], key: tuple[str, ...] = EVENT_KEY) -> list[dict[str, t.Any]]:
    return sorted(records, key=lambda record: tuple(str(record.get(k)) for k in key))


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    options: dict[str, t.Any] = {"seed": 11, "sessions": 150, "span_days": 6}
    options.update(getattr(request, "param", {}))
    with EmulatorServer(HeadSpinEmulator(**options)) as running:
        yield running


# --- the SDK's standard suite, every stream selected (legacy ones through `groupings`) ----------

_SUITE_SERVER = EmulatorServer(HeadSpinEmulator(seed=5, sessions=80, span_days=4))
_SUITE_SERVER.start()
TestTapHeadSpinStandard = get_tap_test_class(
    tap_class=TapHeadSpin,
    config=tap_config(_SUITE_SERVER, groupings=list(GROUPINGS)),
)


@pytest.fixture(scope="module", autouse=True)
def _stop_suite_server() -> Iterator[None]:
    yield
    _SUITE_SERVER.stop()


# --- our own checks -----------------------------------------------------------------------------


def test_catalog_keys_exist_in_schemas(server: EmulatorServer) -> None:
    tap = TapHeadSpin(config=tap_config(server, groupings=list(GROUPINGS)))
    assert_keys_declared_in_schemas(tap)
    assert set(tap.streams) == {"usage_events", *V2, *LEGACY}


def test_legacy_groupings_are_not_selected_by_default_and_cost_no_request(server: EmulatorServer) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    tap = TapHeadSpin(config=tap_config(server))
    catalog = {entry["tap_stream_id"]: entry["metadata"] for entry in tap.catalog_dict["streams"]}
    for name in LEGACY:
        root = next(m["metadata"] for m in catalog[name] if not m["breadcrumb"])
        assert root["selected-by-default"] is False and root["selected"] is False
    result = run_sync(TapHeadSpin, tap_config(server))
    assert set(result.records) == {"usage_events", *V2}
    assert app.request_count(r"^/v1/") == 0


def test_groupings_restrict_the_streams_and_select_named_legacy_ones(server: EmulatorServer) -> None:
    tap = TapHeadSpin(config=tap_config(server, groupings=["device", "country"]))
    assert set(tap.streams) == {"usage_events", "usage_device", "usage_country"}
    assert tap.streams["usage_country"].selected


@pytest.mark.parametrize("server", [{"event_order": "time"}, {"event_order": "shuffled"}], indirect=True)
def test_full_sync_emits_exactly_the_emulator_reports_and_events(server: EmulatorServer) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    config = tap_config(server)
    result = run_sync(TapHeadSpin, config)
    zone = ZoneInfo("UTC")
    for name, stream in V2.items():
        records = result.records[name]
        assert_primary_keys_unique_and_present(records, stream.primary_keys, name)
        expected = app.report(stream.grouping, report_params(config))
        assert records, name
        assert sorted((as_served(r, stream.group_keys, zone) for r in records), key=repr) == sorted(
            expected, key=repr
        )
    events = result.records["usage_events"]
    assert_primary_keys_unique_and_present(events, EVENT_KEY, "usage_events")
    truth = app.events({"start_date": config["start_date"]})
    assert by_key(events) == by_key([served_event(row) for row in truth])
    assert len(events) == app.session_count()


def test_requests_one_per_grouping_one_per_event_window_and_one_per_legacy_metric(
    server: EmulatorServer,
) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    run_sync(TapHeadSpin, tap_config(server, events_window_days=2, groupings=list(GROUPINGS)))
    start = parse_timestamp(app.span_start.date().isoformat())
    windows = -(-(utc_now() - start) // dt.timedelta(days=2))
    assert app.request_count(r"^/v2/usage/event$") == windows
    for stream in GROUPING_STREAMS:
        assert app.request_count(f"^{stream.path}$") == 1
    for legacy in LEGACY_STREAMS:
        assert app.request_count(f"^{legacy.path}$") == len(LEGACY_METRICS)
    assert app.request_count() == windows + len(GROUPING_STREAMS) + len(LEGACY_STREAMS) * len(LEGACY_METRICS)


@pytest.mark.parametrize(
    "server", [{"anchor": "2024-11-05T00:00:00Z", "span_days": 4, "sessions": 400}], indirect=True
)
@pytest.mark.parametrize(
    ("bin_size", "zone_name"),
    [("hour", "America/Los_Angeles"), ("3600", "Asia/Kolkata"), ("week", "Australia/Lord_Howe")],
)
def test_bins_of_any_size_and_zone_match_the_emulator_across_a_dst_change(
    server: EmulatorServer, bin_size: str, zone_name: str
) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    config = tap_config(
        server,
        start_date="2024-11-01",
        end_date="2024-11-05",
        bin_size=bin_size,
        timezone=zone_name,
        groupings=["org", "device"],
    )
    result = run_sync(TapHeadSpin, config)
    zone = ZoneInfo(zone_name)
    for name in ("usage_org", "usage_device"):
        stream = V2[name]
        records = result.records[name]
        assert_primary_keys_unique_and_present(records, stream.primary_keys, name)  # the repeated hour too
        expected = app.report(stream.grouping, report_params(config))
        assert sorted((as_served(r, stream.group_keys, zone) for r in records), key=repr) == sorted(
            expected, key=repr
        )


@pytest.mark.parametrize("server", [{"end_inclusive": False}, {"end_inclusive": True}], indirect=True)
def test_either_reading_of_end_date_gives_the_same_day_bins_and_events(server: EmulatorServer) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    end = (app.anchor - dt.timedelta(days=2)).date().isoformat()
    config = tap_config(server, end_date=end, groupings=["org"])
    result = run_sync(TapHeadSpin, config)
    exclusive = HeadSpinEmulator(seed=11, sessions=150, span_days=6, anchor=app.anchor)
    assert [r["start_time"][:10] for r in result.records["usage_org"]] == [
        row["start_time"][:10] for row in exclusive.report("org", report_params(config))
    ]
    assert max(r["start_time"] for r in result.records["usage_events"]) < end
    expected = [
        served_event(row) for row in exclusive.events({"start_date": config["start_date"], "end_date": end})
    ]
    assert by_key(result.records["usage_events"]) == by_key(expected)


def test_filters_go_to_every_route(server: EmulatorServer) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    teams = [app.teams[0].name, app.teams[2].name]
    config = tap_config(server, groupings=["team", "device"], filter_team_names=teams)
    result = run_sync(TapHeadSpin, config)
    assert {r["team"] for r in result.records["usage_team"]} == set(teams)
    expected = app.report("device", report_params(config))
    assert len(result.records["usage_device"]) == len(expected) > 0
    unfiltered = app.report("device", report_params(tap_config(server)))
    assert sum(r["total_time"] for r in expected) < sum(r["total_time"] for r in unfiltered)
    assert {r["team"] for r in result.records["usage_events"] if r["team"]} <= set(teams)


class FilterIgnoringEmulator(HeadSpinEmulator):
    """A reading of the undocumented event route that ignores the filters."""

    def _v2_events(self, params: dict[str, list[str]]) -> list[dict[str, t.Any]]:
        return super()._v2_events({k: v for k, v in params.items() if not k.startswith("filter_")})


def test_events_are_filtered_even_when_the_event_route_ignores_filters() -> None:
    app = FilterIgnoringEmulator(seed=11, sessions=150, span_days=6)
    emails = [app.users[1].email]
    with EmulatorServer(app) as running:
        result = run_sync(TapHeadSpin, tap_config(running, groupings=["org"], filter_user_emails=emails))
    events = result.records["usage_events"]
    assert {r["email"] for r in events if r["email"]} == set(emails)
    assert len(events) < app.session_count()


@pytest.mark.parametrize("bin_size", ["day", "hour"])
def test_second_sync_rereads_only_the_newest_bin(server: EmulatorServer, bin_size: str) -> None:
    # With hour bins the second request (from the bookmark's day) also answers the day's older
    # bins, which the tap must leave out.
    app = t.cast("HeadSpinEmulator", server.app)
    config = tap_config(server, bin_size=bin_size, groupings=["org", "device", "team_devicemodel"])
    newest = max(session["start"] for session in app.sessions())
    app.add_session(newest - dt.timedelta(hours=1), 60, device=1)  # usage in the bin before the newest
    first = run_sync(TapHeadSpin, config)
    bookmarks = {
        name: state["replication_key_value"] for name, state in first.final_state["bookmarks"].items()
    }
    for name in ("usage_org", "usage_device", "usage_team_devicemodel"):
        assert bookmarks[name] == max(r["start_time"] for r in first.records[name])

    # New usage in the newest bin, which was still filling.
    start, device = in_the_newest_bin(app)
    arrived = app.add_session(start, 120, device=device, user=3)
    app.reset_requests()
    second = run_sync(TapHeadSpin, config, state=first.final_state)

    for name in ("usage_org", "usage_device", "usage_team_devicemodel"):
        assert {r["start_time"] for r in second.records[name]} == {bookmarks[name]}, name
    refreshed = app.report("org", report_params(config))[-1]
    (org,) = second.records["usage_org"]
    assert org["total_time"] == refreshed["total_time"] > first.records["usage_org"][-1]["total_time"]
    newest_devices = {
        r["device_address"]
        for r in first.records["usage_device"]
        if r["start_time"] == bookmarks["usage_device"]
    }
    assert {r["device_address"] for r in second.records["usage_device"]} == newest_devices | {
        arrived["device_address"]
    }
    events = second.records["usage_events"]
    assert {r["start_time"] for r in events} == {
        bookmarks["usage_events"],
        arrived["start"].isoformat(timespec="microseconds"),
    }
    assert app.request_count() == 1 + 2 + len(
        LEGACY_METRICS
    )  # one event window, two v2 reports, six v1 metrics


@pytest.mark.parametrize("server", [{"event_order": "shuffled", "sessions": 300}], indirect=True)
def test_interrupted_event_sync_resumes_at_the_window_it_was_in(server: EmulatorServer) -> None:
    # Events come in no promised order: a bookmark moved per event would skip some on resuming.
    app = t.cast("HeadSpinEmulator", server.app)
    config = tap_config(server, events_window_days=1, max_tries=1, groupings=["org"])
    app.inject_many(
        [Fault(kind="slow", delay=0.0, path_regex=r"^/v2/usage/event") for _ in range(3)]
        + [Fault(kind="status", status=503, path_regex=r"^/v2/usage/event")]
    )
    writer = CapturingWriter()
    with pytest.raises(APIUnavailableError):
        TapHeadSpin(config=config, message_writer=writer).sync_all()
    crashed = [
        m["record"] for m in writer.messages if m["type"] == "RECORD" and m["stream"] == "usage_events"
    ]
    states = [m["value"] for m in writer.messages if m["type"] == "STATE"]
    assert crashed and "usage_events" in states[-1]["bookmarks"]

    resumed = run_sync(TapHeadSpin, config, state=states[-1])

    keys = lambda records: Counter(tuple(r[k] for k in EVENT_KEY) for r in records)  # noqa: E731
    assert set(keys(crashed)) | set(keys(resumed.records["usage_events"])) == set(
        keys(served_event(e) for e in app.events({"start_date": config["start_date"]}))
    )
    read_twice = keys(crashed) & keys(resumed.records["usage_events"])
    assert sum(read_twice.values()) <= 1  # only the event at the bookmark's second






@pytest.mark.parametrize("server", [{"event_order": "shuffled", "sessions": 300}], indirect=True)
def test_a_sync_killed_in_the_middle_of_a_window_loses_no_event(server: EmulatorServer) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    config = tap_config(server, events_window_days=2, groupings=["org"])
    truth = {
        tuple(served_event(e)[k] for k in EVENT_KEY) for e in app.events({"start_date": config["start_date"]})
    }
    writer = DyingWriter(records=len(truth) // 2)  # events come first: usage_events < usage_org
    with pytest.raises(Killed):
        TapHeadSpin(config=config, message_writer=writer).sync_all()
    written = [m["record"] for m in writer.messages if m["type"] == "RECORD"]
    state = [m["value"] for m in writer.messages if m["type"] == "STATE"][-1]

    resumed = run_sync(TapHeadSpin, config, state=state)

    keys = {tuple(r[k] for k in EVENT_KEY) for r in written + resumed.records["usage_events"]}
    assert keys == truth


# --- fetching ahead -----------------------------------------------------------------------------


def event_windows_sent_ahead(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs of the event requests sent ahead from now on."""
    sent: list[str] = []
    submit = FetchAhead.submit

    def recording_submit(ahead: FetchAhead, request: t.Any, *args: t.Any) -> bool:  # noqa: ANN401
        accepted = submit(ahead, request, *args)
        if accepted and "/v2/usage/event" in request.url:
            sent.append(request.url)
        return accepted

    monkeypatch.setattr(FetchAhead, "submit", recording_submit)
    return sent


def test_event_windows_fetched_ahead_give_what_a_sequential_sync_gives(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = t.cast("HeadSpinEmulator", server.app)
    config = tap_config(server, events_window_days=1, groupings=["org"])
    sequential = run_sync(TapHeadSpin, config)
    asked = sorted(request.raw_path for request in app.requests)
    app.reset_requests()
    sent_ahead = event_windows_sent_ahead(monkeypatch)
    ahead = run_sync(TapHeadSpin, {**config, "concurrent_requests": 4})
    assert without_clock_values(ahead.messages) == without_clock_values(sequential.messages)
    assert sorted(request.raw_path for request in app.requests) == asked
    assert len(sent_ahead) >= 4  # six one-day windows: all but the first ones went ahead


def test_event_windows_too_big_once_decoded_are_read_in_their_turn(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A month of events is several MiB, which decoded takes about four times as much: such windows
    # are not held ahead. Here the budget is shrunk below one small window, decoded.
    app = t.cast("HeadSpinEmulator", server.app)
    config = tap_config(server, events_window_days=1, groupings=["org"])
    sequential = run_sync(TapHeadSpin, config)
    windows = app.request_count("^/v2/usage/event")
    app.reset_requests()
    monkeypatch.setattr(fetch_ahead, "HELD_BYTES", 4 * 1000)
    sent_ahead = event_windows_sent_ahead(monkeypatch)
    ahead = run_sync(TapHeadSpin, {**config, "concurrent_requests": 4})
    assert without_clock_values(ahead.messages) == without_clock_values(sequential.messages)
    assert len(sent_ahead) <= 1  # only before the size of an events window is known
    assert app.request_count("^/v2/usage/event") == windows > 4  # one per window, none more

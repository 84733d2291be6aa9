"""What is benchmarked per tap: its largest stream, data sets of any size, and the fewest requests.

Each vendor is one `VendorSpec`: the stream, how to reach the emulator, a data set of about N records
(`volume`), a data set of many small partitions or pages for the latency scenario (`fan_out`), and
the least number of requests the API allows for a full and an incremental sync (`least`), computed
from the data as the emulator serves it (the reference's records, checked equal to the tap's) and
from the API's paging rules, never from the tap.

Data sets grow along time, as an account's history does: more days of the same devices, slices or
captures. Settings are written out even where they equal the tap's default, so that the request
budget is computed from the same numbers the tap uses.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.reference import instant, utc_text, windows

ANCHOR = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
"""Every data set ends here, so that runs are repeatable and no sync reads up to "now"."""
DAY = dt.timedelta(days=1)

Rows = Sequence[tuple[Any, ...]]


@dataclass(frozen=True)
class Scenario:
    """One emulator data set (constructor options) and the tap settings that read it (no `api_url`)."""

    options: Mapping[str, Any]
    config: Mapping[str, Any]


@dataclass(frozen=True)
class VendorSpec:
    """How one tap is benchmarked."""

    vendor: str
    #: The stream synced (the tap's largest), alone in the catalog.
    stream: str
    #: Appended to the emulator's URL to make `api_url`.
    api_path: str
    credentials: Mapping[str, Any]
    #: The field that names a state partition, within which record order must not change; None: one.
    partition: str | None
    #: Fields of each record that `least` reads, in that order.
    truth_fields: tuple[str, ...]
    #: A data set of about N records of the stream.
    volume: Callable[[int], Scenario]
    #: A data set spread over about N partitions, windows or pages of a few records each.
    fan_out: Callable[[int], Scenario]
    #: (full, incremental) fewest requests, from the scenario and the records' `truth_fields`.
    least: Callable[[Scenario, Rows], tuple[int, int]]
    #: How `least` counts, for the docs.
    least_rule: str
    #: What the scenarios are, for the docs.
    data: str


def pages(count: int, size: int) -> int:
    """Requests to read `count` records `size` at a time; an empty answer still costs one."""
    return max(1, math.ceil(count / size))


def count_between(stamps: Sequence[str], low: str, high: str) -> int:
    """How many of the sorted timestamp texts lie in [low, high)."""
    return bisect_left(stamps, high) - bisect_left(stamps, low)


def span(config: Mapping[str, Any], window_setting: str) -> tuple[dt.datetime, dt.datetime, dt.timedelta]:
    """A scenario's start, end and window size."""
    size = dt.timedelta(days=float(config[window_setting]))
    return instant(config["start_date"]), instant(config["end_date"]), size


# --- Unleash: one listing, then pages of each device's windows ------------------------------------

UNLEASH_RECORDS_PER_SESSION = 227  # 80 frames, each with a few of its model's classes


def unleash_scenario(devices: int, sessions: int, frames: int, span_days: int) -> Scenario:
    """Unleash data ending at ANCHOR, read from a day before it starts to a day after."""
    options = {
        "devices": devices,
        "sessions_per_device": sessions,
        "frames_per_session": frames,
        "span_days": span_days,
        "anchor": ANCHOR.isoformat(),
        "page_size": 500,
    }
    config = {
        "start_date": utc_text(ANCHOR - (span_days + 1) * DAY),
        "end_date": utc_text(ANCHOR + DAY),
        "window_days": 30,
    }
    return Scenario(options, config)


def unleash_volume(records: int) -> Scenario:
    """Ten devices, two sessions a device a day."""
    sessions = max(1, round(records / (10 * UNLEASH_RECORDS_PER_SESSION)))
    return unleash_scenario(10, sessions, 80, max(1, sessions // 2))


def unleash_fan_out(partitions: int) -> Scenario:
    """Many devices with one small page each."""
    return unleash_scenario(partitions, 1, 20, 5)


def unleash_least(scenario: Scenario, rows: Rows) -> tuple[int, int]:
    """The devices listing, plus every window of every device: its records' pages, at least one."""
    start, end, size = span(scenario.config, "window_days")
    page_size = scenario.options["page_size"]
    stamps_of: dict[str, list[str]] = defaultdict(list)
    for device, stamp in rows:
        stamps_of[device].append(stamp)

    def cost(stamps: list[str], since: dt.datetime) -> int:
        return sum(
            pages(count_between(stamps, utc_text(low), utc_text(high)), page_size)
            for low, high in windows(since, end, size)
        )

    empty_devices = (scenario.options["devices"] - len(stamps_of)) * cost([], start)
    full = incremental = 1 + empty_devices
    for stamps in stamps_of.values():
        stamps.sort()
        full += cost(stamps, start)
        incremental += cost(stamps, instant(stamps[-1]))  # the bookmark is the newest timestamp
    return full, incremental


# --- HeadSpin: one request per events window (the route does not page) ----------------------------


def headspin_scenario(sessions: int, span_days: int, window_days: int, devices: int) -> Scenario:
    """HeadSpin usage ending at ANCHOR (midnight), read by whole days."""
    options = {
        "sessions": sessions,
        "span_days": span_days,
        "devices": devices,
        "users": 20,
        "teams": 5,
        "anchor": ANCHOR.isoformat(),
    }
    config = {
        "start_date": (ANCHOR - span_days * DAY).date().isoformat(),
        "end_date": ANCHOR.date().isoformat(),
        "events_window_days": window_days,
    }
    return Scenario(options, config)


def headspin_volume(records: int) -> Scenario:
    """Fifty devices, a thousand sessions a day."""
    return headspin_scenario(records, max(1, math.ceil(records / 1000)), 30, 50)


def headspin_fan_out(partitions: int) -> Scenario:
    """Many one-day windows of a few sessions each."""
    return headspin_scenario(5 * partitions, partitions, 1, 10)


def headspin_least(scenario: Scenario, rows: Rows) -> tuple[int, int]:
    """One request per window of `events_window_days`; the incremental starts at the newest event."""
    start, end, size = span(scenario.config, "events_window_days")
    full = len(list(windows(start, end, size)))
    if not rows:
        return full, full
    newest = instant(max(started for (started,) in rows))
    return full, len(list(windows(newest, end, size)))


# --- Seemetrix: pages of devices in each window of the v2 tree ------------------------------------

SEEMETRIX_LEAVES = 15  # 3 genders x 5 age groups for each device and day


def seemetrix_scenario(devices: int, days: int, per_day: int, per_page: int) -> Scenario:
    """Seemetrix sessions over whole days ending at ANCHOR."""
    options = {"devices": devices, "days": days, "sessions_per_day": per_day, "anchor": ANCHOR.isoformat()}
    config = {
        "start_date": utc_text(ANCHOR - days * DAY),
        "end_date": utc_text(ANCHOR),
        "window_days": 30,
        "tree_devices_per_page": per_page,
    }
    return Scenario(options, config)


def seemetrix_volume(records: int) -> Scenario:
    """Fifty devices, eight sessions a device a day (a day without one has no rows)."""
    return seemetrix_scenario(50, max(1, math.ceil(records / (SEEMETRIX_LEAVES * 50))), 8, 10)


def seemetrix_fan_out(partitions: int) -> Scenario:
    """Many devices, one device a page."""
    return seemetrix_scenario(partitions, 2, 3, 1)


def seemetrix_least(scenario: Scenario, rows: Rows) -> tuple[int, int]:
    """For every window of `window_days`: pages of `tree_devices_per_page` devices with data in it."""
    start, end, size = span(scenario.config, "window_days")
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    per_page = scenario.config["tree_devices_per_page"]
    devices_of: dict[str, set[Any]] = defaultdict(set)
    for device, period_start in rows:
        devices_of[period_start].add(device)
    days = sorted(devices_of)

    def cost(since: dt.datetime) -> int:
        total = 0
        for low, high in windows(since, end, size):
            inside = days[bisect_left(days, utc_text(low)) : bisect_left(days, utc_text(high))]
            total += pages(len(set().union(*(devices_of[day] for day in inside))), per_page)
        return total

    return cost(start), cost(instant(days[-1]) if days else start)


# --- OpenSpace: pages of the newest-first report --------------------------------------------------


def openspace_scenario(videos: int, span_days: int, page_size: int) -> Scenario:
    """OpenSpace captures ending at ANCHOR; the server caps `size` at 500."""
    options = {"videos": videos, "span_days": span_days, "max_page_size": 500, "anchor": ANCHOR.isoformat()}
    return Scenario(options, {"page_size": page_size})


def openspace_volume(records: int) -> Scenario:
    """Two thousand captures a day."""
    return openspace_scenario(records, max(1, math.ceil(records / 2000)), 1000)


def openspace_fan_out(partitions: int) -> Scenario:
    """Many pages of ten captures."""
    return openspace_scenario(10 * partitions, 30, 10)


def openspace_least(scenario: Scenario, rows: Rows) -> tuple[int, int]:
    """Every page of the served size; the incremental reads until it sees one capture older than the newest."""
    size = min(scenario.config["page_size"], scenario.options["max_page_size"])
    full = pages(len(rows), size)
    if not rows:
        return full, full
    newest = max(started for (started,) in rows)
    ties = sum(1 for (started,) in rows if started == newest)
    return full, min(full, ties // size + 1)


# --- WMSPanel: one listing, then one call per data slice for the whole range ----------------------

WMSPANEL_ROWS_PER_SLICE_DAY = 23.8  # 40 players, 70 % used on the 85 % of days with data


def wmspanel_scenario(slices: int, days: int, players: int) -> Scenario:
    """WMSPanel statistics for the `days` days up to ANCHOR's eve, read with both ends included."""
    last = (ANCHOR - DAY).date()
    options = {"data_slices": slices, "days": days, "players": players, "anchor": last.isoformat()}
    config = {"start_date": (last - (days - 1) * DAY).isoformat(), "end_date": last.isoformat()}
    return Scenario(options, config)


def wmspanel_volume(records: int) -> Scenario:
    """Ten data slices, forty players."""
    return wmspanel_scenario(10, max(1, math.ceil(records / (10 * WMSPANEL_ROWS_PER_SLICE_DAY))), 40)


def wmspanel_fan_out(partitions: int) -> Scenario:
    """Many data slices of a few days each."""
    return wmspanel_scenario(partitions, 5, 5)


def wmspanel_least(scenario: Scenario, rows: Rows) -> tuple[int, int]:  # noqa: ARG001
    """The slices listing plus one call per slice: the quota makes every call count, so no paging by day."""
    calls = 1 + scenario.options["data_slices"]
    return calls, calls


SPECS: dict[str, VendorSpec] = {
    spec.vendor: spec
    for spec in (
        VendorSpec(
            vendor="unleash",
            stream="analytics",
            api_path="/v1",
            credentials={"access_token": "ul_pat_test-token"},
            partition="device_id",
            truth_fields=("device_id", "timestamp"),
            volume=unleash_volume,
            fan_out=unleash_fan_out,
            least=unleash_least,
            least_rule=(
                "1 device listing + for each device and window of `window_days` (30), "
                "ceil(records in the window / page size 500), at least 1; incremental windows start at "
                "each device's newest timestamp"
            ),
            data="10 devices, 2 sessions a device a day; latency: N devices of one page each",
        ),
        VendorSpec(
            vendor="headspin",
            stream="usage_events",
            api_path="",
            credentials={"api_token": "test-api-token"},
            partition=None,
            truth_fields=("start_time",),
            volume=headspin_volume,
            fan_out=headspin_fan_out,
            least=headspin_least,
            least_rule=(
                "1 request per window of `events_window_days` (30) from `start_date` to `end_date` (the "
                "route does not page); incremental windows start at the newest event"
            ),
            data="50 devices, 1,000 sessions a day; latency: N one-day windows",
        ),
        VendorSpec(
            vendor="seemetrix",
            stream="demographic_statistics",
            api_path="/api",
            credentials={"user_id": 632, "user_key": "test-user-key"},
            partition=None,
            truth_fields=("device_id", "period_start"),
            volume=seemetrix_volume,
            fan_out=seemetrix_fan_out,
            least=seemetrix_least,
            least_rule=(
                "for each window of `window_days` (30), ceil(devices with data in it / "
                "`tree_devices_per_page` 10), at least 1; incremental windows start at the newest day"
            ),
            data="50 devices, 8 sessions a device a day, 15 rows a device-day; latency: N devices, one a page",
        ),
        VendorSpec(
            vendor="openspace",
            stream="videos_360",
            api_path="",
            credentials={"api_key": "test-openspace-key"},
            partition=None,
            truth_fields=("video_start",),
            volume=openspace_volume,
            fan_out=openspace_fan_out,
            least=openspace_least,
            least_rule=(
                "ceil(captures / 500), the page size the server allows (the tap asks 1,000); "
                "incremental: the pages down to the first capture older than the newest"
            ),
            data="2,000 captures a day; latency: N pages of 10 captures",
        ),
        VendorSpec(
            vendor="wmspanel",
            stream="players_stats",
            api_path="/v1",
            credentials={"client_id": "test-client-id", "api_key": "test-api-key"},
            partition="data_slice_id",
            truth_fields=(),
            volume=wmspanel_volume,
            fan_out=wmspanel_fan_out,
            least=wmspanel_least,
            least_rule="1 data-slice listing + 1 call per slice for the whole range, full and incremental",
            data="10 data slices, 40 players; latency: N data slices",
        ),
    )
}

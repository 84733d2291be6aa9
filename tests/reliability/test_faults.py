"""Every fault against every tap: transient ones must lose nothing, lasting ones stop clearly.

Faults hit the tap's main data route after a few of its requests went through, so records (and
bookmarks) are already out when the fault comes: a recovery must not duplicate them, and a stop
must not leave a bookmark past them. Also here: the failures only one vendor has, and schema drift.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import typing as t
from dataclasses import dataclass, field

import pytest

from emulators.framework import Fault
from tests.reliability.report import REPORT
from tests.reliability.support import (
    Expectation,
    WaitRecorder,
    clean_records,
    emulator,
    judge,
    passes,
    run_in_process,
    without_drift_field,
)
from tests.reliability.taps import CASES, DRIFT_VALUE, FAST, TAP_NAMES, TapCase, VendorScenario

if t.TYPE_CHECKING:
    from collections.abc import Callable

TRIES = FAST["max_tries"]
#: Requests in flight by default (fetching ahead), as the taps declare it.
IN_FLIGHT = CASES[0].tap_class.config_jsonschema["properties"]["concurrent_requests"]["default"]
BASE = FAST["backoff_base_seconds"]
CAP = FAST["retry_after_max_seconds"]


def http_date_in(seconds: float) -> str:
    """An HTTP date `seconds` from now (whole seconds, as the header has them)."""
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    return email.utils.format_datetime(moment, usegmt=True)


def waited(asked: float, low: float, high: float) -> Callable[[list[float]], str]:
    """A check that backoff waited once, between `low` and `high` seconds (jitter adds up to 10 %)."""

    def check(waits: list[float]) -> str:
        assert len(waits) == 1, f"expected one wait of about {asked} s, got {waits}"
        assert low <= waits[0] <= high, f"waited {waits[0]:.2f} s, expected {low}-{high} s"
        return f"waited {asked:g} s" if asked <= CAP else f"waited the {CAP} s cap"

    return check


def backed_off(count: int) -> Callable[[list[float]], str]:
    """A check that backoff waited `count` times, each within the backoff settings.

    Each wait doubles from the base when one request fails again and again; failures of several
    requests (fetched ahead) each start from the base.
    """

    def check(waits: list[float]) -> str:
        assert len(waits) == count, f"expected {count} waits, got {waits}"
        top = FAST["backoff_max_seconds"] * 1.1 + 1e-9
        assert all(BASE <= wait <= top for wait in waits), f"waits {waits} outside {BASE}-{top} s"
        return f"{count} {'retry' if count == 1 else 'retries'}"

    return check


@dataclass(frozen=True)
class FaultScenario:
    """Faults on the data route (after `case.skip` requests went through) and what must follow."""

    name: str
    faults: Callable[[str], list[Fault]]
    expect: str
    says: str = ""
    settings: dict[str, t.Any] = field(default_factory=dict)
    waits: Callable[[list[float]], str] | None = None


SCENARIOS = (
    FaultScenario("no fault (the clean run)", lambda path: [], "same", waits=backed_off(0)),
    FaultScenario(
        "429 with Retry-After: 7 (seconds)",
        lambda path: [Fault(kind="status", status=429, retry_after="7", path_regex=path)],
        "same",
        waits=waited(7, 7, 7.7),
    ),
    FaultScenario(
        "429 with Retry-After as an HTTP date 20 s ahead",
        lambda path: [Fault(kind="status", status=429, retry_after=http_date_in(20), path_regex=path)],
        "same",
        waits=waited(20, 18, 22),
    ),
    FaultScenario(
        "429 with Retry-After: 3600, over the 30 s cap",
        lambda path: [Fault(kind="status", status=429, retry_after="3600", path_regex=path)],
        "same",
        waits=waited(3600, CAP, CAP * 1.1),
    ),
    FaultScenario(
        "503 with Retry-After: 5",
        lambda path: [Fault(kind="status", status=503, retry_after="5", path_regex=path)],
        "same",
        waits=waited(5, 5, 5.5),
    ),
    FaultScenario(
        "burst of 500, 502, 503, then back",
        lambda path: [Fault(kind="status", status=code, path_regex=path) for code in (500, 502, 503)],
        "same",
        waits=backed_off(3),
    ),
    FaultScenario(
        "503 twice on the sync's first request, then back",
        lambda path: [Fault(kind="status", status=503, path_regex="", times=2)],
        "same",
        waits=backed_off(2),
    ),
    FaultScenario(
        "502 until the tries run out",
        lambda path: [Fault(kind="status", status=502, path_regex=path, times=TRIES + 6)],
        "error",
        says=f"gave up after {TRIES} tries",
        waits=backed_off(TRIES - 1),
    ),
    FaultScenario(
        "connection dropped mid-body",
        lambda path: [Fault(kind="drop", path_regex=path)],
        "same",
        waits=backed_off(1),
    ),
    FaultScenario(
        "read timeout (answer after 1.2 s, request_timeout 0.4 s)",
        lambda path: [Fault(kind="slow", delay=1.2, path_regex=path)],
        "same",
        settings={"request_timeout": 0.4},
        waits=backed_off(1),
    ),
    FaultScenario(
        "read timeouts until the tries run out",
        lambda path: [Fault(kind="slow", delay=0.9, path_regex=path, times=TRIES + 6)],
        "error",
        says="no answer within request_timeout",
        settings={"request_timeout": 0.3},
        waits=backed_off(TRIES - 1),
    ),
    FaultScenario(
        "truncated JSON body (200, half the body)",
        lambda path: [Fault(kind="malformed", path_regex=path)],
        "same",
        waits=backed_off(1),
    ),
    FaultScenario(
        "200 with an HTML error page instead of JSON, then back",
        lambda path: [
            Fault(
                kind="status",
                status=200,
                body="<html><body><h1>Gateway error</h1></body></html>",
                content_type="text/html",
                path_regex=path,
            )
        ],
        "same",
        waits=backed_off(1),
    ),
    FaultScenario(
        "malformed JSON until the tries run out",
        lambda path: [Fault(kind="malformed", path_regex=path, times=TRIES + 6)],
        "error",
        says="not valid JSON",
        waits=backed_off(TRIES - 1),
    ),
    FaultScenario(
        "empty body with 200",
        lambda path: [Fault(kind="empty", path_regex=path)],
        "same",
        waits=backed_off(1),
    ),
)

REPORT.declare(
    "faults",
    "Faults on the data route",
    f"""
Each fault hits the tap's main data route (Unleash analytics pages, HeadSpin event windows,
Seemetrix raw-session windows, OpenSpace 360-video pages, WMSPanel players_stats calls) after
the first requests of that route went through, so records and bookmarks are already out (one
scenario hits the very first request of the sync instead). A fault "then back" is met once and
the next try succeeds; one "until the tries run out" lasts longer than `max_tries` ({TRIES}).
Fetching ahead is on (`concurrent_requests` {IN_FLIGHT}, the default), so a fault may land on a
request sent ahead. The waits are those backoff asked for.
""",
    [scenario.name for scenario in SCENARIOS],
    TAP_NAMES,
)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_fault(case: TapCase, scenario: FaultScenario, sleeps: WaitRecorder) -> None:
    faults = scenario.faults(case.data_path)
    with emulator(case, [*passes(case.data_path, case.skip), *faults]) as server:
        config = case.config(server.url, **scenario.settings)
        run = run_in_process(case, config)
        assert server.app.pending_faults == 0 or scenario.expect == "error", "a fault was never met"
    outcome = judge(case, run, config, Expectation(scenario.expect, scenario.says))
    if scenario.waits is not None:
        detail = scenario.waits(sleeps.waits)
        if detail and scenario.expect == "same" and sleeps.waits:
            outcome += f"; {detail}"
    REPORT.fill("faults", scenario.name, case.name, outcome)


# --- failures only one vendor has --------------------------------------------------------------

VENDOR = [(case, scenario) for case in CASES for scenario in case.vendor_scenarios]
REPORT.declare(
    "vendor",
    "Vendor-specific failures",
    """
Each vendor's own ways to fail, from its documentation and error bodies, met mid-sync (after the
first requests of the route went through). A refused credential stops the sync after that one
request (no retry: it cannot help).
""",
    [f"{case.name}: {scenario.name}" for case, scenario in VENDOR],
    ["outcome"],
)


@pytest.mark.parametrize(("case", "scenario"), VENDOR, ids=[f"{c.name}: {s.name}" for c, s in VENDOR])
def test_vendor_failure(case: TapCase, scenario: VendorScenario, sleeps: WaitRecorder) -> None:
    faults = scenario.faults(case)
    route = faults[0].path_regex
    with emulator(case, [*passes(route, case.skip), *faults]) as server:
        config = case.config(server.url)
        run = run_in_process(case, config)
    outcome = judge(case, run, config, Expectation(scenario.expect, scenario.says))
    if scenario.tries == 1:
        assert not sleeps.waits, f"the refused request was retried (waits {sleeps.waits})"
    if scenario.expect == "same":
        outcome += f"; {backed_off(len(sleeps.waits))(sleeps.waits)}"
    REPORT.fill("vendor", f"{case.name}: {scenario.name}", "outcome", outcome)


# --- schema drift ------------------------------------------------------------------------------

DRIFTS = {
    "unknown": "an unknown field added to every row",
    "missing": "a documented field missing from every row",
    "null": "a documented field null in every row",
    "number_as_string": "a number sent as a string",
    "key_null": "the replication or primary key field null",
}
REPORT.declare(
    "drift",
    "Schema drift",
    """
Every answer of one route is changed (Unleash analytics, HeadSpin events, Seemetrix raw sessions,
OpenSpace 360 videos, WMSPanel daily_stats): a field added, a documented field left out or null,
a number sent as a JSON string, the field a record is keyed or bookmarked on null. Each cell names
the field (as the API names it, then the record's column). A run that exits 0 must have emitted
the clean run's records, the changed column null where the field was missing or null.
""",
    list(DRIFTS.values()),
    TAP_NAMES,
)


def drift_expectation(case: TapCase, kind: str) -> tuple[Expectation, str]:
    """What a drift must end in, and the field it concerns, for the report."""
    drift = case.drift
    clean = clean_records(case)
    if kind == "unknown":
        return Expectation("either", normalise=without_drift_field), ""
    if kind == "number_as_string":
        return Expectation("either"), f"`{drift.number[0]}` as text"
    field_name, column = drift.key if kind == "key_null" else drift.documented
    nulled = {  # a null field is an absent one, as `by_key` reads records
        key: ({k: v for k, v in record.items() if k != column} if key[0] == drift.stream else record)
        for key, record in clean.items()
    }
    label = f"`{field_name}`" + (f" (`{column}`)" if column != field_name else "")
    if kind == "key_null" and not case.key_null_allowed:
        return Expectation("error", records=nulled), label
    return Expectation("either", records=nulled), label


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("kind", DRIFTS)
def test_schema_drift(case: TapCase, kind: str, sleeps: WaitRecorder) -> None:
    fault = Fault(kind="transform", transform=case.drift.transform(kind), path_regex=case.drift.path, times=10_000)
    expectation, label = drift_expectation(case, kind)
    with emulator(case, [fault]) as server:
        config = case.config(server.url)
        run = run_in_process(case, config)
    outcome = judge(case, run, config, expectation)
    if run.failure is None:
        if kind == "unknown":
            kept = any(DRIFT_VALUE in str(record) for _, record in run.records)
            outcome += "; the field kept with the row's extra fields" if kept else "; the field dropped"
        elif kind in ("missing", "null", "key_null"):
            outcome += f", {label} null"
        else:
            outcome += f", {label} read as a number"
    elif label:
        outcome = f"{label}: {outcome}"
    REPORT.fill("drift", DRIFTS[kind], case.name, outcome)

"""The one table the reliability suite is parametrised over: how to run each tap against its emulator.

Each `TapCase` says how to build a small, fixed emulator (anchored in the past, so every run
sees the same data), the settings that point the tap at it (tiny backoff, an `end_date`, so a
run is fast and repeatable), which request route the faults hit, how that route's bodies drift,
and the tap's own failure modes. Secrets use characters that URL encoding changes, so every
encoded form is searched for too.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, field

from emulators.framework import Fault
from emulators.headspin import HeadSpinEmulator
from emulators.openspace import OpenSpaceEmulator
from emulators.seemetrix import SeemetrixEmulator
from emulators.unleash import UnleashEmulator
from emulators.wmspanel import WMSPanelEmulator
from tap_headspin.tap import TapHeadSpin
from tap_openspace.tap import TapOpenSpace
from tap_seemetrix.tap import TapSeemetrix
from tap_unleash.tap import TapUnleash
from tap_wmspanel.tap import TapWMSPanel

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from emulators.framework import EmulatorApp
    from taps_common.tap import BaseUsageTap

#: The settings every run shares: retries that never really wait (sleep is patched too).
FAST = {
    "max_tries": 4,
    "backoff_base_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "retry_after_max_seconds": 30,
    "request_timeout": 5,
}
#: The name of the field schema-drift scenarios add to every object.
DRIFT_FIELD = "reliability_drift_field"
DRIFT_VALUE = "added by the drift scenario"


# --- schema drift: how one route's rows change ------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """How the rows of one route are reached, and which of their fields the drift scenarios change.

    `rows` returns the row objects of a body (lists the transform may change in place). Each
    field is given as (name in the body, column in the stream's records).
    """

    path: str
    stream: str
    rows: Callable[[t.Any], list[dict[str, t.Any]]]
    documented: tuple[str, str]
    number: tuple[str, str]
    key: tuple[str, str]

    def transform(self, kind: str) -> Callable[[t.Any], t.Any]:
        """The body transform of one drift scenario."""

        def change(body: t.Any) -> t.Any:  # noqa: ANN401
            for row in self.rows(body):
                if kind == "unknown":
                    row[DRIFT_FIELD] = DRIFT_VALUE
                elif kind == "missing":
                    row.pop(self.documented[0], None)
                elif kind == "null":
                    row[self.documented[0]] = None
                elif kind == "number_as_string" and isinstance(row.get(self.number[0]), (int, float)):
                    row[self.number[0]] = str(row[self.number[0]])
                elif kind == "key_null":
                    row[self.key[0]] = None
            return body

        return change


@dataclass(frozen=True)
class KeyedRowsDrift(Drift):
    """Drift of a size-optimized body: a `keys` list and rows of values in that order (Unleash)."""

    def transform(self, kind: str) -> Callable[[t.Any], t.Any]:  # noqa: D102
        def change(body: t.Any) -> t.Any:  # noqa: ANN401
            keys: list[str] = body.get("keys") or []
            rows: list[list[t.Any]] = body.get("data") or []
            if kind == "unknown":
                keys.append(DRIFT_FIELD)
                for row in rows:
                    row.append(DRIFT_VALUE)
            elif kind == "missing":
                index = keys.index(self.documented[0])
                keys.pop(index)
                for row in rows:
                    row.pop(index)
            else:
                name = {"null": self.documented[0], "number_as_string": self.number[0], "key_null": self.key[0]}[kind]
                index = keys.index(name)
                for row in rows:
                    row[index] = str(row[index]) if kind == "number_as_string" else None
            return body

        return change


# --- one tap -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VendorScenario:
    """A failure only this vendor has: faults on a route, and what the tap must do.

    `expect` is "same" (the sync recovers: exactly the clean run's records) or "error" (a clear
    message holding `says`); `tries` is how many requests the failing route may get.
    """

    name: str
    faults: Callable[[TapCase], list[Fault]]
    expect: str
    says: str = ""
    tries: int | None = None


@dataclass(frozen=True)
class BadSetting:
    """One bad configuration: settings to change (None removes one) and the setting the message must name."""

    name: str
    changes: dict[str, t.Any]
    names: str


@dataclass(frozen=True)
class TapCase:
    """How the suite runs one tap."""

    name: str
    tap_class: type[BaseUsageTap]
    executable: str
    make_app: Callable[[], EmulatorApp]
    settings: Callable[[str], dict[str, t.Any]]
    #: The route faults hit, and how many of its requests pass first (so records are out already).
    data_path: str
    skip: int
    drift: Drift
    vendor_scenarios: tuple[VendorScenario, ...] = ()
    #: Secrets the schema does not mark secret but the tap masks all the same.
    extra_secrets: tuple[str, ...] = ()
    #: Record fields that differ between two runs by design (a snapshot's time).
    volatile: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: The setting listing devices (or what stands for them), for the bad-configuration cases.
    list_setting: str = "device_ids"
    #: Settings this tap does not have, so those bad-configuration cases do not apply.
    lacks: frozenset[str] = frozenset()
    bad_settings: tuple[BadSetting, ...] = ()
    #: Where a key-field drift legitimately ends in records with that field null.
    key_null_allowed: bool = False

    def config(self, server_url: str, **overrides: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
        """Settings for the emulator at `server_url`, fast retries, then `overrides`."""
        return {**self.settings(server_url), **FAST, **overrides}

    def secrets(self, config: dict[str, t.Any]) -> list[str]:
        """Every secret value in `config`: the settings marked secret, and the extra ones."""
        properties = self.tap_class.config_jsonschema["properties"]
        marked = [name for name, definition in properties.items() if definition.get("secret")]
        values = [config[name] for name in (*marked, *self.extra_secrets) if config.get(name)]
        return [str(value) for value in values]

    def __str__(self) -> str:
        return self.name


# --- the five taps -----------------------------------------------------------------------------

UNLEASH_TOKEN = "ul_pat_s3cr3t/Tok+en=42&x"
UNLEASH_ANCHOR = dt.datetime(2024, 5, 10, 12, tzinfo=dt.timezone.utc)


def _unleash_app() -> UnleashEmulator:
    return UnleashEmulator(
        seed=7,
        access_tokens=(UNLEASH_TOKEN,),
        expired_tokens=("ul_pat_expired-token",),
        devices=2,
        sessions_per_device=3,
        frames_per_session=12,
        page_size=20,
        anchor=UNLEASH_ANCHOR,
        span_days=6,
    )


def _unleash_settings(url: str) -> dict[str, t.Any]:
    return {
        "api_url": f"{url}/v1",
        "access_token": UNLEASH_TOKEN,
        "start_date": (UNLEASH_ANCHOR - dt.timedelta(days=7)).isoformat(),
        "end_date": (UNLEASH_ANCHOR + dt.timedelta(days=1)).isoformat(),
        "window_days": 2,
    }


UNLEASH = TapCase(
    name="tap-unleash",
    tap_class=TapUnleash,
    executable="tap-unleash",
    make_app=_unleash_app,
    settings=_unleash_settings,
    data_path=r"^/v1/analytics/W",
    skip=2,
    drift=KeyedRowsDrift(
        path=r"^/v1/analytics/W",
        stream="analytics",
        rows=lambda body: [],
        documented=("model_id", "model_id"),
        number=("count", "count"),
        key=("timestamp", "timestamp"),
    ),
    vendor_scenarios=(
        VendorScenario(
            "token expires mid-sync (401 'The incoming token has expired')",
            lambda case: [
                Fault(kind="status", status=401, body='{"message":"The incoming token has expired"}', path_regex=case.data_path)
            ],
            expect="error",
            says="access token has expired",
            tries=1,
        ),
        VendorScenario(
            "API Gateway 503 maintenance body, then back",
            lambda case: [
                Fault(
                    kind="status",
                    status=503,
                    body='{"message":"Service Unavailable - We\'re temporarily offline for maintenance.",'
                    '"name":"ServiceUnavailableError"}',
                    path_regex=case.data_path,
                    times=2,
                )
            ],
            expect="same",
        ),
        VendorScenario(
            "403 Forbidden mid-sync (key revoked)",
            lambda case: [Fault(kind="status", status=403, body='{"message":"Forbidden"}', path_regex=case.data_path)],
            expect="error",
            says="refused the credential in `access_token`",
            tries=1,
        ),
    ),
    bad_settings=(),
)

HEADSPIN_TOKEN = "hs-s3cr3t/tok+en=7&y"
HEADSPIN_ANCHOR = dt.datetime(2024, 5, 10, 12, tzinfo=dt.timezone.utc)


def _headspin_app() -> HeadSpinEmulator:
    return HeadSpinEmulator(
        seed=7, api_tokens=HEADSPIN_TOKEN, devices=4, users=3, teams=2, sessions=50, anchor=HEADSPIN_ANCHOR, span_days=4
    )


def _headspin_settings(url: str) -> dict[str, t.Any]:
    return {
        "api_url": url,
        "api_token": HEADSPIN_TOKEN,
        "start_date": (HEADSPIN_ANCHOR - dt.timedelta(days=5)).date().isoformat(),
        "end_date": (HEADSPIN_ANCHOR + dt.timedelta(days=1)).date().isoformat(),
        "groupings": ["org", "device"],
        "events_window_days": 1,
    }


HEADSPIN = TapCase(
    name="tap-headspin",
    tap_class=TapHeadSpin,
    executable="tap-headspin",
    make_app=_headspin_app,
    settings=_headspin_settings,
    data_path=r"^/v2/usage/event$",
    skip=2,
    drift=Drift(
        path=r"^/v2/usage/event$",
        stream="usage_events",
        rows=lambda body: body.get("report") or [],
        documented=("duration", "duration"),
        number=("duration", "duration"),
        key=("start_time", "start_time"),
    ),
    vendor_scenarios=(
        VendorScenario(
            "401 mid-sync (token revoked)",
            lambda case: [
                Fault(
                    kind="status",
                    status=401,
                    body='{"status":401,"message":"Unauthorized: missing or invalid API token"}',
                    path_regex=case.data_path,
                )
            ],
            expect="error",
            says="refused the API token",
            tries=1,
        ),
        VendorScenario(
            "200 without a `report` list",
            lambda case: [Fault(kind="status", status=200, body='{"status":200,"message":"OK"}', path_regex=case.data_path)],
            expect="error",
            says="without a `report` list",
            tries=1,
        ),
    ),
    list_setting="filter_device_addresses",
    bad_settings=(
        BadSetting("unknown time zone", {"timezone": "Mars/Olympus_Mons"}, "timezone"),
        BadSetting("unknown grouping", {"groupings": ["org", "planet"]}, "groupings"),
        BadSetting("bin size that is not one", {"bin_size": "fortnight"}, "bin_size"),
    ),
)

SEEMETRIX_KEY = "s3cr3t/Key+with=odd&chars 42"
SEEMETRIX_ANCHOR = dt.datetime(2024, 5, 10, 12, 30, tzinfo=dt.timezone.utc)


def _seemetrix_app() -> SeemetrixEmulator:
    return SeemetrixEmulator(seed=7, user_key=SEEMETRIX_KEY, devices=2, days=2, sessions_per_day=10, anchor=SEEMETRIX_ANCHOR)


def _seemetrix_settings(url: str) -> dict[str, t.Any]:
    return {
        "api_url": f"{url}/api",
        "user_id": 632,
        "user_key": SEEMETRIX_KEY,
        "start_date": (SEEMETRIX_ANCHOR - dt.timedelta(days=2, hours=1)).isoformat(),
        "end_date": SEEMETRIX_ANCHOR.isoformat(),
        "window_days": 1,
        "sessions_window_hours": 12,
        "tree_devices_per_page": 1,
    }


SEEMETRIX = TapCase(
    name="tap-seemetrix",
    tap_class=TapSeemetrix,
    executable="tap-seemetrix",
    make_app=_seemetrix_app,
    settings=_seemetrix_settings,
    data_path=r"/raw/data/$",
    skip=2,
    drift=Drift(
        path=r"/raw/data/$",
        stream="sessions",
        rows=lambda body: body.get("objects") or [],
        documented=("i", "duration_ms"),
        number=("i", "duration_ms"),
        key=("b", "started_at"),
    ),
    vendor_scenarios=(
        VendorScenario(
            "401 wrong key mid-sync",
            lambda case: [
                Fault(
                    kind="status",
                    status=401,
                    body="401 Unauthorized: wrong key",
                    content_type="text/plain",
                    path_regex=case.data_path,
                )
            ],
            expect="error",
            says="refused the key in `user_key` (HTTP 401)",
            tries=1,
        ),
        VendorScenario(
            "403 on a device's statistics",
            lambda case: [
                Fault(kind="status", status=403, body="403 Forbidden", content_type="text/plain", path_regex=r"/statistics/device/")
            ],
            expect="error",
            says="Check `device_ids`",
            tries=1,
        ),
        VendorScenario(
            "403 on the user's routes",
            lambda case: [
                Fault(kind="status", status=403, body="403 Forbidden", content_type="text/plain", path_regex=case.data_path)
            ],
            expect="error",
            says="Check the `user_id` setting",
            tries=1,
        ),
        VendorScenario(
            'v2 tree answering 200 with "ok": 0',
            lambda case: [
                Fault(kind="status", status=200, body='{"ok":0,"error":"Range too long"}', path_regex=r"^/api/v2/statistics/")
            ],
            expect="error",
            says="with ok=0",
            tries=1,
        ),
    ),
    volatile={"counters": ("taken_at",)},
)

OPENSPACE_KEY = "os-k3y/with+odd=chars&7"
OPENSPACE_ANCHOR = dt.datetime(2024, 5, 10, 12, tzinfo=dt.timezone.utc)


def _openspace_app() -> OpenSpaceEmulator:
    return OpenSpaceEmulator(
        seed=7, api_keys=OPENSPACE_KEY, videos=60, sites=4, users=8, field_notes=12, max_page_size=10, anchor=OPENSPACE_ANCHOR
    )


def _openspace_settings(url: str) -> dict[str, t.Any]:
    return {"api_url": url, "api_key": OPENSPACE_KEY}


def _spring(status: int, error: str, message: str, path: str = "/api/external/v1/reports/360-videos") -> str:
    return (
        f'{{"timestamp":"2024-05-10T12:00:00.000+00:00","status":{status},"error":"{error}",'
        f'"message":"{message}","path":"{path}"}}'
    )


OPENSPACE = TapCase(
    name="tap-openspace",
    tap_class=TapOpenSpace,
    executable="tap-openspace",
    make_app=_openspace_app,
    settings=_openspace_settings,
    data_path=r"/reports/360-videos$",
    skip=2,
    drift=Drift(
        path=r"/reports/360-videos$",
        stream="videos_360",
        rows=lambda body: body.get("content") or [],
        documented=("videoNumberOfFrames", "video_number_of_frames"),
        number=("videoNumberOfFrames", "video_number_of_frames"),
        key=("videoStart", "video_start"),
    ),
    vendor_scenarios=(
        VendorScenario(
            "Spring 400 error body",
            lambda case: [
                Fault(
                    kind="status",
                    status=400,
                    body=_spring(400, "Bad Request", "Page size must not be greater than 2000"),
                    path_regex=case.data_path,
                )
            ],
            expect="error",
            says="Bad Request: Page size must not be greater than 2000",
            tries=1,
        ),
        VendorScenario(
            "Spring 500 error body, then back",
            lambda case: [
                Fault(
                    kind="status",
                    status=500,
                    body=_spring(500, "Internal Server Error", "Unexpected error"),
                    path_regex=case.data_path,
                    times=2,
                )
            ],
            expect="same",
        ),
        VendorScenario(
            "Spring 401 error body mid-sync",
            lambda case: [
                Fault(kind="status", status=401, body=_spring(401, "Unauthorized", "Invalid or missing API key"), path_regex=case.data_path)
            ],
            expect="error",
            says="refused the API key in `api_key`",
            tries=1,
        ),
        VendorScenario(
            "Spring 403 (no Usage API product)",
            lambda case: [
                Fault(
                    kind="status",
                    status=403,
                    body=_spring(403, "Forbidden", "The Usage API is not enabled for this account"),
                    path_regex=case.data_path,
                )
            ],
            expect="error",
            says="Usage API product",
            tries=1,
        ),
        VendorScenario(
            "Spring 404 error body",
            lambda case: [
                Fault(
                    kind="status",
                    status=404,
                    body=_spring(404, "Not Found", "No static resource api/external/v1/reports/360-videos."),
                    path_regex=case.data_path,
                )
            ],
            expect="error",
            says="Check `api_url` (or `region`)",
            tries=1,
        ),
    ),
    list_setting="org_ids",
    lacks=frozenset({"end_date"}),
    bad_settings=(BadSetting("unknown region", {"region": "mars", "api_url": None}, "region"),),
    key_null_allowed=True,
)

WMSPANEL_CLIENT_ID = "client-id/47+11"
WMSPANEL_KEY = "k3y/with+plus&amp=and space"
WMSPANEL_ANCHOR = dt.date(2024, 5, 10)


def _wmspanel_app() -> WMSPanelEmulator:
    return WMSPanelEmulator(
        seed=7, client_id=WMSPANEL_CLIENT_ID, api_key=WMSPANEL_KEY, anchor=WMSPANEL_ANCHOR, days=12, data_slices=2
    )


def _wmspanel_settings(url: str) -> dict[str, t.Any]:
    return {
        "api_url": f"{url}/v1",
        "client_id": WMSPANEL_CLIENT_ID,
        "api_key": WMSPANEL_KEY,
        "start_date": (WMSPANEL_ANCHOR - dt.timedelta(days=11)).isoformat(),
        "end_date": WMSPANEL_ANCHOR.isoformat(),
        "lookback_days": 0,  # like the other taps' lookbacks: a resume re-reads the bookmark's day only
    }


WMSPANEL = TapCase(
    name="tap-wmspanel",
    tap_class=TapWMSPanel,
    executable="tap-wmspanel",
    make_app=_wmspanel_app,
    settings=_wmspanel_settings,
    data_path=r"^/v1/players_stats$",
    skip=1,
    drift=Drift(
        path=r"^/v1/daily_stats$",
        stream="daily_stats",
        rows=lambda body: body.get("stats") or [],
        documented=("viewers", "viewers"),
        number=("viewers", "viewers"),
        key=("date", "date"),
    ),
    vendor_scenarios=(
        VendorScenario(
            '200 with "status": "error"',
            lambda case: [
                Fault(
                    kind="status",
                    status=200,
                    body='{"status":"error","description":"Data slice is being rebuilt"}',
                    path_regex=case.data_path,
                )
            ],
            expect="error",
            says="WMSPanel reported an error for /players_stats",
            tries=1,
        ),
        VendorScenario(
            '200 with "status": "error" past the daily quota',
            lambda case: [
                Fault(
                    kind="status",
                    status=200,
                    body='{"status":"error","description":"API calls limit exceeded (15000 per day)"}',
                    path_regex=case.data_path,
                )
            ],
            expect="error",
            says="daily quota",
            tries=1,
        ),
        VendorScenario(
            "403 (IP not whitelisted) mid-sync",
            lambda case: [
                Fault(kind="status", status=403, body='{"status":"error","description":"Forbidden"}', path_regex=case.data_path)
            ],
            expect="error",
            says="pull API whitelist",
            tries=1,
        ),
    ),
    list_setting="data_slice_ids",
)

CASES: tuple[TapCase, ...] = (UNLEASH, HEADSPIN, SEEMETRIX, OPENSPACE, WMSPANEL)
TAP_NAMES = tuple(case.name for case in CASES)

"""Emulator of the HeadSpin Usage API (https://api-dev.headspin.io), after its docs.

Routes, all behind `Authorization: Bearer <token>` (401 otherwise):
- `/v2/usage` and `/v2/usage/{grouping}` (GET with a query, or POST with a form body): usage
  aggregated in time bins, one row per bin and group;
- `/v2/usage/event`: individual usage sessions;
- `/v1/usage` and `/v1/usage/{grouping}` (legacy): one `metric` per call, groupings v2 lacks;
- `/v0/usage/events` (legacy): a JSON body on a GET, ranges of at most 120 days.

The data is a set of synthetic usage sessions (a device `id@host`, a user with an email, a team,
manual or automated), deterministic for a seed. Every report is computed from those sessions for
whatever `bin_size`, `timezone`, filters and grouping the request asks, so the tests can check
the totals against a computation of their own.

Where the docs are silent the emulator picks one plausible behaviour (the tap must not rely on it):
- a session counts wholly in the bin that holds its start;
- `hour`, `day`, `week` (from Monday) and `month` bins follow the wall clock of `timezone`; bins of
  N seconds are counted from local midnight of `start_date`, so their edges depend on the request;
- `end_date` excludes its own day (option `end_inclusive` makes it include it); without it, now;
- report times are naive wall-clock strings in `timezone` (`2025-01-01 00:00:00`), as the docs show;
- `/v2/usage/event` takes the v2 parameters, answers the v0 event fields plus `session_id` and
  `automated`, and refuses more than 120 days like `/v0/usage/events`;
- the user grouping's key is the user's email; groups and bins with no usage are left out;
- before `user_token_since` (August 2022) a session belonged to a user or to a team, never both,
  so total usage was usage by teams plus usage by users; since then it belongs to both.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import threading
import uuid
from array import array
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from emulators.clock import anchor_instant, as_utc
from emulators.framework import EmulatorApp, Request, Response

UTC = timezone.utc
MAX_EVENT_DAYS = 120
CALENDAR_BINS = ("hour", "day", "week", "month")
MIN_BIN_SECONDS = 61  # "seconds (>60)"
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
LEGACY_METRICS = (
    "total_time",
    "avg_session_length",
    "session_count",
    "device_count",
    "user_count",
    "team_count",
)
USER_TOKEN_SINCE = datetime(2022, 8, 1, tzinfo=UTC)

#: v2 groupings (with the docs' aliases) and the report fields that key their groups.
V2_GROUPINGS: dict[str, tuple[str, ...]] = {
    "org": (),
    "device": ("device_address",),
    "team": ("team",),
    "user": ("user",),
    "host": ("host",),
    "device_team": ("device_address", "team"),
    "device-team": ("device_address", "team"),
    "team/device": ("device_address", "team"),
    "device_user": ("device_address", "user"),
    "device-user": ("device_address", "user"),
    "user/device": ("device_address", "user"),
}
#: v1 groupings ("" is `/v1/usage`) and their key fields.
V1_GROUPINGS: dict[str, tuple[str, ...]] = {
    "": (),
    "device": ("device_address",),
    "user": ("user",),
    "team": ("team",),
    "host": ("host",),
    "country": ("country",),
    "team/device": ("team", "device_address"),
    "user/team": ("user",),
    "devicemodel": ("device_model",),
    "team/devicemodel": ("team", "device_model"),
}
#: v1 `filter_on.<alias>` names, and the v2 `filter_<kind>` names, mapped to session fields.
V1_FILTERS = {
    "team_name": "team",
    "user_email": "user",
    "device_address": "device_address",
    "hostname": "host",
}
V2_FILTERS = {
    "filter_team_id": "team_id",
    "filter_team_name": "team",
    "filter_user_id": "user_id",
    "filter_user_email": "user",
    "filter_device_address": "device_address",
}
V0_CSV_HEADER = ("User/Team", "Email", "Device Id", "Hostname", "Start time", "End time", "Duration", "Date")

HOSTS = (
    ("dev-us-mv-0-proxy-2.headspin.io", "US"),
    ("proxy-us-nyc-1.headspin.io", "US"),
    ("proxy-gb-lon-0.headspin.io", "GB"),
    ("proxy-jp-tyo-3.headspin.io", "JP"),
    ("proxy-in-blr-1.headspin.io", "IN"),
    ("proxy-de-fra-2.headspin.io", "DE"),
)
MODELS = (
    ("iPhone 14", "iOS"),
    ("iPhone 12 mini", "iOS"),
    ("iPad Air", "iPadOS"),
    ("Pixel 7", "Android"),
    ("SM-S901B", "Android"),
    ("moto g(30)", "Android"),
)
#: `combine_phone_os=true` groups phones by their OS.
PHONE_OS_GROUPS = {"iOS": "iPhone", "Android": "AndroidPhone"}
TEAM_NAMES = ("Checkout QA", "Mobile Perf", "Release Eng", "Payments", "Growth Lab", "Media Apps")
FIRST_NAMES = ("ana", "bo", "chen", "dara", "eli", "fatima", "goran", "hiro", "ines", "jonas")
LAST_NAMES = ("silva", "berg", "li", "okafor", "novak", "haddad", "sato", "ruiz", "meyer", "kowal")

_SESSION_NAMESPACE = uuid.UUID("6f1d2a52-3c1e-4d2b-9a57-0f3c2b1e7d10")
_DATE_FORMATS = (
    (re.compile(r"\d{8}"), "%Y%m%d"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "%Y-%m-%d"),
    (re.compile(r"\d{4}/\d{2}/\d{2}"), "%Y/%m/%d"),
)
_TRUE = {"true", "1", "yes"}


class QueryError(ValueError):
    """A request the API refuses with 400; the message is the body's."""


# --- bins -------------------------------------------------------------------------------------


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which `day` begins on the wall clock of `zone`."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


class BinCalendar:
    """Where bins start and end for one `bin_size` and time zone.

    Calendar bins follow the zone's wall clock, DST included (a day can last 23 or 25 hours, and
    the hour repeated when clocks go back is two bins). Bins of N seconds are counted from
    `origin`, the local midnight of the request's start date.
    """

    def __init__(self, bin_size: str | int, zone: ZoneInfo, origin: datetime) -> None:
        self.bin_size = bin_size
        self.zone = zone
        self.origin = origin

    def floor(self, moment: datetime) -> datetime:
        """The start of the bin that holds `moment` (aware, UTC)."""
        if isinstance(self.bin_size, int):
            steps = (moment - self.origin) // timedelta(seconds=self.bin_size)
            return self.origin + timedelta(seconds=self.bin_size * steps)
        local = moment.astimezone(self.zone)
        if self.bin_size == "hour":
            return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        day = local.date()
        if self.bin_size == "week":
            day -= timedelta(days=day.weekday())
        elif self.bin_size == "month":
            day = day.replace(day=1)
        return local_midnight(day, self.zone)

    def next(self, start: datetime) -> datetime:
        """The start of the bin after the one that starts at `start`."""
        if isinstance(self.bin_size, int):
            return start + timedelta(seconds=self.bin_size)
        if self.bin_size == "hour":
            following = self.floor(start + timedelta(hours=1))
            return following if following > start else start + timedelta(hours=1)
        day = start.astimezone(self.zone).date()
        if self.bin_size == "day":
            day += timedelta(days=1)
        elif self.bin_size == "week":
            day += timedelta(days=7)
        else:
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        return local_midnight(day, self.zone)


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    device_id: str
    host: str
    country: str
    model: str
    os: str

    @property
    def address(self) -> str:
        """`id@host`, as the docs write device addresses."""
        return f"{self.device_id}@{self.host}"


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    email: str
    team: int


@dataclass(frozen=True)
class Team:
    team_id: str
    name: str


@dataclass(frozen=True)
class _SessionTable:
    """Sessions in start order, one compact array per field (about 30 bytes a session).

    Immutable: adding a session builds a new table, so a request never sees a half-written one.
    `users` and `teams` hold -1 where a session (before August 2022) had no user or no team.
    """

    starts: array = field(default_factory=lambda: array("q"))  # epoch seconds
    durations_ms: array = field(default_factory=lambda: array("q"))
    devices: array = field(default_factory=lambda: array("l"))
    users: array = field(default_factory=lambda: array("l"))
    teams: array = field(default_factory=lambda: array("l"))
    automated: array = field(default_factory=lambda: array("b"))

    def __len__(self) -> int:
        return len(self.starts)

    def span(self, start: datetime, end: datetime) -> range:
        """Positions of the sessions that start in [start, end)."""
        low = bisect_left(self.starts, _epoch(start))
        high = bisect_left(self.starts, _epoch(end))
        return range(low, max(low, high))


@dataclass
class _Bucket:
    """What one bin and group accumulates."""

    total_ms: int = 0
    sessions: int = 0
    devices: set[int] = field(default_factory=set)
    users: set[int] = field(default_factory=set)
    teams: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class _Query:
    """A request's parameters, checked."""

    start: datetime
    end: datetime
    zone: ZoneInfo
    bin_size: str | int
    filters: dict[str, frozenset[str]]
    display_all: bool = False
    automated: bool | None = None
    group_by_device_id: bool = False
    combine_phone_os: bool = False
    days_asked: int = 0  # end_date - start_date as sent (to today without end_date)


class HeadSpinEmulator(EmulatorApp):
    """The HeadSpin Usage API over synthetic, seeded usage sessions.

    Options (all keyword, all with defaults):
      api_tokens: accepted bearer tokens.
      devices, users, teams, sessions: size of the synthetic data (hosts are shared by devices).
      automated_share: the share of sessions run by automation (they belong to a team).
      anchor, span_days: sessions lie in [anchor - span_days, anchor]; anchor defaults to now
        (UTC, whole seconds) and may be a datetime or an ISO 8601 string.
      end_inclusive: whether `end_date` includes its own day (the docs' examples read both ways).
      user_token_since: before this instant a session had a user or a team, not both.
      max_event_days: the longest range the event routes accept.
      event_order: "time" serves events by start; "shuffled" in a seeded random order, to prove a
        client does not rely on an order the docs never promise.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        latency: float = 0.0,
        api_tokens: Iterable[str] | str = ("test-api-token",),
        devices: int = 10,
        users: int = 5,
        teams: int = 3,
        sessions: int = 400,
        automated_share: float = 0.3,
        anchor: str | datetime | None = None,
        span_days: float = 14,
        end_inclusive: bool = False,
        user_token_since: str | datetime = USER_TOKEN_SINCE,
        max_event_days: int = MAX_EVENT_DAYS,
        event_order: str = "time",
    ) -> None:
        super().__init__(seed=seed, latency=latency)
        if min(devices, users, teams) < 1 or sessions < 0:
            raise ValueError("devices, users and teams must be at least 1, sessions at least 0")
        if event_order not in ("time", "shuffled"):
            raise ValueError(f"event_order must be time or shuffled, not {event_order!r}")
        self.event_order = event_order
        self.api_tokens = frozenset([api_tokens] if isinstance(api_tokens, str) else api_tokens)
        self.end_inclusive = end_inclusive
        self.max_event_days = max_event_days
        self.anchor = anchor_instant(anchor)
        self.span_start = self.anchor - timedelta(days=span_days)
        self.user_token_since = anchor_instant(user_token_since)
        rng = random.Random(seed)
        self.teams = [Team(_uuid(rng), _numbered(TEAM_NAMES, index)) for index in range(teams)]
        self.users = [_new_user(rng, index, teams) for index in range(users)]
        self.devices = [_new_device(rng, index) for index in range(devices)]
        self._write_lock = threading.Lock()
        self._table = self._generate(rng, sessions, automated_share)

    # Synthetic data ----------------------------------------------------------------------------

    def _generate(self, rng: random.Random, count: int, automated_share: float) -> _SessionTable:
        """`count` sessions of 20 s to 2 h that end by the anchor, one start per device and second."""
        first, last = _epoch(self.span_start), _epoch(self.anchor)
        draw = rng.random  # a million sessions: plain floats are several times faster than randint
        devices, users = len(self.devices), len(self.users)
        taken: set[int] = set()
        rows = []
        for _ in range(count):
            duration_ms = 20_000 + int(draw() * 7_180_000)
            start = first + int(draw() * max(0, last - duration_ms // 1000 - first))
            device = int(draw() * devices)
            while (start << 20 | device) in taken:
                start += 1
            taken.add(start << 20 | device)
            rows.append(
                self._session_row(start, duration_ms, device, int(draw() * users), draw() < automated_share)
            )
        rows.sort()
        return _table_of(rows)

    def _session_row(
        self, start: int, duration_ms: int, device: int, user: int, automated: bool
    ) -> tuple[int, int, int, int, int, int]:
        """A session as stored; before August 2022 automation had no user, people no team."""
        team = self.users[user].team
        if start < _epoch(self.user_token_since):
            user, team = (-1, team) if automated else (user, -1)
        return start, duration_ms, device, user, team, int(automated)

    def add_session(
        self,
        start: datetime,
        duration_seconds: float,
        *,
        device: int = 0,
        user: int = 0,
        automated: bool = False,
    ) -> dict[str, Any]:
        """Record a new session (new usage arriving between two syncs); return it as `sessions()` does."""
        with self._write_lock:
            table = self._table
            start_s = _epoch(as_utc(start))
            while any(table.devices[i] == device for i in range(*_same_second(table, start_s))):
                start_s += 1
            rows = list(zip(*(getattr(table, f.name) for f in fields(table)), strict=True))
            insort(rows, self._session_row(start_s, round(duration_seconds * 1000), device, user, automated))
            self._table = new_table = _table_of(rows)
        position = bisect_left(new_table.starts, start_s)
        while new_table.devices[position] != device:
            position += 1
        return self._session_dict(new_table, position)

    # Ground truth for tests --------------------------------------------------------------------

    def sessions(self) -> list[dict[str, Any]]:
        """Every session with all it belongs to, in start order (None where it had no user/team)."""
        table = self._table
        return [self._session_dict(table, position) for position in range(len(table))]

    def session_count(self) -> int:
        """How many sessions there are; cheap for millions."""
        return len(self._table)

    def report(
        self, grouping: str, params: Mapping[str, str | Sequence[str]], *, version: int = 2
    ) -> list[dict]:
        """The rows `/v{version}/usage/{grouping}` answers for these parameters.

        Raises:
            QueryError: when the API would answer 400.
        """
        query = _as_lists(params)
        if version == 2:
            return self._v2_report(grouping, query)
        return self._v1_report(grouping, query)

    def events(self, params: Mapping[str, str | Sequence[str]]) -> list[dict[str, Any]]:
        """The rows `/v2/usage/event` answers for these parameters."""
        return self._v2_events(_as_lists(params))

    # Serving -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Authentication first, then the route; bad parameters answer 400."""
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.api_tokens:
            return _error(401, "Unauthorized: missing or invalid API token")
        path = request.path.rstrip("/")
        try:
            if path == "/v0/usage/events" and request.method in ("GET", "POST"):
                return self._v0_events_response(request)
            params = _request_params(request)
            if path == "/v2/usage/event" and request.method == "GET":
                return _rows_response(self._v2_events(params), params)
            if (path == "/v2/usage" or path.startswith("/v2/usage/")) and request.method in ("GET", "POST"):
                grouping = path.removeprefix("/v2/usage").lstrip("/") or "org"
                return _rows_response(self._v2_report(grouping, params), params)
            if (path == "/v1/usage" or path.startswith("/v1/usage/")) and request.method == "GET":
                grouping = path.removeprefix("/v1/usage").lstrip("/")
                return _rows_response(self._v1_report(grouping, params), params)
        except QueryError as failure:
            return _error(400, str(failure))
        return _error(404, "Not Found")

    def _v2_report(self, grouping: str, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        keys = V2_GROUPINGS.get(grouping)
        if keys is None:
            raise QueryError(f"Unsupported grouping: {grouping}")
        bin_size = _bin_size(_one(params, "bin_size", "month"), allow_seconds=True)
        unit = _one(params, "unit", "second")
        if unit not in UNIT_SECONDS:
            raise QueryError(f"unit must be one of {', '.join(UNIT_SECONDS)}")
        filters = {field_name: frozenset(params.get(name, ())) for name, field_name in V2_FILTERS.items()}
        query = self._query(params, bin_size, filters, display_all=keys in (("team",), ("user",)))
        rows = []
        for start, end, group, bucket in self._aggregate(query, keys):
            row: dict[str, Any] = {
                "datetime": _local_text(start, query.zone),
                "start_time": _local_text(start, query.zone),
                "end_time": _local_text(end, query.zone),
                "total_time": bucket.total_ms / 1000 / UNIT_SECONDS[unit],
                "device_count": len(bucket.devices),
            }
            row.update(zip(keys, group, strict=True))
            row["unit"] = unit
            rows.append(row)
        return rows

    def _v1_report(self, grouping: str, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        keys = V1_GROUPINGS.get(grouping)
        if keys is None:
            raise QueryError(f"Unsupported grouping: {grouping}")
        metric = _one(params, "metric", "total_time")
        if metric not in LEGACY_METRICS:
            raise QueryError(f"metric must be one of {', '.join(LEGACY_METRICS)}")
        bin_size = _bin_size(_one(params, "bin_size", "month"), allow_seconds=False)
        filters = {
            field_name: frozenset(params.get(f"filter_on.{alias}", ()))
            for alias, field_name in V1_FILTERS.items()
        }
        automated = params.get("automated")
        query = self._query(
            params,
            bin_size,
            filters,
            display_all=keys in (("team",), ("user",)),
            automated=None if automated is None else automated[-1].lower() in _TRUE,
        )
        key_names = tuple(
            "device_id" if query.group_by_device_id and k == "device_address" else k for k in keys
        )
        rows = []
        for start, _, group, bucket in self._aggregate(query, keys):
            row: dict[str, Any] = {"datetime": _legacy_label(start, query)}
            row.update(zip(key_names, group, strict=True))
            if grouping == "user/team":
                row["teams"] = sorted({self.teams[team].name for team in bucket.teams})
            row[metric], unit = _legacy_metric(metric, bucket, bin_size)
            if unit:
                row["unit"] = unit
            rows.append(row)
        return rows

    def _v2_events(self, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        filters = {field_name: frozenset(params.get(name, ())) for name, field_name in V2_FILTERS.items()}
        query = self._query(params, "day", filters)
        self._check_event_range(query)
        clock = WallClock(query.zone)
        rows = [self._event_row(position, clock, extras=True) for position in self._matching(query)]
        if self.event_order == "shuffled":
            random.Random(f"{self.seed}:{query.start}:{query.end}").shuffle(rows)
        return rows

    def _v0_events_response(self, request: Request) -> Response:
        """The legacy route: parameters in a JSON body, even on a GET."""
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            raise QueryError("The request body must be JSON") from None
        if not isinstance(body, dict) or "start_date" not in body:
            raise QueryError("start_date is required")
        params = {"start_date": [str(body["start_date"])]}
        if body.get("end_date"):
            params["end_date"] = [str(body["end_date"])]
        query = self._query(params, "day", {"device_address": frozenset(body.get("devices") or ())})
        self._check_event_range(query)
        clock = WallClock(UTC)
        rows = [self._event_row(position, clock, extras=False) for position in self._matching(query)]
        if body.get("format", "json") == "csv":
            return _v0_csv(rows)
        return Response.json({"report": rows})

    # The computation ---------------------------------------------------------------------------

    def _query(
        self,
        params: dict[str, list[str]],
        bin_size: str | int,
        filters: dict[str, frozenset[str]],
        *,
        display_all: bool = False,
        automated: bool | None = None,
    ) -> _Query:
        """Check the parameters every route shares and turn the date range into instants."""
        zone_name = _one(params, "timezone", "UTC")
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise QueryError(f"Unknown timezone: {zone_name}") from None
        start_text = _one(params, "start_date", "")
        if not start_text:
            raise QueryError("start_date is required")
        start = local_midnight(_parse_date(start_text), zone)
        end_text = _one(params, "end_date", "")
        if end_text:
            end_day = _parse_date(end_text) + timedelta(days=1 if self.end_inclusive else 0)
            end = local_midnight(end_day, zone)
        else:
            end = datetime.now(UTC)
        if end < start:
            raise QueryError("end_date must not be before start_date")
        if _one(params, "format", "json") not in ("json", "csv"):
            raise QueryError("format must be json or csv")
        last_day = _parse_date(end_text) if end_text else datetime.now(zone).date()
        return _Query(
            start=start,
            end=end,
            zone=zone,
            bin_size=bin_size,
            filters={name: values for name, values in filters.items() if values},
            display_all=display_all and _one(params, "display_all", "false").lower() in _TRUE,
            automated=automated,
            group_by_device_id=_one(params, "group_by_device_id", "false").lower() in _TRUE,
            combine_phone_os=_one(params, "combine_phone_os", "false").lower() in _TRUE,
            days_asked=(last_day - _parse_date(start_text)).days,
        )

    def _check_event_range(self, query: _Query) -> None:
        """The event routes refuse ranges longer than `max_event_days`, counted on the dates sent."""
        if query.days_asked > self.max_event_days:
            raise QueryError(
                f"The total range from start_date to end_date cannot be more than {self.max_event_days} days"
            )

    def _matching(self, query: _Query) -> Iterable[int]:
        """Positions of the sessions in the query's range that pass its filters.

        Filters of different kinds are AND'd, values of one kind OR'd, as the docs say.
        """
        table = self._table
        checks = [(self._getter(name, query), allowed) for name, allowed in query.filters.items()]
        automated = query.automated
        for position in table.span(query.start, query.end):
            if automated is not None and bool(table.automated[position]) != automated:
                continue
            if all(get(table, position) in allowed for get, allowed in checks):
                yield position

    def _getter(self, name: str, query: _Query) -> Callable[[_SessionTable, int], str | None]:
        """How to read one attribute of a session, as reports and filters name it (None: it has none)."""
        by_device: dict[str, Callable[[Device], str]] = {
            "device_address": lambda d: d.device_id if query.group_by_device_id else d.address,
            "host": lambda d: d.host,
            "country": lambda d: d.country,
            "device_model": lambda d: (
                PHONE_OS_GROUPS.get(d.os, d.model) if query.combine_phone_os else d.model
            ),
        }
        if name in by_device:
            device_values = [by_device[name](device) for device in self.devices]
            return lambda table, position: device_values[table.devices[position]]
        if name in ("team", "team_id"):
            team_values = [team.name if name == "team" else team.team_id for team in self.teams]
            return lambda table, position: _indexed(team_values, table.teams[position])
        user_values = [user.email if name == "user" else user.user_id for user in self.users]
        return lambda table, position: _indexed(user_values, table.users[position])

    def _aggregate(
        self, query: _Query, keys: tuple[str, ...]
    ) -> list[tuple[datetime, datetime, tuple[str, ...], _Bucket]]:
        """(bin start, bin end, group, totals) for every bin and group with usage, in that order.

        Sessions come in start order, so the bins are walked once alongside them; a session
        without the grouping's key (no team, say, before August 2022) is in no group.
        """
        table = self._table
        calendar = BinCalendar(query.bin_size, query.zone, query.start)
        getters = [self._getter(key, query) for key in keys]
        buckets: dict[tuple[datetime, tuple[str, ...]], _Bucket] = {}
        bin_start = bin_end = None
        for position in self._matching(query):
            moment = datetime.fromtimestamp(table.starts[position], UTC)
            if bin_end is None or moment >= bin_end:
                bin_start = calendar.floor(moment)
                bin_end = calendar.next(bin_start)
            group = tuple(get(table, position) for get in getters)
            if None in group:
                continue
            bucket = buckets.setdefault((bin_start, group), _Bucket())  # type: ignore[arg-type]
            bucket.total_ms += table.durations_ms[position]
            bucket.sessions += 1
            bucket.devices.add(table.devices[position])
            if table.users[position] >= 0:
                bucket.users.add(table.users[position])
            if table.teams[position] >= 0:
                bucket.teams.add(table.teams[position])
        if query.display_all:
            self._add_empty_groups(query, calendar, keys[0], buckets)
        return [
            (start, calendar.next(start), group, buckets[start, group]) for start, group in sorted(buckets)
        ]

    def _add_empty_groups(
        self,
        query: _Query,
        calendar: BinCalendar,
        key: str,
        buckets: dict[tuple[datetime, tuple[str, ...]], _Bucket],
    ) -> None:
        """`display_all`: every team (or user) in every bin of the range, with 0 where unused."""
        names = [team.name for team in self.teams] if key == "team" else [user.email for user in self.users]
        allowed = query.filters.get(key)
        last = min(query.end, datetime.now(UTC))
        start = calendar.floor(query.start)
        while start < last:
            for name in names:
                if allowed is None or name in allowed:
                    buckets.setdefault((start, (name,)), _Bucket())
            start = calendar.next(start)

    def _session_dict(self, table: _SessionTable, position: int) -> dict[str, Any]:
        device = self.devices[table.devices[position]]
        user = self.users[table.users[position]] if table.users[position] >= 0 else None
        team = self.teams[table.teams[position]] if table.teams[position] >= 0 else None
        return {
            "start": datetime.fromtimestamp(table.starts[position], UTC),
            "duration_ms": table.durations_ms[position],
            "device_address": device.address,
            "device_id": device.device_id,
            "host": device.host,
            "country": device.country,
            "device_model": device.model,
            "os": device.os,
            "user": user.email if user else None,
            "user_id": user.user_id if user else None,
            "user_name": user.name if user else None,
            "team": team.name if team else None,
            "team_id": team.team_id if team else None,
            "automated": bool(table.automated[position]),
        }

    def _event_row(self, position: int, clock: WallClock, *, extras: bool) -> dict[str, Any]:
        """A usage event with the v0 fields: `team` instead of `user` and `email` for automation.

        Built straight from the arrays: a benchmark asks for a million of these.
        """
        table = self._table
        device = self.devices[table.devices[position]]
        user, team = table.users[position], table.teams[position]
        automated = bool(table.automated[position])
        start, duration_ms = table.starts[position], table.durations_ms[position]
        row: dict[str, Any] = {}
        if automated or user < 0:
            row["team"] = self.teams[team].name if team >= 0 else None
        else:
            row["user"] = self.users[user].name
            row["email"] = self.users[user].email
        row["device_id"] = device.device_id
        row["hostname"] = device.host
        row["start_time"] = clock.text(start)
        row["end_time"] = clock.text(start + duration_ms // 1000)
        row["duration"] = duration_ms / 1000
        row["date"] = clock.compact_date(start)
        if extras:
            row["session_id"] = _session_id(table.devices[position], start, self.seed)
            row["automated"] = automated
        return row


class WallClock:
    """Epoch seconds as a zone's naive wall-clock text, fast: offsets are looked up per quarter hour.

    Every offset change in the tz database falls on a quarter hour, so one lookup per quarter
    hour is exact; days and their texts are cached too.
    """

    def __init__(self, zone: ZoneInfo | timezone) -> None:
        self.zone = zone
        self._offsets: dict[int, int] = {}
        self._days: dict[int, tuple[str, str]] = {}

    def _local(self, epoch_seconds: int) -> int:
        quarter = epoch_seconds // 900
        offset = self._offsets.get(quarter)
        if offset is None:
            moment = datetime.fromtimestamp(quarter * 900, UTC).astimezone(self.zone)
            offset = self._offsets[quarter] = int(moment.utcoffset().total_seconds())  # type: ignore[union-attr]
        return epoch_seconds + offset

    def _day(self, local_seconds: int) -> tuple[str, str]:
        day = local_seconds // 86400
        texts = self._days.get(day)
        if texts is None:
            calendar_day = date(1970, 1, 1) + timedelta(days=day)
            texts = self._days[day] = (calendar_day.isoformat(), calendar_day.strftime("%Y%m%d"))
        return texts

    def text(self, epoch_seconds: int) -> str:
        """`2025-01-01 00:00:00`."""
        local = self._local(epoch_seconds)
        hours, rest = divmod(local % 86400, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{self._day(local)[0]} {hours:02d}:{minutes:02d}:{seconds:02d}"

    def compact_date(self, epoch_seconds: int) -> str:
        """`20250101`, the events' `date`."""
        return self._day(self._local(epoch_seconds))[1]


# --- helpers ----------------------------------------------------------------------------------


def _indexed(values: Sequence[str], index: int) -> str | None:
    return None if index < 0 else values[index]


def _legacy_metric(metric: str, bucket: _Bucket, bin_size: str | int) -> tuple[float | int, str | None]:
    """A v1 metric's value and unit: time in hours (minutes for hour bins), lengths in minutes."""
    if metric == "total_time":
        minutes = bin_size == "hour"
        return bucket.total_ms / (60_000 if minutes else 3_600_000), "minute" if minutes else "hour"
    if metric == "avg_session_length":
        return (bucket.total_ms / bucket.sessions / 60_000 if bucket.sessions else 0.0), "minute"
    counts = {
        "session_count": bucket.sessions,
        "device_count": len(bucket.devices),
        "user_count": len(bucket.users),
        "team_count": len(bucket.teams),
    }
    return counts[metric], None


def _legacy_label(start: datetime, query: _Query) -> str:
    """v1 labels bins by date (`YYYY-MM-DD`), and by date and time for hour bins."""
    if query.bin_size == "hour":
        return _local_text(start, query.zone)
    return start.astimezone(query.zone).strftime("%Y-%m-%d")


def _bin_size(text: str, *, allow_seconds: bool) -> str | int:
    if text in CALENDAR_BINS:
        return text
    if allow_seconds and text.isdigit() and int(text) >= MIN_BIN_SECONDS:
        return int(text)
    allowed = "seconds (>60), " if allow_seconds else ""
    raise QueryError(f"bin_size must be {allowed}one of: {', '.join(CALENDAR_BINS)}")


def _parse_date(text: str) -> date:
    """`YYYYMMDD`, `YYYY-MM-DD` or `YYYY/MM/DD`, the forms the docs name."""
    for pattern, form in _DATE_FORMATS:
        if pattern.fullmatch(text):
            try:
                return datetime.strptime(text, form).date()
            except ValueError:
                break
    raise QueryError(f"Invalid date {text!r}: use YYYYMMDD or YYYY-MM-DD")


def _request_params(request: Request) -> dict[str, list[str]]:
    """Query parameters plus, for a form POST, the body's; repeated names keep every value."""
    params = {name: list(values) for name, values in request.query.items()}
    if request.method == "POST" and request.body:
        for name, values in parse_qs(request.body.decode(), keep_blank_values=True).items():
            params.setdefault(name, []).extend(values)
    return params


def _one(params: Mapping[str, Sequence[str]], name: str, default: str) -> str:
    values = params.get(name)
    return values[-1] if values else default


def _as_lists(params: Mapping[str, str | Sequence[str]]) -> dict[str, list[str]]:
    return {name: [value] if isinstance(value, str) else list(value) for name, value in params.items()}


def _rows_response(rows: list[dict[str, Any]], params: Mapping[str, Sequence[str]]) -> Response:
    if _one(params, "format", "json") == "csv":
        return _csv_response(rows)
    return Response.json({"report": rows})


def _csv_response(rows: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Response.text(out.getvalue(), content_type="text/csv; charset=utf-8")


def _v0_csv(rows: list[dict[str, Any]]) -> Response:
    """The docs' CSV: `User/Team` holds the user or the team, `Email` is N/A for a team."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(V0_CSV_HEADER)
    for row in rows:
        who = row.get("user", row.get("team"))
        writer.writerow(
            [
                who,
                row.get("email", "N/A"),
                row["device_id"],
                row["hostname"],
                row["start_time"],
                row["end_time"],
                row["duration"],
                row["date"],
            ]
        )
    return Response.text(out.getvalue(), content_type="text/csv; charset=utf-8")


def _error(status: int, message: str) -> Response:
    return Response.json({"status": status, "message": message}, status)


def _local_text(moment: datetime, zone: ZoneInfo | timezone) -> str:
    """A naive wall-clock time in `zone`, as the docs print them: `2025-01-01 00:00:00`."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _table_of(rows: list[tuple[int, int, int, int, int, int]]) -> _SessionTable:
    """A table from sorted (start, duration_ms, device, user, team, automated) rows."""
    if not rows:
        return _SessionTable()
    starts, durations, devices, users, teams, automated = zip(*rows, strict=True)
    return _SessionTable(
        array("q", starts),
        array("q", durations),
        array("l", devices),
        array("l", users),
        array("l", teams),
        array("b", automated),
    )


def _same_second(table: _SessionTable, start_s: int) -> tuple[int, int]:
    low = bisect_left(table.starts, start_s)
    return low, bisect_left(table.starts, start_s + 1)


def _session_id(device: int, start: int, seed: int) -> str:
    """A stable, uuid-shaped id for a session (a device has one session per start second)."""
    text = hashlib.blake2b(f"{seed}:{device}:{start}".encode(), digest_size=16).hexdigest()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _numbered(names: Sequence[str], index: int) -> str:
    """The index-th name, numbered once the list runs out."""
    name = names[index % len(names)]
    return name if index < len(names) else f"{name} {index // len(names) + 1}"


def _new_user(rng: random.Random, index: int, teams: int) -> User:
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    last = LAST_NAMES[(index // len(FIRST_NAMES) + index) % len(LAST_NAMES)]
    suffix = "" if index < len(FIRST_NAMES) else str(index // len(FIRST_NAMES))
    return User(
        _uuid(rng), f"{first.title()} {last.title()}", f"{first}.{last}{suffix}@example.com", index % teams
    )


def _new_device(rng: random.Random, index: int) -> Device:
    host, country = HOSTS[index % len(HOSTS)]
    model, os_name = MODELS[rng.randrange(len(MODELS))]
    if os_name == "Android":
        device_id = f"{rng.getrandbits(48):012X}"
    else:
        device_id = f"00008{rng.getrandbits(12):03x}-{rng.getrandbits(64):016X}"
    return Device(device_id, host, country, model, os_name)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())




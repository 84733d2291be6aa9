"""Emulator of the WMSPanel pull API (https://api.wmspanel.com/v1), after its docs and the vendor notes.

It keeps the docs' awkward parts on purpose: credentials travel in the query string, a refusal of
the credentials (or of a caller outside the account's IP whitelist) is a bare 403, every other
failure is HTTP 200 with `{"status": "error", "description": ...}`, days without data and
players or devices nobody used are simply absent, and each day is one object whose keys are the
player or device names, with `date` somewhere among them.

Where the docs are silent the emulator picks one behaviour and says so: the longest range one call
may ask for (`max_range_days`, unlimited by default), what a call past the daily quota gets
(`quota_reply`), the order of the days (`day_order`), the shape of `/server`, of
`show_servers=true` and of `/daily_stats`. The tap must not depend on these picks.

Data is synthetic and deterministic for a seed, and nothing is stored per day: each
(stats kind, data slice, server, day) draws its numbers from its own seeded generator when asked,
so ten years of ten slices cost no memory and a day reads the same on every call. Changes made
between two syncs (`set_day`, `advance_days`) are kept in a small overlay.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from emulators.framework import EmulatorApp, Request, Response

ROUTES = ("players_stats", "devices_stats", "daily_stats")
"""The stats routes, each asked with `from`, `to` and `data_slice`."""

NAME_KEY = {"players_stats": "player", "devices_stats": "device"}
"""The column a long row of each pivoted route names its key in (ground truth for the tap)."""

PLAYERS = (
    "Unknown", "Flash", "Safari", "MSIE", "Chrome", "Firefox", "Edge", "Opera", "VLC", "Android",
    "iOS", "QuickTime", "Roku", "Kodi", "JW Player", "Video.js",
)  # fmt: skip
DEVICES = (
    "Unknown", "Windows", "Linux", "Macintosh", "iPhone", "iPad", "Android", "SmartTV", "Roku",
    "Apple TV", "Chromecast", "PlayStation", "Xbox", "Fire TV",
)  # fmt: skip

PROTOCOL_VIEWER_KEYS = (
    "rtmp_viewers", "hls_viewers", "mpeg_dash_viewers", "rtsp_viewers", "icecast_viewers",
    "srt_viewers", "webrtc_viewers",
)  # fmt: skip
DURATION_KEYS = (
    "duration_less_1_min", "duration_1_5_min", "duration_5_10_min", "duration_10_30_min",
    "duration_30_60_min", "duration_more_60_min",
)  # fmt: skip
DAILY_STATS_KEYS = (
    "viewers", *PROTOCOL_VIEWER_KEYS, "total_view_time", "bytes_out", "bytes_in", *DURATION_KEYS,
    "peak_bandwidth",
)  # fmt: skip
"""Every metric a `/daily_stats` day may hold (protocols nobody used that day are left out).

The names follow the daily-stats push payload as the vendor notes describe it (`viewers`,
per-protocol viewers, `total_view_time`, byte counts, view-duration buckets); `peak_bandwidth`
is one metric more, so tests can see that the tap keeps metrics it has no column for.
"""

QUOTA_REPLIES = ("error", "429")
DAY_ORDERS = ("ascending", "shuffled")

FORBIDDEN_BODY = {"status": "error", "description": "Access denied"}
QUOTA_DESCRIPTION = "API requests limit exceeded: {quota} requests per 24 hours"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
class _Scope(NamedTuple):
    """The data slices a pair of credentials may see, and whether it is a user's pair."""

    slice_ids: list[str]
    user: bool


_KIND_NUMBER = {"players_stats": 1, "devices_stats": 2, "daily_stats": 3, "day_has_data": 4}
_NO_SERVER = -1  # the server index of a whole-slice report


class WMSPanelEmulator(EmulatorApp):
    """The WMSPanel pull API over synthetic, seeded players, devices and daily statistics.

    Options (all keyword, all with defaults):
      client_id, api_key: the account-wide credentials the API accepts.
      user_client_id, user_api_key, user_slices: user-specific credentials, which see only the first
        `user_slices` data slices; with them `data_slice` may be left out of stats calls.
      whitelisted: False answers every call 403, as for a caller outside the IP whitelist.
      data_slices, servers, days, players, devices: size of the synthetic data. Data lies in the
        `days` days up to and including `anchor` (a date or ISO string; default today, UTC).
        `players` and `devices` beyond the built-in names get numbered names.
      data_day_ratio, usage_ratio, zero_ratio: the share of days with data (others are absent),
        of players/devices used on such a day (others are absent), and of used ones reported as 0,
        as the docs' example shows.
      max_range_days: longest `from`..`to` range one call may ask for; longer ones get a
        200-with-error body. None (the default) accepts any range: the docs are silent.
      daily_quota, quota_reply: calls allowed per account before every call is refused, and how:
        "error" (200 with an error body) or "429".
      day_order: "ascending" as in the docs' examples, or "shuffled".
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        latency: float = 0.0,
        client_id: str = "test-client-id",
        api_key: str = "test-api-key",
        user_client_id: str = "test-user-client-id",
        user_api_key: str = "test-user-api-key",
        user_slices: int = 1,
        whitelisted: bool = True,
        data_slices: int = 3,
        servers: int = 4,
        days: int = 30,
        anchor: str | dt.date | None = None,
        players: int = 8,
        devices: int = 6,
        data_day_ratio: float = 0.85,
        usage_ratio: float = 0.7,
        zero_ratio: float = 0.05,
        max_range_days: int | None = None,
        daily_quota: int = 15_000,
        quota_reply: str = "error",
        day_order: str = "ascending",
    ) -> None:
        super().__init__(seed=seed, latency=latency)
        if min(data_slices, servers, days, players, devices) < 1:
            raise ValueError("data_slices, servers, days, players and devices must be at least 1")
        for name, ratio in (("data_day_ratio", data_day_ratio), ("usage_ratio", usage_ratio), ("zero_ratio", zero_ratio)):
            if not 0 <= ratio <= 1:
                raise ValueError(f"{name} must lie between 0 and 1, not {ratio}")
        if max_range_days is not None and max_range_days < 1:
            raise ValueError("max_range_days must be at least 1 (or None for no limit)")
        if quota_reply not in QUOTA_REPLIES:
            raise ValueError(f"quota_reply must be one of {QUOTA_REPLIES}, not {quota_reply!r}")
        if day_order not in DAY_ORDERS:
            raise ValueError(f"day_order must be one of {DAY_ORDERS}, not {day_order!r}")
        self.client_id = client_id
        self.api_key = api_key
        self.user_client_id = user_client_id
        self.user_api_key = user_api_key
        self.whitelisted = whitelisted
        self.anchor = _as_date(anchor) if anchor is not None else dt.datetime.now(dt.timezone.utc).date()
        self.days = days
        self.data_day_ratio = data_day_ratio
        self.usage_ratio = usage_ratio
        self.zero_ratio = zero_ratio
        self.max_range_days = max_range_days
        self.daily_quota = daily_quota
        self.quota_reply = quota_reply
        self.day_order = day_order
        self.quota_used = 0
        self.names = {
            "players_stats": _names(PLAYERS, players, "Player"),
            "devices_stats": _names(DEVICES, devices, "Device"),
        }
        rng = random.Random(seed)
        self._servers = [_server(rng, index) for index in range(servers)]
        self._server_index = {server["id"]: index for index, server in enumerate(self._servers)}
        self._slices = [_data_slice(rng, index, self._servers) for index in range(data_slices)]
        self._slice_index = {data_slice["id"]: index for index, data_slice in enumerate(self._slices)}
        self._user_slice_ids = [data_slice["id"] for data_slice in self._slices[: max(user_slices, 0)]]
        # (route, slice id, server id or None, "YYYY-MM-DD") -> the day's metrics, or None: absent.
        self._overlay: dict[tuple[str, str, str | None, str], dict[str, int] | None] = {}

    # Ground truth for tests ------------------------------------------------------------------

    @property
    def first_day(self) -> dt.date:
        """The oldest day that can hold data."""
        return self.anchor - dt.timedelta(days=self.days - 1)

    def data_slice_ids(self) -> list[str]:
        """Ids of every data slice of the account, in the order `/data_slices` lists them."""
        return [data_slice["id"] for data_slice in self._slices]

    def data_slices(self) -> list[dict[str, Any]]:
        """The data slices with their server ids, as `/data_slices?show_servers=true` serves them."""
        return [dict(data_slice, server_ids=list(data_slice["server_ids"])) for data_slice in self._slices]

    def servers(self) -> list[dict[str, Any]]:
        """The servers, as `/server` serves them."""
        return [dict(server) for server in self._servers]

    def day_objects(
        self,
        route: str,
        data_slice_id: str,
        first: dt.date | None = None,
        last: dt.date | None = None,
        server_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """The `stats` of one route for one slice, days in ascending order, as served.

        Each object is `{"date": ..., <metric or name>: <number>, ...}`; days without data are left out.
        """
        return [
            {"date": day, **metrics}
            for day, metrics in self._days(route, data_slice_id, server_id, first, last)
        ]

    def truth_long_rows(
        self,
        route: str,
        data_slice_id: str | None = None,
        first: dt.date | None = None,
        last: dt.date | None = None,
        server_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Players or devices stats as long rows (`data_slice_id`, `date`, name, `connections`).

        One row per name a day reports, zeros included: what a tap that un-pivots the days
        faithfully emits. Slices in listing order, then days, then names in catalog order.
        """
        name_key = NAME_KEY[route]
        slice_ids = self.data_slice_ids() if data_slice_id is None else [data_slice_id]
        return [
            {"data_slice_id": slice_id, "date": day, name_key: name, "connections": count}
            for slice_id in slice_ids
            for day, counts in self._days(route, slice_id, server_id, first, last)
            for name, count in counts.items()
        ]

    def long_row_count(self, route: str) -> int:
        """Number of long rows a full read of `route` gives, over every slice (for benchmarks)."""
        return sum(
            len(counts) for slice_id in self.data_slice_ids() for _, counts in self._days(route, slice_id, None, None, None)
        )

    # Changes between syncs -------------------------------------------------------------------

    def set_day(
        self,
        route: str,
        data_slice_id: str,
        day: dt.date | str,
        metrics: Mapping[str, int] | None,
        server_id: str | None = None,
    ) -> None:
        """Replace what `route` reports for one slice and day; None makes the day absent.

        This is a day still filling (its numbers grow), or late data arriving for an old day.
        """
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, not {route!r}")
        key = (route, data_slice_id, server_id, _as_date(day).isoformat())
        with self._lock:
            self._overlay[key] = None if metrics is None else dict(metrics)

    def advance_days(self, days: int = 1) -> None:
        """Move the last day with data on by `days`, as time passes between two syncs."""
        self.anchor += dt.timedelta(days=days)
        self.days += days

    def reset_quota(self) -> None:
        """Start a new quota day (the real one resets at 00:00 UTC)."""
        with self._lock:
            self.quota_used = 0

    # Serving ---------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Credentials and whitelist first (403), then the quota, then the route."""
        query = {name: values[-1] for name, values in request.query.items()}
        scope = self._scope(query)
        if scope is None or not self.whitelisted:
            return Response.json(FORBIDDEN_BODY, 403)
        with self._lock:
            self.quota_used += 1
            over_quota = self.quota_used > self.daily_quota
        if over_quota:
            status = 429 if self.quota_reply == "429" else 200
            return _error(QUOTA_DESCRIPTION.format(quota=self.daily_quota), status)
        if request.method not in ("GET", "HEAD"):
            return _error("Method not allowed", 405)
        match request.path.rstrip("/").split("/"):
            case ["", "v1", "data_slices"]:
                return self._data_slices_response(scope, show_servers=query.get("show_servers") == "true")
            case ["", "v1", "server"]:
                return Response.json({"status": "Ok", "servers": self.servers()})
            case ["", "v1", route] if route in ROUTES:
                return self._stats_response(route, query, scope)
        return _error("Unknown API method", 404)

    def _scope(self, query: Mapping[str, str]) -> _Scope | None:
        """What the credentials may see, or None when they are wrong."""
        client_id, api_key = query.get("client_id"), query.get("api_key")
        if client_id == self.client_id and api_key == self.api_key:
            return _Scope(self.data_slice_ids(), user=False)
        if client_id == self.user_client_id and api_key == self.user_api_key:
            return _Scope(list(self._user_slice_ids), user=True)
        return None

    def _data_slices_response(self, scope: _Scope, *, show_servers: bool) -> Response:
        listed = []
        for data_slice in self._slices:
            if data_slice["id"] in scope.slice_ids:
                entry = {"id": data_slice["id"], "name": data_slice["name"]}
                if show_servers:
                    entry["server_ids"] = list(data_slice["server_ids"])
                listed.append(entry)
        return Response.json({"status": "Ok", "data_slices": listed})

    def _stats_response(self, route: str, query: Mapping[str, str], scope: _Scope) -> Response:
        """One route's days for a slice and an inclusive date range, or the error body the API gives."""
        if "from" not in query or "to" not in query:
            return _error("Parameters 'from' and 'to' are required")
        first, last = _parse_day(query["from"]), _parse_day(query["to"])
        if first is None or last is None:
            return _error("Wrong date format, use YYYY-MM-DD")
        if first > last:
            return _error("Parameter 'from' must not be later than 'to'")
        if self.max_range_days is not None and (last - first).days + 1 > self.max_range_days:
            return _error(f"Date range is too long: at most {self.max_range_days} days per request")
        data_slice_id = query.get("data_slice")
        if not data_slice_id:
            if not scope.user or not scope.slice_ids:  # account-wide credentials must name a slice
                return _error("Parameter 'data_slice' is required")
            data_slice_id = scope.slice_ids[0]  # the user's own slice
        if data_slice_id not in scope.slice_ids:
            return _error("Data slice not found")
        server_id = query.get("server") or None
        if route == "daily_stats":
            server_id = None  # only players and devices stats are documented with `server`
        elif server_id is not None and server_id not in self._server_index:
            return _error("Server not found")
        days = self.day_objects(route, data_slice_id, first, last, server_id)
        if self.day_order == "shuffled":
            random.Random(f"{self.seed}:{route}:{data_slice_id}:{first}:{last}").shuffle(days)
        return Response.json({"status": "Ok", "stats": [self._served_day(day) for day in days]})

    def _served_day(self, day: dict[str, Any]) -> dict[str, Any]:
        """The day object with its keys in a seeded order, `date` among them as in the docs."""
        keys = list(day)
        random.Random(f"{self.seed}:{day['date']}:{len(keys)}").shuffle(keys)
        return {key: day[key] for key in keys}

    # Synthetic data --------------------------------------------------------------------------

    def _days(
        self,
        route: str,
        data_slice_id: str,
        server_id: str | None,
        first: dt.date | None,
        last: dt.date | None,
    ) -> Iterator[tuple[str, dict[str, int]]]:
        """(day, metrics) for each day with data of one slice in [first, last], ascending.

        Generated days and the days `set_day` changed are merged, both being in day order.
        """
        slice_index = self._slice_index.get(data_slice_id)
        if slice_index is None:
            return
        if server_id is not None and server_id not in self._slices[slice_index]["server_ids"]:
            return  # a server outside the slice has nothing in it
        server_index = _NO_SERVER if server_id is None else self._server_index[server_id]
        first = first or self.first_day
        last = last or self.anchor
        span = (first.isoformat(), last.isoformat())
        with self._lock:
            changed = sorted(
                (key[3], metrics)
                for key, metrics in self._overlay.items()
                if key[:3] == (route, data_slice_id, server_id) and span[0] <= key[3] <= span[1]
            )
        changed_days = {day for day, _ in changed}
        low = max(first, self.first_day).toordinal()
        high = min(last, self.anchor).toordinal()
        generated = (
            (day, self._generated_day(route, slice_index, server_index, ordinal))
            for ordinal in range(low, high + 1)
            if (day := dt.date.fromordinal(ordinal).isoformat()) not in changed_days
        )
        for day, metrics in heapq.merge(generated, changed, key=lambda pair: pair[0]):
            if metrics:
                yield day, metrics

    def _generated_day(self, route: str, slice_index: int, server_index: int, ordinal: int) -> dict[str, int] | None:
        """The synthetic metrics of one day, or None when the day has no data."""
        has_data = random.Random(self._draw_key("day_has_data", slice_index, server_index, ordinal))
        if has_data.random() >= self.data_day_ratio:
            return None
        rng = random.Random(self._draw_key(route, slice_index, server_index, ordinal))
        if route == "daily_stats":
            return _daily_stats(rng)
        names = self.names[route]
        counts: dict[str, int] = {}
        for rank, name in enumerate(names):
            if rng.random() < self.usage_ratio:
                zero = rng.random() < self.zero_ratio
                counts[name] = 0 if zero else rng.randint(1, 2000 // (rank + 1) + 1)
        if not counts:  # a day with data has at least one player or device
            counts[names[rng.randrange(len(names))]] = rng.randint(1, 50)
        return counts

    def _draw_key(self, kind: str, slice_index: int, server_index: int, ordinal: int) -> int:
        """One integer per (seed, kind, slice, server, day): hashing ints is stable across runs."""
        return hash((self.seed, _KIND_NUMBER[kind], slice_index, server_index, ordinal))


def _daily_stats(rng: random.Random) -> dict[str, int]:
    """One day of `/daily_stats`: viewers split over protocols and view durations, time and bytes."""
    viewers = rng.randint(1, 5000)
    day: dict[str, int] = {"viewers": viewers}
    remaining = viewers
    for key in PROTOCOL_VIEWER_KEYS[:-1]:
        share = rng.randint(0, remaining) if rng.random() < 0.6 else 0
        if share:
            day[key] = share
        remaining -= share
    if remaining:
        day[PROTOCOL_VIEWER_KEYS[-1]] = remaining
    seconds_per_view = rng.randint(30, 3600)
    day["total_view_time"] = viewers * seconds_per_view
    day["bytes_out"] = day["total_view_time"] * rng.randint(50_000, 600_000)
    day["bytes_in"] = rng.randint(10**6, 10**10)
    remaining = viewers
    for key in DURATION_KEYS[:-1]:
        share = rng.randint(0, remaining)
        day[key] = share
        remaining -= share
    day[DURATION_KEYS[-1]] = remaining
    day["peak_bandwidth"] = rng.randint(10**5, 10**9)
    return day


def _names(catalog: tuple[str, ...], count: int, prefix: str) -> tuple[str, ...]:
    """`count` names: the catalog's first ones, then numbered ones for larger volumes."""
    extra = (f"{prefix} {number}" for number in range(len(catalog) + 1, count + 1))
    return (*catalog[:count], *extra)


def _object_id(rng: random.Random) -> str:
    """An id like the docs' "53e03c9978a6fc8596000001": 24 hex digits."""
    return f"{rng.getrandbits(96):024x}"


def _server(rng: random.Random, index: int) -> dict[str, Any]:
    kind = "nimble" if index % 3 else "wowza"
    return {
        "id": _object_id(rng),
        "name": f"{kind}-{index + 1:02d}",
        "ip": f"10.0.{index // 250}.{index % 250 + 1}",
        "type": kind,
        "online": rng.random() < 0.9,
    }


def _data_slice(rng: random.Random, index: int, servers: list[dict[str, Any]]) -> dict[str, Any]:
    """The first slice covers every server (the docs' "Full data slice"); the others some of them."""
    if index == 0:
        server_ids = [server["id"] for server in servers]
        name = "Full data slice"
    else:
        chosen = sorted(rng.sample(range(len(servers)), rng.randint(1, len(servers))))
        server_ids = [servers[position]["id"] for position in chosen]
        name = f"DS{index + 1}"
    return {"id": _object_id(rng), "name": name, "server_ids": server_ids}


def _error(description: str, status: int = 200) -> Response:
    """The API's failure body; HTTP 200 unless the status says otherwise."""
    return Response.json({"status": "error", "description": description}, status)


def _parse_day(text: str) -> dt.date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _as_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value[:10])


__all__ = ["DAILY_STATS_KEYS", "DEVICES", "NAME_KEY", "PLAYERS", "ROUTES", "WMSPanelEmulator"]

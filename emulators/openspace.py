"""Emulator of the OpenSpace Usage API (https://api.us.openspace.ai, https://api.eu.openspace.ai).

It follows the docs and the vendor notes, awkward parts included: reports are Spring Data pages
(`content` plus `totalPages`, `last`, ...) counted from page 0; the server silently CAPS `size`
(`max_page_size`), as Spring does, so a client that trusts `size` loses records; `sort=field,ASC|DESC`
is repeatable; a missing or wrong `api-key` header gets Spring Boot's JSON error body (`timestamp`,
`status`, `error`, `message`, `path`) with 401, a key without the Usage API product 403.

Where the docs are silent the emulator picks one behaviour, and several are options so the tests can
prove the tap does not depend on them: the timestamp format (`timestamp_format`), whether `sort` is
honoured at all (`honour_sort`), and whether memberships need `orgs=` (`memberships_require_orgs`).
Other picks: an unknown sort property answers 400; page and size that do not parse fall back to the
defaults (as Spring's resolver does); ties in a sort keep the stored order.

Data is synthetic and deterministic for a seed. 360 videos, the one report that grows large, are kept
column by column (about 20 bytes a video), so a million of them take seconds to generate and little
memory; records are built only for the page being served.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulators.clock import anchor_instant, as_utc, from_epoch_ms, to_epoch_ms
from emulators.framework import EmulatorApp, Request, Response

API_PREFIX = "/api/external/v1/reports/"
REPORTS = ("360-videos", "sites", "memberships", "field-notes")
TIMESTAMP_FORMATS = ("instant", "offset", "local", "epoch_ms")
"""`instant`: Jackson's Instant ("2024-05-01T12:00:00Z", ".250Z" when there are milliseconds);
`offset`: "2024-05-01T12:00:00.250+00:00"; `local`: a zoneless LocalDateTime in UTC
("2024-05-01T12:00:00.25"); `epoch_ms`: a number of milliseconds."""

SITE_ROLES = ("Viewer", "Editor", "Site Admin")
ORG_ADMIN = "Org Admin"
SITE_STATUSES = ("ACTIVE", "ACTIVE", "ACTIVE", "ARCHIVED")
NOTE_STATUSES = ("OPEN", "IN_PROGRESS", "RESOLVED", "CLOSED")
NOTE_TOPICS = ("Missing firestop", "Drywall damage", "Conduit clash", "Punch item", "Water stain", "Check rebar")
SITE_WORDS = ("Harbor", "Maple", "Summit", "Riverside", "Granite", "Cedar", "Union", "Lakeside")
SITE_KINDS = ("Tower", "Hospital", "Campus", "Depot", "Plaza", "Lofts")
FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivo", "Jia", "Kofi", "Lena")
LAST_NAMES = ("Silva", "Okafor", "Novak", "Reyes", "Tanaka", "Berg", "Moreau", "Khan", "Walsh", "Ito")

DEFAULT_PAGE_SIZE = 20  # Spring Data's default when `size` is absent or unreadable
TIE_SHARE = 0.05  # share of captures that start in the same millisecond as the one before

_DAY_MS = 86_400_000
_MASK64 = (1 << 64) - 1


# Reports -----------------------------------------------------------------------------------------


class _Report:
    """One report's records: fields in served order, raw values (times as epoch ms), sort keys.

    Stored rows are dicts; subclasses with many rows override `raw` and `__len__`.
    """

    name: str = ""
    fields: tuple[str, ...] = ()
    time_fields: frozenset[str] = frozenset()
    #: Sort properties that are not field names (`email` is seen in the vendor's own requests).
    sort_aliases: dict[str, str] = {}  # noqa: RUF012

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows = rows or []
        self.version = 0  # bumped on every change, so cached sort orders are dropped

    def __len__(self) -> int:
        return len(self.rows)

    def raw(self, position: int) -> dict[str, Any]:
        """The stored record at `position`, times as epoch milliseconds."""
        return self.rows[position]

    def sort_property(self, name: str) -> str | None:
        """The field a sort property names, or None when the report has no such property."""
        name = self.sort_aliases.get(name, name)
        return name if name in self.fields else None

    def sort_key(self, field_name: str) -> Callable[[int], Any]:
        """Key of a position for sorting on one field; nulls sort after values, as in PostgreSQL."""

        def key(position: int) -> tuple[bool, Any]:
            value = self.raw(position)[field_name]
            return value is None, value

        return key


class _Videos(_Report):
    """360 videos, column by column; ids are derived from the seed and the position."""

    name = "360-videos"
    fields = ("videoId", "videoStart", "videoNumberOfFrames", "siteId", "siteName", "userEmail", "week")
    time_fields = frozenset({"videoStart"})

    def __init__(self, seed: int, sites: Sequence[dict[str, Any]], users: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        self.seed = seed
        self.sites = sites
        self.users = users
        self.starts_ms = array("q")
        self.site_indexes = array("I")
        self.user_indexes = array("I")
        self.frame_counts = array("I")

    def __len__(self) -> int:
        return len(self.starts_ms)

    def append(self, start_ms: int, site_index: int, user_index: int, frames: int) -> None:
        """Store one capture (callers bump `version`)."""
        self.starts_ms.append(start_ms)
        self.site_indexes.append(site_index)
        self.user_indexes.append(user_index)
        self.frame_counts.append(frames)

    def video_id(self, position: int) -> str:
        """A UUID-shaped id, unique per position and seed, computed rather than stored."""
        return _uuid_text(_mix(self.seed * 0x9E37 + 2 * position), _mix(self.seed * 0x9E37 + 2 * position + 1))

    def raw(self, position: int) -> dict[str, Any]:
        site = self.sites[self.site_indexes[position]]
        start_ms = self.starts_ms[position]
        iso_year, iso_week, _ = from_epoch_ms(start_ms).isocalendar()
        return {
            "videoId": self.video_id(position),
            "videoStart": start_ms,
            "videoNumberOfFrames": self.frame_counts[position],
            "siteId": site["siteId"],
            "siteName": site["siteName"],
            "userEmail": self.users[self.user_indexes[position]]["userEmail"],
            "week": f"{iso_year}-W{iso_week:02d}",
        }

    def sort_key(self, field_name: str) -> Callable[[int], Any]:
        # The common sorts read one column, not a whole record per position.
        if field_name == "videoStart":
            return self.starts_ms.__getitem__
        if field_name == "videoNumberOfFrames":
            return self.frame_counts.__getitem__
        if field_name == "videoId":
            return self.video_id
        return super().sort_key(field_name)


class _Sites(_Report):
    name = "sites"
    fields = ("siteId", "siteName", "siteStatus", "siteCreated", "orgId", "orgName")
    time_fields = frozenset({"siteCreated"})


class _Memberships(_Report):
    name = "memberships"
    fields = ("userId", "userEmail", "userFullName", "role", "orgId", "orgName", "siteId", "siteName")
    sort_aliases = {"email": "userEmail", "name": "userFullName"}  # noqa: RUF012


class _FieldNotes(_Report):
    name = "field-notes"
    fields = ("id", "description", "status", "modifiedAt", "siteId", "siteName")
    time_fields = frozenset({"modifiedAt"})


@dataclass(frozen=True)
class _PageQuery:
    """What a report request asks for, as Spring's argument resolvers read it."""

    page: int
    size: int
    sort: tuple[tuple[str, bool], ...]  # (field, descending)
    orgs: frozenset[str] | None = None
    unknown_sort: list[str] = field(default_factory=list)


# The emulator ------------------------------------------------------------------------------------


class OpenSpaceEmulator(EmulatorApp):
    """The OpenSpace Usage API over synthetic, seeded reports.

    Options (all keyword, all with defaults):
      api_keys: accepted `api-key` header values; unlicensed_keys: keys that exist but whose account
        lacks the Usage API product (403).
      orgs, sites, users, videos, field_notes: size of the synthetic data (memberships follow from
        users and sites: an org admin per seven users, the others on one to three sites).
      max_page_size: the server's silent cap on `size` (Spring's own default is 2000; this one is
        lower so that the tap's default `page_size` of 1000 is capped too).
      anchor, span_days: captures lie in [anchor - span_days, anchor]; anchor defaults to now (UTC,
        whole seconds) and may be a datetime or an ISO 8601 string.
      timestamp_format: one of TIMESTAMP_FORMATS, for every time field.
      honour_sort: False ignores `sort` and serves the stored order (capture order for videos).
      memberships_require_orgs: True answers memberships without `orgs=` with Spring's 400.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        latency: float = 0.0,
        api_keys: Iterable[str] | str = ("test-openspace-key",),
        unlicensed_keys: Iterable[str] | str = ("no-usage-api-key",),
        orgs: int = 2,
        sites: int = 6,
        users: int = 14,
        videos: int = 300,
        field_notes: int = 40,
        max_page_size: int = 500,
        anchor: str | dt.datetime | None = None,
        span_days: float = 90,
        timestamp_format: str = "instant",
        honour_sort: bool = True,
        memberships_require_orgs: bool = False,
    ) -> None:
        super().__init__(seed=seed, latency=latency)
        if timestamp_format not in TIMESTAMP_FORMATS:
            raise ValueError(f"timestamp_format must be one of {TIMESTAMP_FORMATS}, not {timestamp_format!r}")
        if max_page_size < 1:
            raise ValueError("max_page_size must be at least 1")
        if min(orgs, sites, users) < 1 or min(videos, field_notes) < 0:
            raise ValueError("orgs, sites and users must be >= 1; videos and field_notes >= 0")
        if span_days <= 0:
            raise ValueError("span_days must be positive")
        self.api_keys = _string_set(api_keys)
        self.unlicensed_keys = _string_set(unlicensed_keys)
        self.max_page_size = max_page_size
        self.timestamp_format = timestamp_format
        self.honour_sort = honour_sort
        self.memberships_require_orgs = memberships_require_orgs
        self.anchor = anchor_instant(anchor)
        self.span_start = self.anchor - dt.timedelta(days=span_days)
        self._data_lock = threading.Lock()
        self._orders: dict[tuple[str, tuple[tuple[str, bool], ...], int], array] = {}
        rng = random.Random(seed)
        org_list = [{"orgId": _uuid(rng), "orgName": f"Builder Co {index + 1}"} for index in range(orgs)]
        self._sites = _Sites(self._generate_sites(rng, org_list, sites))
        user_list = self._generate_users(rng, org_list, users)
        self._memberships = _Memberships(self._generate_memberships(rng, user_list))
        self._videos = _Videos(seed, self._sites.rows, user_list)
        self._generate_videos(rng, user_list, videos)
        self._field_notes = _FieldNotes(self._generate_field_notes(rng, field_notes))
        self._reports: dict[str, _Report] = {
            report.name: report for report in (self._videos, self._sites, self._memberships, self._field_notes)
        }

    # Synthetic data ----------------------------------------------------------------------------

    def _generate_sites(self, rng: random.Random, orgs: list[dict[str, str]], count: int) -> list[dict[str, Any]]:
        span_start_ms = to_epoch_ms(self.span_start)
        return [
            {
                "siteId": _uuid(rng),
                "siteName": f"{rng.choice(SITE_WORDS)} {rng.choice(SITE_KINDS)} {index + 1}",
                "siteStatus": rng.choice(SITE_STATUSES),
                "siteCreated": span_start_ms - rng.randrange(365 * _DAY_MS),
                **orgs[index % len(orgs)],
            }
            for index in range(count)
        ]

    @staticmethod
    def _generate_users(rng: random.Random, orgs: list[dict[str, str]], count: int) -> list[dict[str, Any]]:
        users = []
        for index in range(count):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            users.append(
                {
                    "userId": _uuid(rng),
                    "userEmail": f"{first}.{last}{index + 1}@example.com".lower(),
                    "userFullName": f"{first} {last}",
                    **orgs[index % len(orgs)],
                }
            )
        return users

    def _generate_memberships(self, rng: random.Random, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every seventh user administers the organisation; the others work on one to three of its sites."""
        memberships = []
        for index, user in enumerate(users):
            person = {key: user[key] for key in ("userId", "userEmail", "userFullName")}
            org = {"orgId": user["orgId"], "orgName": user["orgName"]}
            org_sites = [site for site in self._sites.rows if site["orgId"] == user["orgId"]]
            if index % 7 == 0 or not org_sites:
                memberships.append({**person, "role": ORG_ADMIN, **org, "siteId": None, "siteName": None})
                continue
            for site in rng.sample(org_sites, k=min(len(org_sites), rng.randint(1, 3))):
                site_part = {"siteId": site["siteId"], "siteName": site["siteName"]}
                memberships.append({**person, "role": rng.choice(SITE_ROLES), **org, **site_part})
        return memberships

    def _generate_videos(self, rng: random.Random, users: list[dict[str, Any]], count: int) -> None:
        """Captures spread evenly over the span, oldest first; some share a start, as do the newest two.

        Half start on a whole second, so served times vary in their fraction digits.
        """
        span_start_ms = to_epoch_ms(self.span_start)
        span_ms = to_epoch_ms(self.anchor) - span_start_ms
        slot_ms = max(span_ms // max(count, 1), 1)
        users_of_org: dict[str, list[int]] = {}
        for index, user in enumerate(users):
            users_of_org.setdefault(user["orgId"], []).append(index)
        sites = self._sites.rows
        previous_ms = span_start_ms
        for position in range(count):
            if position and (rng.random() < TIE_SHARE or position == count - 1):
                start_ms = previous_ms
            else:
                start_ms = span_start_ms + position * slot_ms + rng.randrange(slot_ms)
                if rng.random() < 0.5:  # noqa: PLR2004
                    start_ms -= start_ms % 1000
                start_ms = max(start_ms, previous_ms)
            site_index = rng.randrange(len(sites))
            user_index = rng.choice(users_of_org[sites[site_index]["orgId"]])
            self._videos.append(start_ms, site_index, user_index, rng.randint(60, 4000))
            previous_ms = start_ms

    def _generate_field_notes(self, rng: random.Random, count: int) -> list[dict[str, Any]]:
        span_start_ms = to_epoch_ms(self.span_start)
        span_ms = to_epoch_ms(self.anchor) - span_start_ms
        notes = []
        for index in range(count):
            site = rng.choice(self._sites.rows)
            notes.append(
                {
                    "id": 100_001 + index,  # a number, unlike the other reports' ids
                    "description": f"{rng.choice(NOTE_TOPICS)} near grid {rng.choice('ABCDEFG')}{rng.randint(1, 20)}",
                    "status": rng.choice(NOTE_STATUSES),
                    "modifiedAt": span_start_ms + rng.randrange(span_ms),
                    "siteId": site["siteId"],
                    "siteName": site["siteName"],
                }
            )
        return notes

    def add_videos(self, starts: Iterable[dt.datetime | str]) -> list[dict[str, Any]]:
        """Add one capture per start time (naive or "Z" times are UTC); return them as served.

        This is new data arriving between syncs, at any time: newer than everything, or amid old data.
        """
        added = []
        with self._data_lock:
            rng = random.Random(f"{self.seed}:{len(self._videos)}")
            for start in starts:
                moment = as_utc(
                    dt.datetime.fromisoformat(start.replace("Z", "+00:00")) if isinstance(start, str) else start
                )
                site_index = rng.randrange(len(self._sites))
                self._videos.append(
                    to_epoch_ms(moment), site_index, rng.randrange(len(self._videos.users)), rng.randint(60, 4000)
                )
                added.append(len(self._videos) - 1)
            self._videos.version += 1
        return [self._served(self._videos, position) for position in added]

    # Ground truth for tests --------------------------------------------------------------------

    def truth(self, report: str, orgs: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Every record of `report` as served, in stored order (videos: capture order)."""
        table = self._reports[report]
        wanted = None if orgs is None else set(orgs)
        records = (self._served(table, position) for position in range(len(table)))
        return [record for record in records if wanted is None or record.get("orgId") in wanted]

    def record_count(self, report: str) -> int:
        """How many records `report` holds; cheap even for millions of videos."""
        return len(self._reports[report])

    def org_ids(self) -> list[str]:
        """The organisations' ids, in the order their sites were made."""
        return list(dict.fromkeys(site["orgId"] for site in self._sites.rows))

    def page_size_for(self, requested: int | None) -> int:
        """The page size the server really uses when a client asks for `requested`."""
        if requested is None or requested < 1:
            return min(DEFAULT_PAGE_SIZE, self.max_page_size)
        return min(requested, self.max_page_size)

    def newest_video_start_ms(self) -> int:
        """The latest capture start, in epoch milliseconds."""
        return max(self._videos.starts_ms)

    # Serving -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Authenticate first (as Spring Security does, even for unknown paths), then route."""
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if not request.path.startswith(API_PREFIX):
            return _spring_error(404, f"No static resource {request.path.lstrip('/')}.", request.path)
        table = self._reports.get(request.path[len(API_PREFIX) :])
        if table is None:
            return _spring_error(404, f"No static resource {request.path.lstrip('/')}.", request.path)
        if request.method not in ("GET", "HEAD"):
            return _spring_error(405, f"Request method '{request.method}' is not supported", request.path)
        query = self._page_query(table, request)
        if query.unknown_sort:
            kind = table.name.replace("-", " ")
            message = f"No property '{query.unknown_sort[0]}' found for type '{kind}'"
            return _spring_error(400, message, request.path)
        if table is self._memberships and self.memberships_require_orgs and not query.orgs:
            message = "Required request parameter 'orgs' for method parameter type List is not present"
            return _spring_error(400, message, request.path)
        body = self._page_body(table, query)
        response = Response.json(body)
        response.past_last_page = query.page >= max(body["totalPages"], 1)  # pages count from 0
        return response

    def _refusal(self, request: Request) -> Response | None:
        """None for a licensed key; Spring Boot's 401 or 403 body otherwise."""
        key = request.header("api-key")
        if key in self.api_keys:
            return None
        if key in self.unlicensed_keys:
            return _spring_error(403, "The Usage API is not enabled for this account", request.path)
        return _spring_error(401, "Invalid or missing API key", request.path)

    def _page_query(self, table: _Report, request: Request) -> _PageQuery:
        """Read page, size, sort and orgs the way Spring does: bad numbers fall back, size is capped."""
        page = _first_int(request.query.get("page"))
        size = _first_int(request.query.get("size"))
        sort: list[tuple[str, bool]] = []
        unknown: list[str] = []
        for value in request.query.get("sort", []):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            descending = False
            if parts and parts[-1].lower() in ("asc", "desc"):
                descending = parts.pop().lower() == "desc"
            for name in parts:
                field_name = table.sort_property(name)
                if field_name is None:
                    unknown.append(name)
                else:
                    sort.append((field_name, descending))
        orgs = {org for value in request.query.get("orgs", []) for org in value.split(",") if org}
        return _PageQuery(
            page=max(page or 0, 0),
            size=self.page_size_for(size),
            sort=tuple(sort),
            orgs=frozenset(orgs) or None,
            unknown_sort=unknown,
        )

    def _page_body(self, table: _Report, query: _PageQuery) -> dict[str, Any]:
        """One Spring Data page, with the fields Spring's PageImpl serialises."""
        order: Sequence[int] = self._order(table, query.sort if self.honour_sort else ())
        if query.orgs is not None and "orgId" in table.fields:  # other reports ignore `orgs`
            order = [position for position in order if table.raw(position).get("orgId") in query.orgs]
        total = len(order)
        first = query.page * query.size
        content = [self._served(table, position) for position in order[first : first + query.size]]
        total_pages = math.ceil(total / query.size)
        sort_state = {"empty": not query.sort, "sorted": bool(query.sort), "unsorted": not query.sort}
        return {
            "content": content,
            "pageable": {
                "pageNumber": query.page,
                "pageSize": query.size,
                "sort": sort_state,
                "offset": first,
                "paged": True,
                "unpaged": False,
            },
            "last": query.page + 1 >= total_pages,
            "totalPages": total_pages,
            "totalElements": total,
            "first": query.page == 0,
            "size": query.size,
            "number": query.page,
            "sort": sort_state,
            "numberOfElements": len(content),
            "empty": not content,
        }

    def _order(self, table: _Report, sort: tuple[tuple[str, bool], ...]) -> Sequence[int]:
        """Positions in the order `sort` asks; ties keep stored order. Cached until the data changes."""
        if not sort:
            return range(len(table))
        cache_key = (table.name, sort, table.version)
        order = self._orders.get(cache_key)
        if order is None:
            positions = list(range(len(table)))
            for field_name, descending in reversed(sort):  # stable sorts, least significant key first
                positions.sort(key=table.sort_key(field_name), reverse=descending)
            order = array("I", positions)
            with self._data_lock:
                if len(self._orders) >= 8:  # noqa: PLR2004
                    self._orders.clear()
                self._orders[cache_key] = order
        return order

    def _served(self, table: _Report, position: int) -> dict[str, Any]:
        """A stored record as the API sends it: every field, times in `timestamp_format`."""
        raw = table.raw(position)
        record = {name: raw.get(name) for name in table.fields}
        for name in table.time_fields:
            epoch_ms = record[name]
            if epoch_ms is not None:
                record[name] = _format_time(epoch_ms, self.timestamp_format)
        return record


# Helpers -----------------------------------------------------------------------------------------


def _spring_error(status: int, message: str, path: str) -> Response:
    """Spring Boot's default JSON error body."""
    reasons = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    body = {"timestamp": now, "status": status, "error": reasons[status], "message": message, "path": path}
    return Response.json(body, status)


def _format_time(epoch_ms: int, timestamp_format: str) -> str | int:
    """An epoch-millisecond time as the chosen Jackson serialisation writes it."""
    if timestamp_format == "epoch_ms":
        return epoch_ms
    seconds, millis = divmod(epoch_ms, 1000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if timestamp_format == "instant":
        return text + (f".{millis:03d}" if millis else "") + "Z"
    if timestamp_format == "offset":
        return f"{text}.{millis:03d}+00:00"
    return text + (f".{millis:03d}".rstrip("0") if millis else "")  # local: fewest digits


def _first_int(values: list[str] | None) -> int | None:
    """The first value as an int, or None when absent or not a number (Spring then uses its default)."""
    if not values:
        return None
    try:
        return int(values[0])
    except ValueError:
        return None


def _mix(value: int) -> int:
    """splitmix64: a well-spread 64-bit number from any integer, for ids computed on demand."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _uuid_text(high: int, low: int) -> str:
    """Two 64-bit numbers as a UUID-shaped string."""
    digits = f"{high:016x}{low:016x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _uuid(rng: random.Random) -> str:
    return _uuid_text(rng.getrandbits(64), rng.getrandbits(64))


def _string_set(values: Iterable[str] | str) -> frozenset[str]:
    """One string or several, so `--option api_keys=abc` means one key, not three letters."""
    return frozenset([values] if isinstance(values, str) else values)






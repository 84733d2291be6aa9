"""Emulator of the Seemetrix / 3DiVi REST API (https://analytics.3divi.ru/api), after its docs.

Every route answers from one set of synthetic viewing sessions (a face in front of a device's
camera, with age, gender, attention, emotions and the movies that played), so the hourly
statistics, the v2 trees, the raw sessions and the counters tell the same story.

It keeps the docs' awkward parts: the key travels as `?key=`, a wrong key is 401 and a wrong user
or device id 403, a path without its trailing slash is 404, `b`/`e` are local times shifted by
`tzo` hours, answers use one-letter keys and numeric codes, and the v2 tree pages its top level
with a 0-based `page`, `obj_in_page` and `pages_total`, stops decomposing nodes with zero views,
and shows some counts as floats (`64.0`). Where the docs are silent the behaviour is an option or a
documented pick, and the tap must not depend on it:

- which ends of `b`/`e` are inclusive (`range_ends`), and whether raw sessions are selected by
  their start, their end or any overlap (`raw_selects_by`);
- whether `/user/{id}/counters` (shown without a trailing slash) takes one (`counters_slash`);
- a missing `tzo` means the server's own zone (`default_tzo`, 3 hours: the API is in Russia);
- error bodies are short text; a range longer than six months is a 400 with `{"ok": 0, ...}`.

A session is stored as its start (epoch ms), its device's table and one 64-bit number from which
every other fact is derived (see `session_facts` and `session_detail`): about 20 bytes a session,
so a million sessions take about 20 MB and are generated in about a second.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from emulators.clock import anchor_instant, as_utc, from_epoch_ms, to_epoch_ms
from emulators.framework import EmulatorApp, Request, Response

UTC = timezone.utc
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# --- what a session's 64 bits mean -----------------------------------------------------------------
# Tables indexed by a few bits give the distributions; codes are the raw route's.
_AGE_CODES = (-1, 0, 1, 1, 1, 2, 2, 3)  # -1 undefined, 0 kid, 1 young, 2 adult, 3 old
_GENDER_CODES = (-1, 0, 0, 0, 1, 1, 1, 1)  # -1 undefined, 0 female, 1 male
_EMOTION_CODES = (-1, 0, 0, 0, 0, 1, 2, 3)  # -1 undefined, 0 neutral, 1 happy, 2 angry, 3 surprised
_MOVIE_COUNTS = (0, 1, 1, 2)
MIN_DURATION_MS = 2000
MAX_DURATION_MS = MIN_DURATION_MS + 0xFFFF

# Names the v2 tree uses, and the order it lists them in (alphabetical, as in the docs' samples).
AGE_NAMES = {-1: "undefined", 0: "kid", 1: "young", 2: "adult", 3: "old"}
GENDER_NAMES = {-1: "undefined", 0: "female", 1: "male"}
EMOTION_NAMES = {-1: "undefined", 0: "neutral", 1: "happy", 2: "angry", 3: "surprise"}
VOCABULARIES = {
    "ages": tuple(sorted(AGE_NAMES.values())),
    "genders": tuple(sorted(GENDER_NAMES.values())),
    "emotions": tuple(sorted(EMOTION_NAMES.values())),
}
# Keys the hourly statistics use.
_AGE_KEYS = {0: "k", 1: "m", 2: "m2", 3: "o", -1: "u"}
_GENDER_KEYS = {0: "fl", 1: "ml", -1: "us"}
_COMBO_PREFIXES = {0: "f", 1: "m", -1: "u"}  # gender letter of "fk" (female-kid), "mo" (male-old)

LEVEL_TYPES = {
    "devices": "device",
    "movies": "movie",
    "dates": "date",
    "ages": "age",
    "genders": "gender",
    "emotions": "emotion",
}
_VIEWER_LEVELS = frozenset({"ages", "genders", "emotions"})
_OTS_TYPES = frozenset({"root", "device", "date", "movie"})
_PAGED_LEVELS = frozenset({"devices", "movies"})
DT_FORMATS = ("YYYY-MM-DD HH", "YYYY-MM-DD", "YYYY-MM", "YYYY", "MM", "DD", "HH")

RANGE_ENDS = ("both", "start", "end", "neither")
RAW_SELECTIONS = ("start", "end", "overlap")
COUNTERS_SLASH = ("forbidden", "required", "either")
_STATUSES = ("online", "offline", "frozen")


class SessionFacts(NamedTuple):
    """What the aggregate routes need of one session, derived from its 64 bits."""

    duration_ms: int
    age: int
    gender: int
    viewed: bool
    dominant_emotion: int
    secondary_emotion: int
    secondary_ms: int
    movie_ids: tuple[int, ...]

    def emotion_ms(self) -> dict[int, int]:
        """Milliseconds spent in each emotion (the dominant one holds more than half)."""
        if self.secondary_ms == 0:
            return {self.dominant_emotion: self.duration_ms}
        return {
            self.dominant_emotion: self.duration_ms - self.secondary_ms,
            self.secondary_emotion: self.secondary_ms,
        }


def _duration_ms(bits: int) -> int:
    return MIN_DURATION_MS + (bits & 0xFFFF)


def _viewed(bits: int) -> bool:
    """Whether the face looked at the screen: one session in sixteen never does."""
    return ((bits >> 22) & 15) != 0


def session_facts(bits: int, movies: int) -> SessionFacts:
    """Decode a session's bits; `movies` is the size of the movie catalogue."""
    duration = _duration_ms(bits)
    dominant = _EMOTION_CODES[(bits >> 26) & 7]
    secondary = _EMOTION_CODES[(bits >> 29) & 7]
    # Less than half of the session, so the dominant emotion is the unique longest one.
    secondary_ms = 0 if secondary == dominant else duration * ((bits >> 32) & 63) // 128
    count = _MOVIE_COUNTS[(bits >> 38) & 3] if movies else 0
    first = ((bits >> 40) & 0xFF) % max(movies, 1) + 1
    second = ((bits >> 48) & 0xFF) % max(movies, 1) + 1
    if movies > 1 and second == first:
        second = first % movies + 1
    movie_ids = (first, second)[:count] if movies > 1 else (first,)[:count]
    return SessionFacts(
        duration_ms=duration,
        age=_AGE_CODES[(bits >> 16) & 7],
        gender=_GENDER_CODES[(bits >> 19) & 7],
        viewed=_viewed(bits),
        dominant_emotion=dominant,
        secondary_emotion=secondary,
        secondary_ms=secondary_ms,
        movie_ids=movie_ids,
    )


class SessionDetail(NamedTuple):
    """The intervals of one session, as the raw route lists them."""

    attention: list[tuple[int, int]]  # (1 looking / 0 not, duration ms)
    emotions: list[tuple[int, int]]  # (emotion code, duration ms)
    movies: list[tuple[int, int, int]]  # (movie id, start offset ms, duration ms)


def _split(total: int, pieces: int, rng: random.Random) -> list[int]:
    """`total` as `pieces` positive parts (fewer when `total` is too small)."""
    if pieces <= 1 or total < pieces:
        return [total]
    cuts = sorted(rng.sample(range(1, total), pieces - 1))
    return [high - low for low, high in zip([0, *cuts], [*cuts, total], strict=True)]


def session_detail(bits: int, facts: SessionFacts) -> SessionDetail:
    """The intervals, drawn from the bits so that they add up to the session's facts."""
    rng = random.Random(bits)
    duration = facts.duration_ms
    if facts.viewed:
        parts = _split(duration, 1 + rng.randrange(4), rng)
        attention = [(1 - index % 2, part) for index, part in enumerate(parts)]
    else:
        attention = [(0, duration)]
    emotions = [
        (code, part) for code, total in facts.emotion_ms().items() for part in _split(total, 1 + rng.randrange(3), rng)
    ]
    rng.shuffle(emotions)
    movies = []
    for movie_id in facts.movie_ids:
        offset = rng.randrange(0, duration // 2)
        movies.append((movie_id, offset, rng.randrange(1, duration - offset + 1)))
    return SessionDetail(attention, emotions, movies)


@dataclass(frozen=True)
class _Sessions:
    """One device's sessions sorted by start; replaced whole when a session is added."""

    starts: array  # epoch ms, ascending
    bits: array
    numbers: array  # the device's all-time session number ("o")


@dataclass
class Device:
    """A device as the devices route describes it."""

    device_id: int
    name: str
    status: str
    ip: str
    acl: list[int]
    created: datetime
    modified: datetime
    key: str
    secret: str | None
    sid: int
    or_flag: int = 0
    first_number: int = 1
    sessions: _Sessions = field(default_factory=lambda: _Sessions(array("q"), array("Q"), array("I")))

    def served(self) -> dict[str, Any]:
        """The device object with the docs' keys."""
        body: dict[str, Any] = {
            "acl": self.acl,
            "created": email.utils.format_datetime(self.created, usegmt=True),
            "d": self.device_id,
            "f": int(self.status == "frozen"),
            "ip": self.ip,
            "k": self.key,
            "modified": email.utils.format_datetime(self.modified, usegmt=True),
            "n": self.name,
            "o": int(self.status == "online"),
            "or": self.or_flag,
            "sid": self.sid,
        }
        if self.secret is not None:
            body["s"] = self.secret
        return dict(sorted(body.items()))


class _BadRequest(Exception):
    """A request the API refuses with 400."""


class _Node:
    """A node of a v2 tree while it is counted."""

    __slots__ = ("children", "ots", "otsd", "v", "vd")

    def __init__(self) -> None:
        self.v = 0
        self.vd = 0
        self.ots = 0
        self.otsd = 0
        self.children: dict[str, _Node] = {}


class SeemetrixEmulator(EmulatorApp):
    """The Seemetrix REST API over synthetic, seeded viewing sessions.

    Options (all keyword, all with defaults):
      user_id, user_key: the one account, and its key (`?key=`).
      devices, days, sessions_per_day, movies: size of the data: `devices` devices (the first
        online, the second offline, the third frozen, then random), each with `days` x
        `sessions_per_day` sessions spread over the `days` before `anchor`, and a catalogue of
        `movies` movies. 10 devices x 365 days x 274 a day is a million sessions.
      anchor: the data ends just before it; defaults to now (UTC, whole seconds). Counters count
        "the current hour/day/month" at the anchor when it is given, else at the real time.
      range_ends: "both", "start", "end" or "neither": which ends of `b`/`e` include a session
        starting exactly on them (undocumented).
      raw_selects_by: "start", "end" or "overlap": how the raw route picks sessions for `b`/`e`
        (undocumented; the aggregate routes always count a session at its start).
      counters_slash: "forbidden" (only `/counters`, as the docs' route is written), "required"
        (only `/counters/`, as the docs' general rule says) or "either".
      default_tzo: hours used when a request has no `tzo` (the docs make it required).
      float_counts: show root- and device-level `v` and `ots` as floats, as one docs sample does.
      max_range_days: the v2 route refuses longer ranges (the docs: six months).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        latency: float = 0.0,
        user_id: int = 632,
        user_key: str = "test-user-key",
        devices: int = 3,
        days: float = 7,
        sessions_per_day: float = 40,
        movies: int = 6,
        anchor: str | datetime | None = None,
        range_ends: str = "both",
        raw_selects_by: str = "start",
        counters_slash: str = "forbidden",
        default_tzo: int = 3,
        float_counts: bool = True,
        max_range_days: int = 183,
    ) -> None:
        super().__init__(seed=seed, latency=latency)
        if range_ends not in RANGE_ENDS:
            raise ValueError(f"range_ends must be one of {RANGE_ENDS}, not {range_ends!r}")
        if raw_selects_by not in RAW_SELECTIONS:
            raise ValueError(f"raw_selects_by must be one of {RAW_SELECTIONS}, not {raw_selects_by!r}")
        if counters_slash not in COUNTERS_SLASH:
            raise ValueError(f"counters_slash must be one of {COUNTERS_SLASH}, not {counters_slash!r}")
        if min(devices, days, sessions_per_day, movies) < 0:
            raise ValueError("devices, days, sessions_per_day and movies must be >= 0")
        self.user_id = int(user_id)
        self.user_key = str(user_key)
        self.movies = int(movies)
        self.include_start = range_ends in ("both", "start")
        self.include_end = range_ends in ("both", "end")
        self.raw_selects_by = raw_selects_by
        self.counters_slash = counters_slash
        self.default_tzo = int(default_tzo)
        self.float_counts = float_counts
        self.max_range_days = max_range_days
        self._fixed_now = anchor is not None
        self.anchor = anchor_instant(anchor)
        self.span_start = self.anchor - timedelta(days=days)
        self._data_lock = threading.Lock()
        self._tree_cache: dict[tuple[Any, ...], _Node] = {}
        self.devices: dict[int, Device] = {}
        self._generate(random.Random(seed), devices, days, sessions_per_day)

    # Synthetic data ----------------------------------------------------------------------------

    def _generate(self, rng: random.Random, devices: int, days: float, per_day: float) -> None:
        """Devices, then their sessions: uniform starts over the span, sorted per device."""
        span_start_ms = to_epoch_ms(self.span_start)
        # No session still running at the anchor.
        span_ms = max(to_epoch_ms(self.anchor) - span_start_ms - MAX_DURATION_MS, 1)
        count = round(days * per_day)
        for index, device_id in enumerate(sorted(rng.sample(range(1000, 10000), devices))):
            status = _STATUSES[index] if index < len(_STATUSES) else rng.choice(_STATUSES)
            created = self.span_start - timedelta(days=rng.randint(1, 400), seconds=rng.randrange(86400))
            has_secret = status != "offline"
            device = Device(
                device_id=device_id,
                name=f"Device #{index + 1}",
                status=status,
                ip="-" if status == "offline" else f"87.249.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                acl=sorted({self.user_id, rng.choice((436, 517, self.user_id))}),
                created=created,
                modified=min(created + timedelta(days=rng.randint(0, 30)), self.anchor),
                key=f"{rng.getrandbits(128):032x}",
                secret=f"{rng.getrandbits(128):032x}" if has_secret else None,
                sid=2 if has_secret else 0,
                first_number=rng.randint(1, 5000),
            )
            randrange, getrandbits = rng.randrange, rng.getrandbits
            starts = sorted(span_start_ms + randrange(span_ms) for _ in range(count))
            bits = array("Q", (getrandbits(64) for _ in range(count)))
            numbers = array("I", range(device.first_number, device.first_number + count))
            device.sessions = _Sessions(array("q", starts), bits, numbers)
            self.devices[device_id] = device

    def add_session(self, device_id: int, start: datetime, bits: int | None = None) -> dict[str, Any]:
        """Add a session (new data arriving between syncs); return its ground truth.

        It takes the device's next session number, wherever its start falls.
        """
        start_ms = to_epoch_ms(as_utc(start))
        with self._data_lock:
            device = self.devices[device_id]
            if bits is None:
                bits = random.Random(f"{self.seed}:{device_id}:{start_ms}").getrandbits(64)
            old = device.sessions
            position = bisect_right(old.starts, start_ms)
            number = max(old.numbers, default=device.first_number - 1) + 1
            starts, all_bits, numbers = array("q", old.starts), array("Q", old.bits), array("I", old.numbers)
            starts.insert(position, start_ms)
            all_bits.insert(position, bits)
            numbers.insert(position, number)
            device.sessions = _Sessions(starts, all_bits, numbers)
            self._tree_cache.clear()
        return self._truth(device_id, start_ms, bits, number)

    # Ground truth for tests --------------------------------------------------------------------

    def device_ids(self) -> list[int]:
        """Device ids of the account, ascending."""
        return sorted(self.devices)

    def session_count(self) -> int:
        """Number of sessions of every device; cheap even for millions."""
        return sum(len(device.sessions.starts) for device in self.devices.values())

    def now(self) -> datetime:
        """The moment counters count "current" periods at."""
        return self.anchor if self._fixed_now else datetime.now(UTC)

    def truth_sessions(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        device_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Sessions starting in [start, end), plainly named, in (start, device) order."""
        start_ms = to_epoch_ms(start) if start else -(2**62)
        end_ms = to_epoch_ms(end) if end else 2**62
        found = []
        for device in self._devices(device_id):
            table = device.sessions
            for position in range(bisect_left(table.starts, start_ms), bisect_left(table.starts, end_ms)):
                found.append(
                    self._truth(device.device_id, table.starts[position], table.bits[position], table.numbers[position])
                )
        return sorted(found, key=lambda session: (session["start"], session["device_id"]))

    def _truth(self, device_id: int, start_ms: int, bits: int, number: int) -> dict[str, Any]:
        facts = session_facts(bits, self.movies)
        detail = session_detail(bits, facts)
        return {
            "device_id": device_id,
            "session_number": number,
            "start": from_epoch_ms(start_ms),
            "end": from_epoch_ms(start_ms + facts.duration_ms),
            "duration_ms": facts.duration_ms,
            "age": facts.age,
            "gender": facts.gender,
            "viewed": facts.viewed,
            "dominant_emotion": facts.dominant_emotion,
            "emotion_ms": facts.emotion_ms(),
            "attention": detail.attention,
            "emotions": detail.emotions,
            "movies": detail.movies,
        }

    def _devices(self, device_id: int | None = None) -> list[Device]:
        if device_id is None:
            return [self.devices[key] for key in sorted(self.devices)]
        return [self.devices[device_id]] if device_id in self.devices else []

    # Serving -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Route like the real API: the path (slash included), then the key, then the ids."""
        if request.method not in ("GET", "HEAD"):
            return Response.text("405 Method Not Allowed", 405)
        parts = request.path.split("/")
        if parts[:2] != ["", "api"]:
            return _not_found()
        route = parts[2:]
        slash = bool(route) and route[-1] == ""
        if slash:
            route = route[:-1]
        if not slash and not self._counters_without_slash(route):
            return _not_found()  # the docs: "You will receive a 404 error if you drop it"
        if slash and route[-1:] == ["counters"] and self.counters_slash == "forbidden":
            return _not_found()
        if request.query.get("key", [None])[-1] != self.user_key:
            return Response.text("401 Unauthorized: wrong key", 401)
        try:
            return self._route(route, request)
        except _BadRequest as failure:
            return Response.json({"ok": 0, "error": str(failure)}, 400)

    def _counters_without_slash(self, route: list[str]) -> bool:
        return route[-1:] == ["counters"] and self.counters_slash in ("forbidden", "either")

    def _route(self, route: list[str], request: Request) -> Response:
        match route:
            case ["user", user, "devices"]:
                return self._user_only(user) or self._devices_response()
            case ["user", user, "counters"]:
                return self._user_only(user) or self._counters_response()
            case ["statistics", "device", device]:
                if not _is_int(device) or int(device) not in self.devices:
                    return _forbidden()
                return self._statistics_response(request, int(device))
            case ["statistics", "user", user]:
                return self._user_only(user) or self._statistics_response(request, None)
            case ["statistics", "user", user, "raw", "data"]:
                return self._user_only(user) or self._raw_response(request)
            case ["v2", "statistics", "user", user, *levels] if levels:
                return self._user_only(user) or self._tree_response(request, levels)
        return _not_found()

    def _user_only(self, user: str) -> Response | None:
        """403 for any user id but the account's own, as the docs say."""
        return None if _is_int(user) and int(user) == self.user_id else _forbidden()

    def _devices_response(self) -> Response:
        body: dict[str, Any] = {}
        for status in ("frozen", "offline", "online"):
            listed = [device.served() for device in self._devices() if device.status == status]
            body[status] = listed
            body[f"{status}_total"] = len(listed)
        return Response.json(body)

    def _counters_response(self) -> Response:
        """Dashboard counters; "current" periods run up to `now()`, in UTC."""
        now_ms = to_epoch_ms(self.now())
        now = from_epoch_ms(now_ms)
        since = {
            "usr_cur_hour": now_ms - now_ms % HOUR_MS,
            "usr_cur_day": now_ms - now_ms % DAY_MS,
            "usr_cur_month": to_epoch_ms(datetime(now.year, now.month, 1, tzinfo=UTC)),
        }
        views = duration = 0
        current = dict.fromkeys(since, 0)
        for device in self._devices():
            table = device.sessions
            # Straight from the bits, not `session_facts`: this reads every session there is.
            viewed = [bits for bits in table.bits if _viewed(bits)]
            views += len(viewed)
            duration += sum(_duration_ms(bits) for bits in viewed)
            for name, start_ms in since.items():
                positions = range(bisect_left(table.starts, start_ms), bisect_right(table.starts, now_ms))
                current[name] += sum(_viewed(table.bits[position]) for position in positions)
        return Response.json(
            {
                "avg_duration": round(duration / views / 1000, 2) if views else 0,
                "dev_num": len(self.devices),
                "movies_num": self.movies,
                "online_device_num": sum(device.status == "online" for device in self.devices.values()),
                **current,
                "usr_num": views,
            }
        )

    # Ranges ------------------------------------------------------------------------------------

    def _tzo(self, request: Request) -> int:
        text = _param(request, "tzo")
        if text is None or text == "":
            return self.default_tzo
        if not _is_int(text):
            raise _BadRequest(f"tzo must be an integer, not {text!r}")
        return int(text)

    def _range(self, request: Request, tzo: int) -> tuple[int, int]:
        """`b`/`e` (local times) as UTC epoch ms; `last_week` is the week up to this hour."""
        if _param(request, "last_week") is not None:
            end_ms = to_epoch_ms(self.now())
            end_ms -= end_ms % HOUR_MS
            return end_ms - 7 * DAY_MS, end_ms
        b, e = _param(request, "b"), _param(request, "e")
        if b is None or e is None:
            raise _BadRequest("b and e (or last_week) are required")
        return _parse_local(b, tzo), _parse_local(e, tzo)

    def _starts_in(self, starts: array, b_ms: int, e_ms: int) -> range:
        """Positions of the sorted `starts` inside the range, ends included as configured."""
        low = (bisect_left if self.include_start else bisect_right)(starts, b_ms)
        high = (bisect_right if self.include_end else bisect_left)(starts, e_ms)
        return range(low, max(low, high))

    def _sessions_between(
        self, b_ms: int | None, e_ms: int | None, device_id: int | None
    ) -> Iterator[tuple[int, Device, SessionFacts]]:
        """(start, device, facts) of the sessions starting in the range, device by device."""
        movies = self.movies
        for device in self._devices(device_id):
            table = device.sessions
            positions = (
                range(len(table.starts)) if b_ms is None or e_ms is None else self._starts_in(table.starts, b_ms, e_ms)
            )
            starts, bits = table.starts, table.bits
            for position in positions:
                yield starts[position], device, session_facts(bits[position], movies)

    # Hourly statistics ---------------------------------------------------------------------------

    def _statistics_response(self, request: Request, device_id: int | None) -> Response:
        tzo = self._tzo(request)
        b_ms, e_ms = self._range(request, tzo)
        parts = [part for part in ("year", "month", "day", "hour") if _param(request, part) is not None]
        flags = {flag for flag in ("sex", "age", "movies", "intervals") if _param(request, flag) is not None}
        buckets: dict[tuple[int, ...], list[SessionFacts]] = {}
        for start_ms, _, facts in self._sessions_between(b_ms, e_ms, device_id):
            buckets.setdefault(_time_unit(start_ms, tzo, parts), []).append(facts)
        objects = []
        for unit in sorted(buckets):
            counters = _hourly_counters(buckets[unit], flags)
            objects.append({"i": _time_unit_id(unit, parts), **counters})
        every = [facts for group in buckets.values() for facts in group]
        # The hours of the first and last data there is, whatever the range asked.
        starts = [start for device in self._devices(device_id) for start in device.sessions.starts[:1]]
        starts += [start for device in self._devices(device_id) for start in device.sessions.starts[-1:]]
        hours = [start - (start + tzo * HOUR_MS) % HOUR_MS for start in starts]
        body = {
            "begin": _format_local(b_ms, tzo),
            "begin_iso": _format_iso(b_ms, tzo),
            "end": _format_local(e_ms, tzo),
            "end_iso": _format_iso(e_ms, tzo),
            "max_date": _format_local(max(hours), tzo) if hours else None,
            "min_date": _format_local(min(hours), tzo) if hours else None,
            "objects": objects,
            "total": len(objects),
            "total_counters": _total_counters(every),
        }
        return Response.json(body)

    # Raw sessions --------------------------------------------------------------------------------

    def _raw_response(self, request: Request) -> Response:
        tzo = self._tzo(request)
        b_ms, e_ms = self._range(request, tzo)
        device_id = _param(request, "device_id")
        movie_id = _param(request, "movie_id")
        if device_id is not None and (not _is_int(device_id) or int(device_id) not in self.devices):
            return _forbidden()
        if movie_id is not None and not _is_int(movie_id):
            raise _BadRequest(f"movie_id must be an integer, not {movie_id!r}")
        found = []
        for device in self._devices(int(device_id) if device_id is not None else None):
            table = device.sessions
            # Candidates by start, widened by the longest session when selecting by the end.
            low = b_ms if self.raw_selects_by == "start" else b_ms - MAX_DURATION_MS
            for position in self._starts_in(table.starts, low, e_ms):
                start_ms, bits = table.starts[position], table.bits[position]
                facts = session_facts(bits, self.movies)
                if not self._raw_selected(start_ms, start_ms + facts.duration_ms, b_ms, e_ms):
                    continue
                if movie_id is not None and int(movie_id) not in facts.movie_ids:
                    continue
                found.append((start_ms, device.device_id, table.numbers[position], bits, facts))
        found.sort(key=lambda item: (item[0], item[1]))
        objects = [_raw_session(*item, tzo=tzo) for item in found]
        return Response.json({"objects": objects})

    def _raw_selected(self, start_ms: int, end_ms: int, b_ms: int, e_ms: int) -> bool:
        after_b = (lambda moment: moment >= b_ms) if self.include_start else (lambda moment: moment > b_ms)
        before_e = (lambda moment: moment <= e_ms) if self.include_end else (lambda moment: moment < e_ms)
        if self.raw_selects_by == "start":
            return after_b(start_ms) and before_e(start_ms)
        if self.raw_selects_by == "end":
            return after_b(end_ms) and before_e(end_ms)
        return after_b(end_ms) and before_e(start_ms)

    # The unified (v2) tree ---------------------------------------------------------------------

    def _tree_response(self, request: Request, levels: list[str]) -> Response:
        unknown = [level for level in levels if level not in LEVEL_TYPES]
        if unknown:
            return _not_found()
        if len(set(levels)) != len(levels):
            raise _BadRequest("looping is prohibited: a level can appear only once in the path")
        tzo = self._tzo(request)
        b_ms, e_ms = self._range(request, tzo)
        if e_ms - b_ms > self.max_range_days * DAY_MS:
            raise _BadRequest("the maximum datetime range of the request is 6 months")
        dt_format = _param(request, "dt_format") or "YYYY-MM-DD"
        if dt_format not in DT_FORMATS:
            raise _BadRequest(f"unknown dt_format {dt_format!r}")
        device_text = _param(request, "d")
        if device_text is not None and (not _is_int(device_text) or int(device_text) not in self.devices):
            return _forbidden()
        device_id = int(device_text) if device_text is not None else None
        page = _int_param(request, "page", 0, minimum=0)
        per_page = _int_param(request, "obj_in_page", 10, minimum=1)
        to_object = _param(request, "to_object") == "1"
        root = self._tree(tuple(levels), b_ms, e_ms, tzo, dt_format, device_id)
        top = _ordered_children(root, levels[0])
        pages_total = math.ceil(len(top) / per_page) if levels[0] in _PAGED_LEVELS else 1
        if levels[0] in _PAGED_LEVELS:
            top = top[page * per_page : (page + 1) * per_page]
        data = self._serialize(root, "root", "root", levels, 0, top, to_object=to_object)
        body: dict[str, Any] = {
            "begin": _format_local(b_ms, tzo),
            "data": data,
            "end": _format_local(e_ms, tzo),
            "levels": levels,
            "obj_in_page": per_page,
            "ok": 1,
            "page": page,
            "pages_total": pages_total,
            "path": "/".join(levels),
            "user_id": self.user_id,
        }
        if "dates" in levels:
            body["dt_format"] = dt_format
        response = Response.json(dict(sorted(body.items())))
        response.past_last_page = page >= max(pages_total, 1)  # pages count from 0
        return response

    def _tree(
        self, levels: tuple[str, ...], b_ms: int, e_ms: int, tzo: int, dt_format: str, device_id: int | None
    ) -> _Node:
        """The counted tree, cached: a sync asks for every page of the same tree in turn."""
        key = (levels, b_ms, e_ms, tzo, dt_format, device_id)
        with self._data_lock:
            cached = self._tree_cache.get(key)
        if cached is not None:
            return cached
        root = _Node()
        labels: dict[int, str] = {}
        for start_ms, device, facts in self._sessions_between(b_ms, e_ms, device_id):
            hour = (start_ms + tzo * HOUR_MS) // HOUR_MS
            label = labels.get(hour)
            if label is None:
                label = labels[hour] = _date_label(hour, dt_format)
            viewed = facts.viewed
            _count(
                root,
                levels,
                0,
                facts,
                device.device_id,
                label,
                int(viewed),
                facts.duration_ms * viewed,
                1,
                facts.duration_ms,
            )
        with self._data_lock:
            if len(self._tree_cache) >= 8:
                self._tree_cache.clear()
            self._tree_cache[key] = root
        return root

    def _serialize(
        self,
        node: _Node,
        name: str,
        kind: str,
        levels: list[str],
        depth: int,
        children: list[tuple[str, _Node]] | None = None,
        *,
        to_object: bool,
        below_viewers: bool = False,
    ) -> dict[str, Any]:
        """A node as the docs show it; decomposition stops under a node with no views."""
        as_float = self.float_counts and kind in ("root", "device")
        body: dict[str, Any] = {"n": name}
        items: list[dict[str, Any]] = []
        if depth < len(levels) and (node.v > 0 or kind == "root"):
            level = levels[depth]
            listed = children if children is not None else _ordered_children(node, level)
            child_type = LEVEL_TYPES[level]
            items = [
                self._serialize(
                    child,
                    child_name,
                    child_type,
                    levels,
                    depth + 1,
                    to_object=to_object,
                    below_viewers=below_viewers or level in _VIEWER_LEVELS,
                )
                for child_name, child in listed
            ]
        body["o"] = {item["n"]: item for item in items} if to_object else items
        if kind in _OTS_TYPES and not below_viewers:
            body["ots"] = float(node.ots) if as_float else node.ots
            body["otsd"] = node.otsd
        body["t"] = kind
        body["v"] = float(node.v) if as_float else node.v
        body["vd"] = node.vd
        return body


# --- counting ---------------------------------------------------------------------------------------


def _count(
    node: _Node,
    levels: tuple[str, ...],
    depth: int,
    facts: SessionFacts,
    device_id: int,
    date_label: str,
    v: int,
    vd: int,
    ots: int,
    otsd: int,
) -> None:
    """Add one session to `node` and, level by level, to the nodes under it.

    Below a viewer level (gender, age, emotion) only viewers count. A session counts under every
    movie it played; under the emotion level it counts as a view of its dominant emotion only,
    and its time is shared out among its emotions.
    """
    node.v += v
    node.vd += vd
    node.ots += ots
    node.otsd += otsd
    if depth == len(levels):
        return
    level = levels[depth]
    if level in _VIEWER_LEVELS and not facts.viewed:
        return
    branches: Iterable[tuple[str, int, int]]
    if level == "devices":
        branches = [(str(device_id), v, vd)]
    elif level == "dates":
        branches = [(date_label, v, vd)]
    elif level == "genders":
        branches = [(GENDER_NAMES[facts.gender], v, vd)]
    elif level == "ages":
        branches = [(AGE_NAMES[facts.age], v, vd)]
    elif level == "movies":
        branches = [(str(movie_id), v, vd) for movie_id in facts.movie_ids]
    else:  # emotions
        branches = [
            (EMOTION_NAMES[code], v * (code == facts.dominant_emotion), milliseconds * v)
            for code, milliseconds in facts.emotion_ms().items()
        ]
    for key, child_v, child_vd in branches:
        child = node.children.get(key)
        if child is None:
            child = node.children[key] = _Node()
        _count(child, levels, depth + 1, facts, device_id, date_label, child_v, child_vd, ots, otsd)


def _ordered_children(node: _Node, level: str) -> list[tuple[str, _Node]]:
    """Children in the docs' order; genders, ages and emotions list every name, zeros included."""
    if level in VOCABULARIES:
        return [(name, node.children.get(name) or _Node()) for name in VOCABULARIES[level]]
    if level in ("devices", "movies"):
        return sorted(node.children.items(), key=lambda item: int(item[0]))
    return sorted(node.children.items())


def _hourly_counters(group: list[SessionFacts], flags: set[str]) -> dict[str, Any]:
    """One time unit's counters, over its views; keys only for the flags asked for."""
    views = [facts for facts in group if facts.viewed]
    counters: dict[str, Any] = {"t": len(views)}
    if "sex" in flags:
        for code, key in _GENDER_KEYS.items():
            counters[key] = sum(facts.gender == code for facts in views)
    if "age" in flags:
        for code, key in _AGE_KEYS.items():
            counters[key] = sum(facts.age == code for facts in views)
    if "sex" in flags and "age" in flags:
        for gender, prefix in _COMBO_PREFIXES.items():
            for age, suffix in _AGE_KEYS.items():
                counters[prefix + suffix] = sum(facts.gender == gender and facts.age == age for facts in views)
    if "movies" in flags:
        counters["v"] = sum(len(facts.movie_ids) for facts in views)
        counters["va"] = sum(bool(facts.movie_ids) for facts in views)
    if "intervals" in flags:
        counters["ia"] = _average_seconds(views)
    return dict(sorted(counters.items()))


def _total_counters(group: list[SessionFacts]) -> dict[str, Any]:
    """The range's `total_counters`, with the long names the docs show."""
    views = [facts for facts in group if facts.viewed]
    return {
        "average_duration": _average_seconds(views),
        "female": sum(facts.gender == 0 for facts in views),
        "kid": sum(facts.age == 0 for facts in views),
        "male": sum(facts.gender == 1 for facts in views),
        "middle": sum(facts.age == 1 for facts in views),
        "middle2": sum(facts.age == 2 for facts in views),  # noqa: PLR2004
        "movies_num": sum(len(facts.movie_ids) for facts in views),
        "old": sum(facts.age == 3 for facts in views),  # noqa: PLR2004
        "total": len(views),
        "undefined_age": sum(facts.age == -1 for facts in views),
        "undefined_gender": sum(facts.gender == -1 for facts in views),
    }


def _average_seconds(views: list[SessionFacts]) -> float:
    return round(sum(facts.duration_ms for facts in views) / len(views) / 1000, 2) if views else 0


def _raw_session(
    start_ms: int, device_id: int, number: int, bits: int, facts: SessionFacts, *, tzo: int
) -> dict[str, Any]:
    """A session as the raw route shows it: one-letter keys, codes, local naive times."""
    detail = session_detail(bits, facts)
    return {
        "a": facts.age,
        "at": [{"a": looking, "d": duration} for looking, duration in detail.attention],
        "b": _format_naive(start_ms, tzo),
        "d": device_id,
        "e": _format_naive(start_ms + facts.duration_ms, tzo),
        "em": [{"d": duration, "e": code} for code, duration in detail.emotions],
        "i": facts.duration_ms,
        "o": number,
        "s": facts.gender,
        "v": [{"d": duration, "i": movie_id, "s": offset} for movie_id, offset, duration in detail.movies],
    }


# --- time ----------------------------------------------------------------------------------------


def _time_unit(start_ms: int, tzo: int, parts: list[str]) -> tuple[int, ...]:
    """The time-unit key of a session: year, month, day, hour as asked (all when none are).

    `day` alone means the day of the week (1-7), as the docs say.
    """
    local = from_epoch_ms(start_ms + tzo * HOUR_MS)
    if parts == ["day"]:
        return (local.isoweekday(),)
    chosen = parts or ["year", "month", "day", "hour"]
    values = {"year": local.year, "month": local.month, "day": local.day, "hour": local.hour}
    return tuple(values[part] for part in chosen)


def _time_unit_id(unit: tuple[int, ...], parts: list[str]) -> dict[str, int]:
    """The `i` object of a time unit, with the docs' one-letter keys."""
    chosen = parts or ["year", "month", "day", "hour"]
    letters = {"year": "y", "month": "m", "day": "d", "hour": "h"}
    return dict(sorted((letters[part], value) for part, value in zip(chosen, unit, strict=True)))


def _date_label(local_hour: int, dt_format: str) -> str:
    """A v2 date node's name for a local hour number, in one of the docs' formats."""
    moment = from_epoch_ms(local_hour * HOUR_MS)
    labels = {
        "YYYY-MM-DD HH": f"{moment:%Y-%m-%d %H}",
        "YYYY-MM-DD": f"{moment:%Y-%m-%d}",
        "YYYY-MM": f"{moment:%Y-%m}",
        "YYYY": f"{moment:%Y}",
        "MM": f"{moment:%m}",
        "DD": str(moment.isoweekday()),
        "HH": f"{moment:%H}",
    }
    return labels[dt_format]


def _parse_local(text: str, tzo: int) -> int:
    """A `YYYY/MM/DD HH:mm:ss` local time as UTC epoch ms."""
    try:
        local = datetime.strptime(text, "%Y/%m/%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise _BadRequest(f"{text!r} is not a YYYY/MM/DD HH:mm:ss datetime") from None
    return to_epoch_ms(local) - tzo * HOUR_MS


def _format_local(epoch_ms: int, tzo: int) -> str:
    return f"{from_epoch_ms(epoch_ms + tzo * HOUR_MS):%Y/%m/%d %H:%M:%S}"


def _format_iso(epoch_ms: int, tzo: int) -> str:
    zone = timezone(timedelta(hours=tzo))
    return from_epoch_ms(epoch_ms).astimezone(zone).isoformat(timespec="seconds")


def _format_naive(epoch_ms: int, tzo: int) -> str:
    """The raw route's times: local, naive, microseconds ("2019-07-01T11:16:07.052000")."""
    return from_epoch_ms(epoch_ms + tzo * HOUR_MS).replace(tzinfo=None).isoformat(timespec="microseconds")










# --- requests --------------------------------------------------------------------------------------


def _param(request: Request, name: str) -> str | None:
    values = request.query.get(name)
    return values[-1] if values else None


def _int_param(request: Request, name: str, default: int, *, minimum: int) -> int:
    text = _param(request, name)
    if text is None:
        return default
    if not _is_int(text) or int(text) < minimum:
        raise _BadRequest(f"{name} must be an integer >= {minimum}, not {text!r}")
    return int(text)


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _not_found() -> Response:
    return Response.text(
        "<h1>Not Found</h1><p>The requested resource was not found.</p>", 404, content_type="text/html"
    )


def _forbidden() -> Response:
    return Response.text("403 Forbidden", 403)


__all__ = [
    "AGE_NAMES",
    "EMOTION_NAMES",
    "GENDER_NAMES",
    "SeemetrixEmulator",
    "SessionFacts",
    "session_detail",
    "session_facts",
]

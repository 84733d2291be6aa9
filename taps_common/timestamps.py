"""One timestamp form for every record field and bookmark.

Bookmarks are compared as strings (by the SDK and by targets), so every
replication value must be written the same way. The form is the SDK's own for
datetimes (`isoformat` with microseconds, `+00:00`), so that its signposts and
`start_date` comparisons line up with ours.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from functools import lru_cache

UTC = dt.timezone.utc


def parse_timestamp(value: str | dt.datetime | dt.date) -> dt.datetime:
    """Parse an ISO-8601 date or datetime; naive values are taken as UTC.

    Raises:
        ValueError: if `value` is not a date or datetime.
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif not isinstance(value, str):  # None, a number: what an API sends where a time was due
        msg = f"{value!r} is not a date or datetime"
        raise ValueError(msg)
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_utc_iso(value: str | dt.datetime | dt.date) -> str:
    """Return the one UTC form used for all timestamps: `2024-05-01T12:00:00.000000+00:00`."""
    if isinstance(value, str):
        return _text_to_utc_iso(value)
    return parse_timestamp(value).isoformat(timespec="microseconds")


#: A UTC timestamp in the form APIs send most (`2024-05-01T12:00:00.250Z`, also without a zone or
#: with `+00:00`): its date, its time (ranges checked) and its fraction, read without a datetime.
_UTC_TEXT = re.compile(r"(\d{4}-\d\d-\d\d)[Tt ]([01]\d|2[0-3])(:[0-5]\d:[0-5]\d)(?:\.(\d{1,6}))?(?:[Zz]|\+00:00)?", re.ASCII)


@lru_cache(maxsize=4096)  # neighbouring records share times; a small cache keeps memory flat
def _text_to_utc_iso(text: str) -> str:
    # Records share timestamps (a frame's detections, a day's rows): parse each text once.
    return _utc_text_to_iso(text.strip()) or parse_timestamp(text).isoformat(timespec="microseconds")


def _utc_text_to_iso(text: str) -> str | None:
    """A time already in UTC (`_UTC_TEXT`) rewritten as text, its day checked; None for any other text.

    About a third of the cost of a datetime round trip, which matters where every record has
    its own time.
    """
    utc = _UTC_TEXT.fullmatch(text)
    if utc is None or not _is_calendar_day(utc[1]):
        return None
    day, hour, rest, fraction = utc.groups()
    return f"{day}T{hour}{rest}.{fraction or '':0<6}+00:00"


@lru_cache(maxsize=1024)
def _is_calendar_day(text: str) -> bool:
    """Whether `YYYY-MM-DD` is a real day (not 2024-02-30)."""
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def from_epoch_ms(value: int) -> dt.datetime:
    """Convert epoch milliseconds to an aware UTC datetime."""
    return dt.datetime.fromtimestamp(value / 1000, tz=UTC)


def to_epoch_ms(value: dt.datetime) -> int:
    """Convert an aware datetime to epoch milliseconds (exact, no float rounding)."""
    delta = value - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(tz=UTC)


_EPOCH_MS_ABOVE = 100_000_000_000  # numbers above this are epoch milliseconds (after 1973-03-03)


def normalise_timestamp(value: t.Any) -> str | None:  # noqa: ANN401
    """Any timestamp an API may send, in the one UTC form; None for null or empty.

    ISO 8601 with `Z`, with an offset or without a zone (taken as UTC), with 0 to 9 fraction
    digits; or a number of epoch milliseconds (or seconds, when too small to be milliseconds),
    also when sent as a string of digits.

    Raises:
        ValueError: when the value is none of these.
    """
    if value.__class__ is str and value[-1:] in ("Z", "z"):  # the common case, 2024-05-01T12:00:00Z: no number
        # Not cached: where this is called (capture times), every record has a time of its own.
        return _utc_text_to_iso(value) or _text_to_utc_iso(value)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        milliseconds = value if abs(value) >= _EPOCH_MS_ABOVE else value * 1000
        return to_utc_iso(from_epoch_ms(int(milliseconds)))
    if isinstance(value, str) and value.strip().isdigit():
        return normalise_timestamp(int(value))
    if isinstance(value, str):
        return to_utc_iso(value)
    msg = f"{value!r} is not a timestamp"
    raise ValueError(msg)


def as_day(value: str | dt.date) -> dt.date:
    """The UTC calendar day of a date or datetime (string or object).

    Raises:
        ValueError: if `value` is neither.
    """
    return parse_timestamp(value).date()


def floor_timestamp(moment: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """`moment` rounded down to a whole `step` since the epoch (an hour, a day, a second)."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    return moment - (moment - epoch) % step


def ceil_timestamp(moment: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """`moment` rounded up to a whole `step` since the epoch."""
    floored = floor_timestamp(moment, step)
    return floored if floored == moment else floored + step

"""Date windows: split a [start, end) range into pieces an API accepts."""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

from taps_common.timestamps import to_utc_iso


@dataclass(frozen=True)
class DateWindow:
    """A half-open range [start, end) of aware datetimes."""

    start: dt.datetime
    end: dt.datetime

    def __contains__(self, moment: dt.datetime) -> bool:
        return self.start <= moment < self.end


def date_windows(
    start: dt.datetime,
    end: dt.datetime,
    size: dt.timedelta | None,
) -> t.Iterator[DateWindow]:
    """Yield consecutive windows of at most `size` covering [start, end).

    `size=None` yields the whole range as one window. Nothing is yielded when
    `start >= end`.
    """
    if size is not None and size <= dt.timedelta(0):
        msg = f"window size must be positive, got {size}"
        raise ValueError(msg)
    cursor = start
    while cursor < end:
        window_end = end if size is None else min(cursor + size, end)
        yield DateWindow(cursor, window_end)
        cursor = window_end


def whole_day_windows(first: dt.date, last: dt.date, max_days: int | None) -> t.Iterator[DateWindow]:
    """Windows of whole UTC days covering `first`..`last` (both included), at most `max_days` days each.

    `max_days=None` gives the whole span as one window; nothing when `first > last`.
    """
    start = dt.datetime(first.year, first.month, first.day, tzinfo=dt.timezone.utc)
    end = dt.datetime(last.year, last.month, last.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    return date_windows(start, end, dt.timedelta(days=max_days) if max_days else None)


def first_and_last_day(window: DateWindow) -> tuple[dt.date, dt.date]:
    """The first and the last day (both included) of a window of whole days."""
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()


def records_inside(
    records: t.Iterable[dict[str, t.Any]], key: str, window: DateWindow
) -> t.Iterator[dict[str, t.Any]]:
    """The records whose `key` (a timestamp in the one UTC form) lies in [window start, end).

    APIs differ (or are silent) on which ends of a range they include; asking a little wider
    and keeping exactly these gives each record to one window only. Timestamps are in one
    form, so the strings compare as times.
    """
    start, end = to_utc_iso(window.start), to_utc_iso(window.end)
    for record in records:
        if start <= record[key] < end:
            yield record

"""Date windows: split a [start, end) range into pieces an API accepts."""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass


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

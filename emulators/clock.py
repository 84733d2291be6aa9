"""Instants as the emulators hold them: aware UTC datetimes and epoch milliseconds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def anchor_instant(value: str | datetime | None) -> datetime:
    """An `anchor` option (ISO string, datetime, or None for now) as UTC whole seconds."""
    if value is None:
        moment = datetime.now(timezone.utc)
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        moment = value
    return as_utc(moment).replace(microsecond=0)


def to_epoch_ms(moment: datetime) -> int:
    """Exact epoch milliseconds of a datetime (naive is UTC)."""
    return (as_utc(moment) - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(epoch_ms: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds."""
    return EPOCH + timedelta(milliseconds=epoch_ms)

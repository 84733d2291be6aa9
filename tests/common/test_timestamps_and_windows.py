"""One timestamp form for bookmarks; windows that tile a range exactly."""

from __future__ import annotations

import datetime as dt

import pytest

from taps_common.timestamps import UTC, from_epoch_ms, parse_timestamp, to_epoch_ms, to_utc_iso
from taps_common.windows import DateWindow, date_windows


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2020-08-17T06:16:45.000Z", "2020-08-17T06:16:45.000000+00:00"),
        ("2020-08-17T06:16:45Z", "2020-08-17T06:16:45.000000+00:00"),
        ("2020-08-17T08:16:45+02:00", "2020-08-17T06:16:45.000000+00:00"),
        ("2020-08-17", "2020-08-17T00:00:00.000000+00:00"),
        ("2020-08-17T06:16:45", "2020-08-17T06:16:45.000000+00:00"),
        (dt.date(2020, 8, 17), "2020-08-17T00:00:00.000000+00:00"),
    ],
)
def test_every_input_form_becomes_the_one_utc_form(given: object, expected: str) -> None:
    assert to_utc_iso(given) == expected  # type: ignore[arg-type]


def test_normalised_strings_sort_like_the_times_they_name() -> None:
    values = ["2020-08-17T06:16:45.5Z", "2020-08-17T08:16:45+03:00", "2020-08-17T06:16:45Z"]
    assert sorted(to_utc_iso(v) for v in values) == [
        to_utc_iso(v) for v in sorted(values, key=parse_timestamp)
    ]


def test_epoch_milliseconds_round_trip_exactly() -> None:
    moment = dt.datetime(2020, 8, 17, 2, 8, 49, 123000, tzinfo=UTC)
    assert to_epoch_ms(moment) == 1597630129123
    assert from_epoch_ms(1597630129123) == moment


def test_unparseable_timestamp_raises_value_error() -> None:
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_timestamp("last tuesday")


def test_windows_tile_the_range_without_gaps_or_overlaps() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    end = dt.datetime(2024, 1, 10, 12, tzinfo=UTC)
    windows = list(date_windows(start, end, dt.timedelta(days=4)))
    assert windows == [
        DateWindow(start, start + dt.timedelta(days=4)),
        DateWindow(start + dt.timedelta(days=4), start + dt.timedelta(days=8)),
        DateWindow(start + dt.timedelta(days=8), end),
    ]
    assert start in windows[0]
    assert windows[0].end not in windows[0]  # half-open: the end belongs to the next window


def test_no_size_gives_one_window_and_an_empty_range_none() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert list(date_windows(start, start + dt.timedelta(days=400), None)) == [
        DateWindow(start, start + dt.timedelta(days=400))
    ]
    assert list(date_windows(start, start, dt.timedelta(days=1))) == []


def test_non_positive_window_size_is_refused() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="positive"):
        list(date_windows(start, start + dt.timedelta(days=1), dt.timedelta(0)))


# --- the text fast path for UTC times -------------------------------------------------------------

import random  # noqa: E402

from taps_common.timestamps import _text_to_utc_iso, normalise_timestamp  # noqa: E402


def slow_utc_iso(text: str) -> str:
    """The datetime round trip the fast path must agree with."""
    return parse_timestamp(text).isoformat(timespec="microseconds")


def random_utc_texts(count: int, seed: int = 7) -> list[str]:
    """UTC times as APIs write them: years 1 to 9999, 0 to 6 fraction digits, `T`/`t`/space, `Z`/`z`/`+00:00`/none."""
    chance = random.Random(seed)
    texts = []
    for _ in range(count):
        moment = dt.datetime(1, 1, 1) + dt.timedelta(seconds=chance.uniform(0, 315_537_811_199))
        fraction = f"{moment.microsecond:06d}"[: chance.randint(0, 6)]
        clock = f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}" + (f".{fraction}" if fraction else "")
        day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        texts.append(day + chance.choice("Tt ") + clock + chance.choice(["Z", "z", "+00:00", ""]))
    return texts


def test_utc_texts_read_without_a_datetime_equal_the_datetime_reading() -> None:
    texts = random_utc_texts(20_000) + ["2024-02-29T00:00:00Z", "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00"]
    expected = [slow_utc_iso(text) for text in texts]
    assert [_text_to_utc_iso.__wrapped__(text) for text in texts] == expected
    assert [normalise_timestamp(text) for text in texts] == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30T12:00:00Z",  # no such day
        "2023-02-29T12:00:00Z",
        "2024-05-01T24:00:00Z",  # no such hour
        "2024-05-01T12:60:00Z",
        "2024-05-01T12:00:60Z",
        "٢٠٢٤-05-01T12:00:00Z",  # digits, but not ASCII ones
    ],
)
def test_impossible_utc_texts_are_refused_as_the_datetime_reading_refuses_them(text: str) -> None:
    with pytest.raises(ValueError):
        slow_utc_iso(text)
    with pytest.raises(ValueError):
        _text_to_utc_iso.__wrapped__(text)
    with pytest.raises(ValueError):
        normalise_timestamp(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T12:00:00+02:00",
        "2024-05-01T12:00:00.1234567Z",
        "2024-05-01",
        " 2024-05-01T12:00:00Z ",
        "2024-05-01T12:00:00.Z",
    ],
)
def test_other_forms_take_the_datetime_reading(text: str) -> None:
    assert _text_to_utc_iso.__wrapped__(text) == slow_utc_iso(text)

"""Values an API sends in another form than documented: numbers as text, times missing."""

from __future__ import annotations

import logging
import typing as t

import pytest
from singer_sdk import typing as th

from taps_common.errors import APIRequestError
from taps_common.records import number_fields, numbers_from_text, required_timestamp
from taps_common.timestamps import parse_timestamp

SCHEMA = th.PropertiesList(
    th.Property("count", th.IntegerType),
    th.Property("duration", th.NumberType),
    th.Property("label", th.StringType),
    th.Property("either", th.CustomType({"type": ["string", "integer"]})),
).to_dict()


class FakeStream:
    name = "things"
    vendor_name = "Vendor"
    schema = SCHEMA

    def __init__(self) -> None:
        self.logger = logging.getLogger("tests.fake_stream")


def test_number_fields_are_the_integer_and_number_properties_that_take_no_text() -> None:
    assert number_fields(SCHEMA) == (("count", True), ("duration", False))


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"count": "12", "duration": "1714.132"}, {"count": 12, "duration": 1714.132}),
        ({"count": "12.0", "duration": "20"}, {"count": 12, "duration": 20}),
        ({"count": 12, "duration": 3.5}, {"count": 12, "duration": 3.5}),
        ({"label": "12", "either": "12"}, {"label": "12", "either": "12"}),
        ({"count": None}, {"count": None}),
    ],
)
def test_numbers_sent_as_text_become_numbers(record: dict[str, t.Any], expected: dict[str, t.Any]) -> None:
    assert numbers_from_text(dict(record), FakeStream()) == expected


def test_text_that_is_no_number_becomes_null_with_one_warning_per_field(caplog: pytest.LogCaptureFixture) -> None:
    stream = FakeStream()
    with caplog.at_level(logging.WARNING):
        first = numbers_from_text({"count": "n/a", "duration": "nan"}, stream)
        second = numbers_from_text({"count": "7.5"}, stream)
    assert first == {"count": None, "duration": None}
    assert second == {"count": None}
    assert len(caplog.records) == 2  # count once, duration once
    assert "Vendor sent 'n/a' for count in things, which is not a whole number" in caplog.text


def test_a_required_timestamp_in_the_one_form() -> None:
    row = {"at": "2024-05-01T12:00:00Z"}
    assert required_timestamp(row, "at", "Vendor answered /x") == "2024-05-01T12:00:00.000000+00:00"


@pytest.mark.parametrize("row", [{}, {"at": None}, {"at": ""}, {"at": "yesterday"}, {"at": 17}])
def test_a_missing_or_unreadable_required_timestamp_is_a_clear_error(row: dict[str, t.Any]) -> None:
    with pytest.raises(APIRequestError, match=r"^Vendor answered /x with a row whose `at` is .*not a date or time"):
        required_timestamp(row, "at", "Vendor answered /x")


@pytest.mark.parametrize("value", [None, 17, 1.5, ["2024-05-01"]])
def test_parse_timestamp_refuses_what_is_no_time_with_a_value_error(value: t.Any) -> None:  # noqa: ANN401
    with pytest.raises(ValueError, match="is not a date or datetime"):
        parse_timestamp(value)

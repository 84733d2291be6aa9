"""Turning an API's items into records: names a warehouse wants, fields a schema keeps."""

from __future__ import annotations

import math
import re
import typing as t
from functools import cache

from taps_common.errors import APIRequestError
from taps_common.timestamps import to_utc_iso

if t.TYPE_CHECKING:
    from collections.abc import Mapping


@cache
def snake_case(name: str) -> str:
    """`videoStart` -> `video_start`, `siteID` -> `site_id`, `URLPath` -> `url_path`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return spaced.replace("-", "_").replace(" ", "_").lower()


def split_known_fields(
    item: Mapping[str, t.Any], known: t.Collection[str]
) -> tuple[dict[str, t.Any], dict[str, t.Any] | None]:
    """(the known fields, every other field or None): undocumented fields are kept, not dropped.

    The SDK drops properties a schema does not declare, with a warning per record; a stream
    that puts the rest in one object column keeps them without knowing their names.
    """
    known_fields = {name: value for name, value in item.items() if name in known}
    others = {name: value for name, value in item.items() if name not in known}
    return known_fields, others or None


# --- values an API may send in another form than documented ----------------------------------


def required_timestamp(
    row: Mapping[str, t.Any],
    name: str,
    where: str,
    parse: t.Callable[[t.Any], str] = to_utc_iso,
) -> str:
    """`row[name]` in the one UTC form (through `parse`); a clear error when it is no time.

    For the field a record is keyed or bookmarked on: without it the record can be neither
    placed in a window nor loaded, and emitting it null would lose it silently.

    Raises:
        APIRequestError: naming `where` (the vendor and route) and the field.
    """
    value = row.get(name)
    try:
        if value is None or value == "":
            raise ValueError(name)  # noqa: TRY301
        return parse(value)
    except ValueError:
        msg = (
            f"{where} with a row whose `{name}` is {value!r}, not a date or time: the rows cannot be "
            "placed in time, so the sync stops rather than lose them. The API's answer format may "
            "have changed."
        )
        raise APIRequestError(msg) from None


_NUMBER_FIELDS_ATTRIBUTE = "_taps_common_number_fields"


def number_fields(schema: Mapping[str, t.Any]) -> tuple[tuple[str, bool], ...]:
    """(name, whether integer) of each top-level property typed integer or number, never string."""
    fields = []
    for name, definition in (schema.get("properties") or {}).items():
        types = definition.get("type", [])
        types = {types} if isinstance(types, str) else set(types)
        if types & {"integer", "number"} and "string" not in types:
            fields.append((name, "number" not in types))
    return tuple(fields)


def _number_from_text(text: str, integer: bool) -> int | float | None:  # noqa: FBT001
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if integer:
        return int(number) if number.is_integer() else None
    stripped = text.strip()
    return int(stripped) if stripped.lstrip("+-").isdigit() else number


def numbers_from_text(record: dict[str, t.Any], stream: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    """`record` with numbers sent as text (`"12"`) read as the numbers `stream`'s schema declares.

    APIs drift: a count may come as `"12"` one day, which a target refuses in an integer column.
    Only top-level integer and number properties are read; a text that is not such a number
    becomes null, with one warning per field (through `stream.logger`) rather than a failed load.
    """
    fields = getattr(stream, _NUMBER_FIELDS_ATTRIBUTE, None)
    if fields is None:
        fields = number_fields(stream.schema)
        setattr(stream, _NUMBER_FIELDS_ATTRIBUTE, fields)
    for name, integer in fields:
        value = record.get(name)
        if type(value) is str:
            number = _number_from_text(value, integer)
            record[name] = number
            if number is None:
                warned = stream.__dict__.setdefault("_taps_common_unreadable_numbers", set())
                if name not in warned:
                    warned.add(name)
                    stream.logger.warning(
                        "%s sent %r for %s in %s, which is not %s: left null (warned once per field)",
                        getattr(stream, "vendor_name", "The API"),
                        value,
                        name,
                        stream.name,
                        "a whole number" if integer else "a number",
                    )
    return record

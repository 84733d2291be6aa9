"""Checks every tap's catalog and output must pass, which the SDK's suite misses.

The SDK's primary-key uniqueness test compares generator objects and so can
never fail, and nothing there checks that key properties exist in the schema.
"""

from __future__ import annotations

import typing as t
from collections import Counter

if t.TYPE_CHECKING:
    from singer_sdk import Tap


def assert_keys_declared_in_schemas(tap: Tap) -> None:
    """Primary keys and replication keys name properties of the stream's schema."""
    for stream in tap.streams.values():
        properties = stream.schema["properties"]
        assert stream.primary_keys, f"{stream.name} has no primary key"
        for key in stream.primary_keys:
            assert key in properties, f"{stream.name}: primary key {key} not in schema"
        if stream.replication_key:
            assert stream.replication_key in properties, f"{stream.name}: replication key not in schema"
            assert properties[stream.replication_key].get("format") in {"date-time", "date"}, (
                f"{stream.name}: replication key is not a date or date-time"
            )


def assert_primary_keys_unique_and_present(
    records: t.Iterable[dict[str, t.Any]], primary_keys: t.Sequence[str], stream: str
) -> None:
    """Every record has every key property, and no two records share a key."""
    keys = []
    for record in records:
        missing = [key for key in primary_keys if record.get(key) is None]
        assert not missing, f"{stream}: record without {missing}: {record}"
        keys.append(tuple(record[key] for key in primary_keys))
    duplicates = [key for key, count in Counter(keys).items() if count > 1]
    assert not duplicates, f"{stream}: {len(duplicates)} duplicate keys, e.g. {duplicates[:3]}"

"""PyAirbyte drives each `source-<vendor>` executable as a user would, against the vendor's emulator.

`get_source(..., local_executable=.venv/bin/source-<vendor>)`, every discovered stream selected, a
local DuckDB cache in the test's temporary folder, and the same tap's Singer sync as the yardstick:

1. `check()` passes;
2. a first read (no state) caches exactly the records the Singer sync emits, stream by stream;
3. a second read, from the state PyAirbyte kept in its cache, reads exactly what the tap's own
   incremental sync reads from the first sync's final state (the re-read newest bins, windows or
   timestamps, and the full-table streams again);
4. a full refresh (`force_full_refresh=True`) reads everything again, and the incremental read after
   it still starts from the bookmarks of step 3: a full refresh leaves stored state alone;
5. `check()` with a wrong secret fails, with the tap's message that names the credential setting.

The reads append, so that the rows each one adds can be counted; a merge would fold re-read rows
into the rows they repeat.
"""

from __future__ import annotations

import typing as t

import airbyte as ab
import pytest
from airbyte import exceptions as ab_exceptions

from conftest import executable
from singer_runs import singer_sync
from vendors import VENDORS, Vendor

if t.TYPE_CHECKING:
    from pathlib import Path

    from airbyte.caches import DuckDBCache

vendor_params = pytest.mark.parametrize("vendor", list(VENDORS.values()), ids=list(VENDORS))


def table_counts(cache: DuckDBCache, streams: t.Iterable[str]) -> dict[str, int]:
    """Rows per stream table of the cache (0 for a stream that has no table yet)."""
    return {stream: len(cache[stream]) if stream in cache else 0 for stream in streams}


def with_zeros(counts: dict[str, int], streams: t.Iterable[str]) -> dict[str, int]:
    return {stream: counts.get(stream, 0) for stream in streams}


def minus(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {stream: after[stream] - before.get(stream, 0) for stream in after}


def source_for(vendor: Vendor, config: dict[str, t.Any]) -> ab.Source:
    return ab.get_source(vendor.source, config=config, local_executable=executable(vendor.source))


@vendor_params
def test_pyairbyte_reads_what_the_singer_sync_reads(
    vendor: Vendor, emulators: t.Callable[..., t.Any], tmp_path: Path
) -> None:
    config = vendor.config(emulators(vendor.name).url)
    first = singer_sync(vendor.tap, config, tmp_path / "singer-1")
    second = singer_sync(vendor.tap, config, tmp_path / "singer-2", state=first.state)
    assert first.counts, f"the Singer sync of {vendor.tap} read nothing: nothing to compare"
    assert sum(second.counts.values()) < sum(first.counts.values()), "the incremental sync re-read everything"

    source = source_for(vendor, config)
    source.check()
    source.select_all_streams()
    streams = sorted(source.get_selected_streams())
    assert set(first.counts) <= set(streams), "the Singer sync read streams that discover does not offer"
    # PyAirbyte configures every stream as `incremental`, even those that support only full
    # refresh; the source reads those in full, and keeps no state for them.
    incremental = {
        stream.name
        for stream in source.discovered_catalog.streams
        if any(mode.value == "incremental" for mode in stream.supported_sync_modes or [])
    }
    cache = ab.new_local_cache(cache_name=f"{vendor.name}_proof", cache_dir=tmp_path / "cache")

    # 1. the first read, with no state: the Singer sync's records
    result = source.read(cache=cache, write_strategy="append")
    after_first = table_counts(cache, streams)
    assert after_first == with_zeros(first.counts, streams)
    assert result.processed_records == sum(first.counts.values())
    stored = cache.get_state_provider(source_name=vendor.source)
    assert stored.known_stream_names == incremental & set(first.state.get("bookmarks", {})), (
        "PyAirbyte should keep one state per incremental stream that has a bookmark"
    )

    # 2. the second read, from the state PyAirbyte kept: what the tap's incremental sync reads
    result = source.read(cache=cache, write_strategy="append")
    after_second = table_counts(cache, streams)
    assert minus(after_second, after_first) == with_zeros(second.counts, streams)
    assert result.processed_records == sum(second.counts.values())

    # 3. a full refresh reads everything, ignoring (and keeping) the stored state
    result = source.read(cache=cache, write_strategy="replace", force_full_refresh=True)
    after_full_refresh = table_counts(cache, streams)
    assert after_full_refresh == with_zeros(first.counts, streams)
    assert result.processed_records == sum(first.counts.values())

    # 4. ... so the next incremental read resumes from the bookmarks of the second read
    source.read(cache=cache, write_strategy="append")
    assert minus(table_counts(cache, streams), after_full_refresh) == with_zeros(second.counts, streams)


@vendor_params
def test_pyairbyte_check_with_a_wrong_secret_fails_naming_the_setting(
    vendor: Vendor, emulators: t.Callable[..., t.Any]
) -> None:
    source = source_for(vendor, vendor.wrong_config(emulators(vendor.name).url))
    with pytest.raises(ab_exceptions.AirbyteConnectorCheckFailedError) as failed:
        source.check()
    reason = str((failed.value.context or {}).get("failure_reason"))
    for fragment in vendor.refusal:
        assert fragment in reason, f"{fragment!r} is not in the check's failure reason: {reason!r}"
    assert vendor.wrong_secret not in str(failed.value) + reason

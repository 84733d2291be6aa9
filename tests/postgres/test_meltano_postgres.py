"""Every tap through the real Meltano into a real PostgreSQL server (target-postgres), twice.

The first `meltano run` must load one row per primary key the tap emits, in one table per stream;
the second, from the state the first saved, re-sends some rows (full-table streams, bins and days
still filling, records at the bookmark), which must replace the old ones rather than add to them.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import typing as t
from dataclasses import dataclass

import pytest

from emulators.framework import EmulatorApp, EmulatorServer
from emulators.headspin import HeadSpinEmulator
from emulators.openspace import OpenSpaceEmulator
from emulators.seemetrix import SeemetrixEmulator
from emulators.unleash import UnleashEmulator
from emulators.wmspanel import WMSPanelEmulator
from tests.meltano_support import ROOT, meltano, meltano_env, postgres_query, saved_state

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.e2e

WMSPANEL_ANCHOR = dt.date(2024, 5, 10)


@dataclass(frozen=True)
class Case:
    """One tap against its emulator, with the emulators' small data of the other Meltano tests."""

    tap: str
    emulator: Callable[[], EmulatorApp]
    config: Callable[[t.Any, str], dict[str, t.Any]]
    """The tap's settings, from the emulator app and its base URL."""
    snapshots: frozenset[str] = frozenset()
    """Streams whose every sync adds a row (a primary key with the time of the sync)."""

    @property
    def schema(self) -> str:
        return self.tap.replace("-", "_")


CASES = [
    Case(
        "tap-unleash",
        lambda: UnleashEmulator(seed=9, devices=2, sessions_per_device=3, frames_per_session=20, page_size=50),
        lambda app, url: {
            "api_url": f"{url}/v1",
            "access_token": "ul_pat_test-token",
            "start_date": app.span_start.date().isoformat(),
        },
    ),
    Case(
        "tap-headspin",
        lambda: HeadSpinEmulator(seed=9, sessions=120, span_days=5),
        lambda app, url: {
            "api_url": url,
            "api_token": "test-api-token",
            "start_date": app.span_start.date().isoformat(),
        },
    ),
    Case(
        "tap-seemetrix",
        lambda: SeemetrixEmulator(seed=12, days=2, sessions_per_day=15),
        lambda app, url: {
            "api_url": f"{url}/api",
            "user_id": app.user_id,
            "user_key": app.user_key,
            "start_date": app.span_start.date().isoformat(),
        },
        snapshots=frozenset({"counters"}),
    ),
    Case(
        "tap-openspace",
        lambda: OpenSpaceEmulator(seed=9, videos=200, max_page_size=40),
        lambda app, url: {"api_url": url, "api_key": "test-openspace-key"},  # noqa: ARG005
    ),
    Case(
        "tap-wmspanel",
        lambda: WMSPanelEmulator(seed=9, anchor=WMSPANEL_ANCHOR, days=20, data_slices=2),
        lambda app, url: {  # noqa: ARG005
            "api_url": f"{url}/v1",
            "client_id": "test-client-id",
            "api_key": "test-api-key",
            "start_date": (WMSPANEL_ANCHOR - dt.timedelta(days=30)).isoformat(),
            "end_date": WMSPANEL_ANCHOR.isoformat(),
        },
    ),
]


@dataclass
class Emitted:
    """What a plain Singer run of the tap emitted for one stream."""

    key_properties: list[str]
    keys: set[tuple[t.Any, ...]]


def plain_singer_run(tap: str, config: dict[str, t.Any], tmp_path: Path) -> dict[str, Emitted]:
    """Run the tap alone (no Meltano, no target), as the reference: per stream, its primary key
    (from the SCHEMA message, i.e. the tap's catalog) and the distinct keys of its records."""
    config_file = tmp_path / f"{tap}.json"
    config_file.write_text(json.dumps(config))
    done = subprocess.run(  # noqa: S603
        [str(ROOT / ".venv" / "bin" / tap), "--config", str(config_file)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    streams: dict[str, Emitted] = {}
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "SCHEMA":
            streams.setdefault(message["stream"], Emitted(message["key_properties"], set()))
        elif message["type"] == "RECORD":
            stream = streams[message["stream"]]
            stream.keys.add(tuple(message["record"][key] for key in stream.key_properties))
    return streams


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Loaded:
    """What one schema of the warehouse holds, for the streams a tap emitted."""

    tables: set[str]
    counts: dict[str, int]
    primary_keys: dict[str, list[str]]
    """The columns of each table's PRIMARY KEY constraint, in key order."""
    duplicates: dict[str, list[t.Any]]
    """Per table, up to five primary keys that occur more than once (none, after a sound upsert)."""
    newest_batch: dict[str, str]
    """When each table's newest row was loaded (target-postgres's `_sdc_batched_at`)."""


def read_schema(env: dict[str, str], schema: str, emitted: dict[str, Emitted]) -> Loaded:
    """Read the schema in one connection (each connection is a process with psycopg to start)."""
    names = list(emitted)
    table = {name: f"{quoted(schema)}.{quoted(name)}" for name in names}
    key = {name: ", ".join(map(quoted, emitted[name].key_properties)) for name in names}
    tables, keys, *per_table = postgres_query(
        env,
        f"select table_name from information_schema.tables where table_schema = '{schema}'",
        "select c.table_name, k.column_name from information_schema.table_constraints c"
        " join information_schema.key_column_usage k using (constraint_schema, constraint_name, table_name)"
        f" where c.table_schema = '{schema}' and c.constraint_type = 'PRIMARY KEY' order by 1, k.ordinal_position",
        *(f"select count(*) from {table[name]}" for name in names),
        *(
            f"select {key[name]}, count(*) from {table[name]} group by {key[name]} having count(*) > 1 limit 5"
            for name in names
        ),
        *(f"select max(_sdc_batched_at) from {table[name]}" for name in names),
    )
    counts, duplicates, batches = (per_table[i * len(names) : (i + 1) * len(names)] for i in range(3))
    primary_keys: dict[str, list[str]] = {}
    for name, column in keys:
        primary_keys.setdefault(name, []).append(column)
    return Loaded(
        tables={name for (name,) in tables},
        counts={name: rows[0][0] for name, rows in zip(names, counts, strict=True)},
        primary_keys=primary_keys,
        duplicates={name: rows for name, rows in zip(names, duplicates, strict=True) if rows},
        newest_batch={name: rows[0][0] for name, rows in zip(names, batches, strict=True)},
    )


@pytest.fixture(params=CASES, ids=[case.tap for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return t.cast("Case", request.param)


def test_meltano_run_into_postgres_then_again_from_saved_state_adds_no_duplicates(
    case: Case, postgres: dict[str, str], tmp_path: Path
) -> None:
    with EmulatorServer(case.emulator()) as server:
        config = case.config(server.app, server.url)
        emitted = plain_singer_run(case.tap, config, tmp_path)
        prefix = case.schema.upper()
        env = meltano_env(tmp_path, {f"{prefix}_{key.upper()}": str(value) for key, value in config.items()})
        # Only the test server's settings: none of a developer's own TARGET_POSTGRES_* variables.
        env = {name: value for name, value in env.items() if not name.startswith("TARGET_POSTGRES_")} | postgres

        first_run = meltano(env, "run", case.tap, "target-postgres")
        assert postgres["TARGET_POSTGRES_PASSWORD"] not in first_run.stdout + first_run.stderr
        expected = {name: len(stream.keys) for name, stream in emitted.items()}
        first = read_schema(env, case.schema, emitted)
        assert first.tables == set(emitted)
        assert first.counts == expected
        # Each table's primary key is the stream's, as a constraint: the upsert joins on it.
        assert first.primary_keys == {name: stream.key_properties for name, stream in emitted.items()}
        assert saved_state(env, f"dev:{case.tap}-to-target-postgres")["bookmarks"]

        meltano(env, "run", case.tap, "target-postgres")
        second = read_schema(env, case.schema, emitted)
        assert second.duplicates == {}
        # Snapshot streams add one row per sync (their key holds the time it was taken).
        assert second.counts == {
            name: count * (2 if name in case.snapshots else 1) for name, count in expected.items()
        }
        # The second run did re-send rows (full-table streams at least), and they replaced the old.
        assert any(second.newest_batch[name] != first.newest_batch[name] for name in emitted), second.newest_batch

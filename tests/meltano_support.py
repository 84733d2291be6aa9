"""Running the project's real Meltano against the emulators, for every tap's tests.

The project's `meltano.yml` and the plugins `scripts/setup.sh` installed are
used as they are, with a throwaway system database (so state never leaks
between tests) and loader outputs in the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MELTANO = ROOT / ".venv-meltano" / "bin" / "meltano"
DUCKDB_PYTHON = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"


def meltano_env(tmp_path: Path, tap_settings: dict[str, str]) -> dict[str, str]:
    """Environment for a Meltano run: the tap's settings as env vars, outputs under `tmp_path`."""
    if not MELTANO.exists():
        pytest.fail("Meltano is not installed: run `bash scripts/setup.sh` first")
    return {
        **os.environ,
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "jsonl"),
        "TARGET_DUCKDB_FILEPATH": str(tmp_path / "warehouse.duckdb"),
        "TARGET_CSV_OUTPUT_PATH": str(tmp_path / "csv"),
        **tap_settings,
    }


def meltano(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `meltano ARGS` in the project; fail the test with Meltano's output if it fails."""
    done = subprocess.run(  # noqa: S603
        [str(MELTANO), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[:6000]
    return done


def saved_state(env: dict[str, str], state_id: str) -> dict[str, t.Any]:
    """The Singer state Meltano saved under `state_id`."""
    return json.loads(meltano(env, "state", "get", state_id).stdout)["singer_state"]


def jsonl_records(path: Path) -> list[dict[str, t.Any]]:
    """The records target-jsonl wrote to one file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def duckdb_counts(database: Path, tables: t.Iterable[str]) -> dict[str, int]:
    """Row counts of `schema.table` names in a DuckDB file, read with target-duckdb's own duckdb."""
    names = list(tables)
    script = (
        "import duckdb, json, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(json.dumps({t: c.execute(f'select count(*) from {t}').fetchone()[0] for t in sys.argv[2:]}))"
    )
    done = subprocess.run(  # noqa: S603
        [str(DUCKDB_PYTHON), "-c", script, str(database), *names], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


POSTGRES_PYTHON = ROOT / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin" / "python"
POSTGRES_SCRIPT = ROOT / "scripts" / "postgres.sh"
#: `scripts/postgres.sh` exits with this when PostgreSQL is missing and cannot be installed here.
POSTGRES_UNAVAILABLE = 3


def postgres_script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `scripts/postgres.sh COMMAND` (start, stop, status, env) with `env`; never raises on failure."""
    return subprocess.run(  # noqa: S603
        ["bash", str(POSTGRES_SCRIPT), command],  # noqa: S607
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


def postgres_query(env: dict[str, str], *queries: str) -> list[list[list[t.Any]]]:
    """The rows of each SQL statement (none for those that return none), run in one transaction
    with target-postgres's own psycopg, connected as the loader is: from the `TARGET_POSTGRES_*`
    variables of `env`."""
    script = (
        "import json, os, sys, psycopg\n"
        "e = os.environ\n"
        "with psycopg.connect(host=e['TARGET_POSTGRES_HOST'], port=e['TARGET_POSTGRES_PORT'],"
        " user=e['TARGET_POSTGRES_USER'], password=e['TARGET_POSTGRES_PASSWORD'],"
        " dbname=e['TARGET_POSTGRES_DATABASE']) as c:\n"
        "    done = [c.execute(q) for q in sys.argv[1:]]\n"
        "    print(json.dumps([[list(r) for r in d.fetchall()] if d.description else [] for d in done], default=str))\n"
    )
    if not POSTGRES_PYTHON.exists():
        pytest.fail("target-postgres is not installed: run `bash scripts/setup.sh` first")
    done = subprocess.run(  # noqa: S603
        [str(POSTGRES_PYTHON), "-c", script, *queries], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)

"""A private PostgreSQL server for the whole session, started and stopped by `scripts/postgres.sh`."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import tempfile
import typing as t
from pathlib import Path

import pytest

from tests.meltano_support import POSTGRES_UNAVAILABLE, postgres_script

if t.TYPE_CHECKING:
    from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres() -> Iterator[dict[str, str]]:
    """The `TARGET_POSTGRES_*` variables of a fresh server of its own (its own folder and port, so
    neither a developer's `output/postgres` server nor another test session is touched)."""
    # Under /tmp, not pytest's tmp_path: PostgreSQL runs as `postgres` when we are root, and
    # pytest's folders are closed to other users.
    folder = Path(tempfile.mkdtemp(prefix="taps-postgres-"))
    env = {**os.environ, "POSTGRES_DIR": str(folder), "POSTGRES_PORT": str(free_port())}
    started = postgres_script("start", env)
    try:
        if started.returncode != 0:
            reason = f"PostgreSQL could not be started: {started.stderr.strip()[-2000:]}"
            if started.returncode == POSTGRES_UNAVAILABLE and os.environ.get("CI", "").lower() not in {"1", "true"}:
                pytest.skip(reason)
            pytest.fail(reason)
        printed = postgres_script("env", env)
        assert printed.returncode == 0, printed.stderr
        # `export NAME=VALUE` lines, shell-quoted.
        variables = dict(shlex.split(line)[1].split("=", 1) for line in printed.stdout.splitlines() if line.strip())
        yield variables
    finally:
        stopped = postgres_script("stop", env)
        shutil.rmtree(folder, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stderr

"""Airbyte's own clients against every `source-<vendor>`: the suite in airbyte_tests/, run from here.

airbyte_tests/ drives the executables with PyAirbyte (check, a read into a DuckDB cache equal to the
Singer sync, an incremental read from the state PyAirbyte kept, a wrong secret) and with the
Airbyte CDK's standard source tests. Those clients live in .venv-airbyte, never in .venv (airbyte-cdk
needs PyPI's `backoff`, singer-sdk `python-backoff`: both write the same module), so each vendor's
share runs as a subprocess of that venv's python, with its own pytest configuration
(airbyte_tests/pytest.ini); this suite never collects airbyte_tests/ itself (`testpaths`).

`scripts/setup-airbyte.sh` runs once per session and does nothing when the venv matches its pins.
Where it cannot build the venv (no Python 3.11 or 3.12, no package index), these tests are skipped
with its output, except in CI (`CI=true`), where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import typing as t
from pathlib import Path

import pytest

if t.TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
AIRBYTE_PYTHON = ROOT / ".venv-airbyte" / "bin" / "python"
VENDORS = ["headspin", "openspace", "seemetrix", "unleash", "wmspanel"]
OUTPUT_TAIL = 8000


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def airbyte_python() -> Iterator[Path]:
    """.venv-airbyte's python, after `scripts/setup-airbyte.sh` (once per session)."""
    done = subprocess.run(  # noqa: S603
        ["bash", str(ROOT / "scripts" / "setup-airbyte.sh")],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0 or not AIRBYTE_PYTHON.exists():
        message = (
            f"scripts/setup-airbyte.sh could not create .venv-airbyte (exit status {done.returncode}):\n"
            + (done.stdout + done.stderr)[-OUTPUT_TAIL:]
        )
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    yield AIRBYTE_PYTHON


@pytest.mark.parametrize("vendor", VENDORS)
def test_airbyte_clients_accept_the_source(vendor: str, airbyte_python: Path, tmp_path: Path) -> None:
    command = [
        str(airbyte_python), "-m", "pytest", "airbyte_tests", "-q", "-m", "not image_tests", "-k", vendor,
    ]
    # Everything the run writes (PyAirbyte's logs and caches, pytest's folders) goes under tmp_path.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(  # noqa: S603
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"`{' '.join(command[1:])}` (with .venv-airbyte's python) exited {done.returncode}; "
        f"its output ends with:\n{output[-OUTPUT_TAIL:]}"
    )
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary

"""The Airbyte clients' tests: run with .venv-airbyte's python, never .venv's.

    bash scripts/setup-airbyte.sh
    .venv-airbyte/bin/python -m pytest airbyte_tests -q -m "not image_tests" [-k unleash]

PyAirbyte reads its settings from the environment when it is imported, so they are set here, before
any test module imports it: offline (no connector registry, no telemetry), and every file it writes
(logs, caches, temporary files, the CDK suite's configs) inside one folder made for this session,
under which pytest's own temporary folders are made too. That folder is deleted when the session
passes and kept (its path printed) when it fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import threading
import typing as t
from pathlib import Path

import pytest

if importlib.util.find_spec("airbyte_cdk") is None:
    pytest.exit(
        "airbyte_tests run with .venv-airbyte's python: `bash scripts/setup-airbyte.sh`, then "
        '`.venv-airbyte/bin/python -m pytest airbyte_tests -m "not image_tests"`',
        returncode=4,
    )

RUN_DIR = Path(tempfile.mkdtemp(prefix="airbyte-tests-"))
os.environ.update(
    {
        "AIRBYTE_OFFLINE_MODE": "1",
        "DO_NOT_TRACK": "1",
        "AIRBYTE_LOGGING_ROOT": str(RUN_DIR / "logs"),
        "AIRBYTE_PROJECT_DIR": str(RUN_DIR / "project"),
        "AIRBYTE_CACHE_ROOT": str(RUN_DIR / "cache"),
        "AIRBYTE_TEMP_DIR": str(RUN_DIR / "tmp"),
        "TMPDIR": str(RUN_DIR / "tmp"),
    }
)
for _folder in ("logs", "project", "cache", "tmp"):
    (RUN_DIR / _folder).mkdir()
tempfile.tempdir = None  # read TMPDIR again

from vendors import BIN, VENDORS, Vendor  # noqa: E402

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]


def executable(name: str) -> Path:
    """A console script of .venv, or a clear failure if it is not installed."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `bash scripts/setup.sh` (it installs the project's executables)")
    return path


class Emulator:
    """One `tap-emulators serve VENDOR` subprocess on a free loopback port."""

    def __init__(self, vendor: Vendor) -> None:
        self.vendor = vendor
        options = {**vendor.emulator_options, **vendor.credential_options}
        command = [str(executable("tap-emulators")), "serve", vendor.name, "--port", "0", "--seed", "7"]
        for key, value in options.items():
            command += ["--option", f"{key}={value}"]
        self.log = RUN_DIR / f"emulator-{vendor.name}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command, stdout=subprocess.PIPE, stderr=log, text=True
            )
        timer = threading.Timer(30, self.process.kill)
        timer.start()
        try:
            line = self.process.stdout.readline() if self.process.stdout else ""
        finally:
            timer.cancel()
        served, _, url = line.strip().partition(" ")
        if served != vendor.name or not url.startswith("http://127.0.0.1:"):
            self.stop()
            pytest.fail(f"the {vendor.name} emulator did not start: {line!r}\n{self.log.read_text()[-2000:]}")
        self.url = url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


@pytest.fixture(scope="session")
def emulators() -> t.Iterator[t.Callable[[str], Emulator]]:
    """`emulators(vendor)`: that vendor's emulator, started on first use and kept for the session.

    The data never changes within a session (fixed anchor, fixed seed), so every test of a vendor
    can share one emulator.
    """
    running: dict[str, Emulator] = {}

    def get(name: str) -> Emulator:
        if name not in running:
            running[name] = Emulator(VENDORS[name])
        return running[name]

    yield get
    for emulator in running.values():
        emulator.stop()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:  # noqa: ARG001
    """Delete this session's folder when everything passed; keep it for a look when not."""
    if exitstatus == 0 and not os.environ.get("AIRBYTE_TESTS_KEEP"):
        shutil.rmtree(RUN_DIR, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: t.Any, exitstatus: int) -> None:  # noqa: ANN401
    if exitstatus != 0 or os.environ.get("AIRBYTE_TESTS_KEEP"):
        terminalreporter.write_line(f"airbyte_tests: logs, caches and configs kept in {RUN_DIR}")

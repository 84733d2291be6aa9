"""A user's mistakes in the settings: refused before any request, naming the setting, no stack trace.

Through the real command line, against an emulator that counts requests: each case must exit 1
with a message that names the setting to fix, print no traceback, leak no secret, and cost no
request at all. The command lines run a few at a time (each is mostly Python starting up).
"""

from __future__ import annotations

import re
import typing as t
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.cli import assert_no_secret, run_tap_cli
from tests.reliability.report import REPORT
from tests.reliability.support import emulator, first_words
from tests.reliability.taps import CASES, TAP_NAMES, BadSetting, TapCase

if t.TYPE_CHECKING:
    from pathlib import Path

    from tests.cli import CliRun

pytestmark = pytest.mark.e2e


def _secret_setting(case: TapCase) -> str:
    properties = case.tap_class.config_jsonschema["properties"]
    return next(name for name, definition in properties.items() if definition.get("secret"))


def generic_cases(case: TapCase) -> list[BadSetting]:
    """The mistakes any tap can be given, with this tap's setting names."""
    listed = case.list_setting
    cases = [
        BadSetting("start_date that is no date", {"start_date": "2024-02-30"}, "start_date"),
        BadSetting("end_date that is no date", {"end_date": "next tuesday"}, "end_date"),
        BadSetting("end_date before start_date", {"start_date": "2024-03-01", "end_date": "2024-02-01"}, "end_date"),
        BadSetting("wrong type: max_tries as text", {"max_tries": "five"}, "max_tries"),
        BadSetting("wrong type: the device list as text", {listed: "one-device"}, listed),
        BadSetting("missing required secret", {_secret_setting(case): None}, _secret_setting(case)),
        BadSetting("empty device list", {listed: []}, listed),
    ]
    return [bad for bad in cases if not (bad.names in case.lacks or set(bad.changes) & case.lacks)]


GENERIC_ROWS = [bad.name for bad in generic_cases(CASES[0])]
SPECIFIC = [(case, bad) for case in CASES for bad in case.bad_settings]
ALL = [(case, bad) for case in CASES for bad in generic_cases(case)] + SPECIFIC
REPORT.declare(
    "config",
    "Bad configuration",
    """
Through the real command line, against an emulator that counts requests. Every cell: exit 1 before
any request (the emulator counted none), no stack trace, no secret in the output, and the message
names the setting (the start of that line is shown). "The device list" is the setting that lists
what to read: `device_ids` (Unleash, Seemetrix), `filter_device_addresses` (HeadSpin), `org_ids`
(OpenSpace), `data_slice_ids` (WMSPanel).
""",
    GENERIC_ROWS + [bad.name for _, bad in SPECIFIC],
    TAP_NAMES,
    cells=[(bad.name, case.name) for case, bad in ALL],
    not_applicable={
        (row, case.name): "n/a (no such setting)" for case in CASES for row in GENERIC_ROWS
        if row not in {bad.name for bad in generic_cases(case)}
    },
)


def run_bad(case: TapCase, bad: BadSetting, tmp_path: Path) -> tuple[CliRun, int, dict[str, t.Any]]:
    """Run the command line with the bad settings; what it printed, and how many requests it made."""
    with emulator(case) as server:
        config = case.config(server.url)
        for name, value in bad.changes.items():
            if value is None:
                config.pop(name, None)
            else:
                config[name] = value
        run = run_tap_cli(case.executable, config, tmp_path)
        return run, server.app.request_count(), config


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[CliRun, int, dict[str, t.Any]]]:
    """Every case's run, a few at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            (case.name, bad.name): pool.submit(run_bad, case, bad, tmp_path_factory.mktemp("config"))
            for case, bad in ALL
        }
        return {key: future.result() for key, future in futures.items()}


_LOG_PREFIX = re.compile(r"^.*\|\s*(ERROR|WARNING|CRITICAL)\s*\|[^|]*\|\s*")
_CLI_PREFIX = re.compile(r"^tap-[a-z]+: (settings )?error: ")


def naming_line(stderr: str, setting: str) -> str | None:
    """The first stderr line that names `setting`, without a log line's time and level."""
    forms = (f"`{setting}`", f"config['{setting}']", f"'{setting}'")
    for line in stderr.splitlines():
        if any(form in line for form in forms):
            return _CLI_PREFIX.sub("", _LOG_PREFIX.sub("", line))
    return None


@pytest.mark.parametrize(("case", "bad"), ALL, ids=[f"{c.name}: {b.name}" for c, b in ALL])
def test_bad_setting_fails_before_any_request(
    case: TapCase, bad: BadSetting, runs: dict[tuple[str, str], tuple[CliRun, int, dict[str, t.Any]]]
) -> None:
    run, requests, config = runs[case.name, bad.name]
    assert run.returncode == 1, f"exit {run.returncode}: {run.stderr[-2000:]}"
    assert requests == 0, f"{requests} requests before the settings were refused"
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    line = naming_line(run.stderr, bad.names)
    assert line is not None, f"no line names `{bad.names}`:\n{run.stderr[-2000:]}"
    assert_no_secret(run, *case.secrets(config))
    REPORT.fill("config", bad.name, case.name, f"refused: {first_words(line, 80, mask=False)}")

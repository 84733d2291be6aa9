"""Secrets in failures that happen before any answer: the command line, end to end.

Every scenario of the other modules already searches its Singer messages, log lines and printed
message for every secret. These add the failures where the request never gets an answer, through
the real command line (stdout and stderr as a user sees them): nothing listening, a host name
that does not resolve, and a redirect to another host (whose Location carries the credentials
back, as a misconfigured proxy would). They matter most for Seemetrix and WMSPanel, whose
credentials travel in the query string, where `requests` puts them in its exception texts.
"""

from __future__ import annotations

import socket
import typing as t
from urllib.parse import quote

import pytest

from emulators.framework import Fault
from tests.cli import assert_no_secret, run_tap_cli
from tests.reliability.report import REPORT
from tests.reliability.support import emulator, first_words
from tests.reliability.taps import CASES, TAP_NAMES, TapCase

if t.TYPE_CHECKING:
    from pathlib import Path

    from tests.cli import CliRun

pytestmark = pytest.mark.e2e

ROWS = {
    "refused": "connection refused (nothing listening)",
    "dns": "DNS failure (http://nonexistent.invalid)",
    "redirect": "302 redirect to another host, credentials in its Location",
}
REPORT.declare(
    "secrets",
    "Secrets when no answer comes",
    """
Through the real command line. Every cell: exit 1, one clear line on stderr, no stack trace, and
no secret (plain or URL-encoded) on stdout or stderr. Every scenario of the tables above was
searched the same way (messages, DEBUG logs, the printed message), the killed runs included:
no secret was found anywhere.
""",
    list(ROWS.values()),
    TAP_NAMES,
)


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clear_line(case: TapCase, run: CliRun) -> str:
    """The one error line of a failed run (exit 1, no traceback)."""
    assert run.returncode == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    lines = [line for line in run.stderr.splitlines() if line.startswith(f"{case.executable}: error: ")]
    assert len(lines) == 1, run.stderr[-2000:]
    return lines[0].removeprefix(f"{case.executable}: error: ")


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("scenario", ROWS)
def test_no_secret_when_no_answer_comes(case: TapCase, scenario: str, tmp_path: Path) -> None:
    if scenario == "redirect":
        config = case.config("http://127.0.0.1:9")
        leaked_query = "&".join(f"s{index}={quote(secret, safe='')}" for index, secret in enumerate(case.secrets(config)))
        moved = Fault(kind="status", status=302, headers={"Location": f"https://elsewhere.invalid/moved?{leaked_query}"})
        with emulator(case, [moved]) as server:
            config = case.config(server.url)
            run = run_tap_cli(case.executable, config, tmp_path)
            assert server.app.request_count() == 1, "the redirect was followed, or retried"
        says = "redirects are not followed"
    elif scenario == "refused":
        config = case.config(f"http://127.0.0.1:{free_port()}")
        run = run_tap_cli(case.executable, config, tmp_path)
        says = "the connection was refused"
    else:
        config = case.config("http://nonexistent.invalid")
        run = run_tap_cli(case.executable, config, tmp_path)
        says = "the host name could not be resolved"
    line = clear_line(case, run)
    assert says in line, line
    assert not [m for m in run.messages if m["type"] == "RECORD"], "records without an answer?"
    assert_no_secret(run, *case.secrets(config))
    REPORT.fill("secrets", ROWS[scenario], case.name, f"exit 1, no secret: {first_words(line, mask=False)}")

"""Running a tap's real command line as a subprocess, as Meltano does."""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

BIN = Path(sys.executable).parent


@dataclass
class CliRun:
    """Exit code, output, and the Singer messages on stdout."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> list[dict[str, t.Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]


def run_tap_cli(
    executable: str,
    config: dict[str, t.Any],
    tmp_path: Path,
    *args: str,
    state: dict[str, t.Any] | None = None,
) -> CliRun:
    """Run `executable --config FILE [--state FILE] ARGS` and collect what it printed."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    command = [str(BIN / executable), "--config", str(config_file), *args]
    if state is not None:
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        command += ["--state", str(state_file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    return CliRun(done.returncode, done.stdout, done.stderr)


def assert_no_secret(run: CliRun, *secrets: str) -> None:
    """No secret in stdout or stderr, plain or in any URL encoding."""
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}:
            assert form not in run.stdout, f"secret {form!r} on stdout"
            assert form not in run.stderr, f"secret {form!r} on stderr"

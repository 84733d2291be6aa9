"""The yardstick: the same tap's Singer sync (`tap-<vendor> --config F [--state F]`), as a subprocess."""

from __future__ import annotations

import json
import subprocess
import typing as t
from collections import Counter
from dataclasses import dataclass

from vendors import BIN

if t.TYPE_CHECKING:
    from pathlib import Path


@dataclass
class SingerSync:
    """Records per stream, and the last STATE value, of one Singer sync."""

    counts: dict[str, int]
    state: dict[str, t.Any]


def singer_sync(tap: str, config: dict[str, t.Any], folder: Path, state: dict[str, t.Any] | None = None) -> SingerSync:
    """Run `tap --config F [--state F]`; fail with its stderr if it fails."""
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "config.json"
    config_file.write_text(json.dumps(config))
    command = [str(BIN / tap), "--config", str(config_file)]
    if state is not None:
        state_file = folder / "state.json"
        state_file.write_text(json.dumps(state))
        command += ["--state", str(state_file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr[-4000:]}"
    counts: Counter[str] = Counter()
    last_state: dict[str, t.Any] = {}
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            counts[message["stream"]] += 1
        elif message["type"] == "STATE":
            last_state = message["value"]
    return SingerSync(dict(counts), last_state)

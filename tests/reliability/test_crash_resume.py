"""Kill each tap at random points of a sync, resume from the last STATE it emitted, lose nothing.

In-process, a writer dies before a chosen record (the seed picks which) and drops whatever it
had not delivered yet, as a killed process would. Once per tap, the real command line is killed
with SIGKILL while it waits for an answer. The run that resumes is given the last STATE the
killed one emitted; together they must hold every record of a clean run, and records read twice
must come from where the killed run was: after its last STATE (the window or page in progress),
or at a bookmark's own value (which an incremental read includes).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import typing as t

import pytest

from emulators.framework import Fault
from tests.cli import BIN, assert_no_secret, run_tap_cli
from tests.helpers import DyingWriter, Killed
from tests.reliability.report import REPORT
from tests.reliability.support import (
    Run,
    WaitRecorder,
    by_key,
    clean_records,
    clean_run,
    emulator,
    passes,
    primary_keys,
    record_key,
    replication_keys,
    run_in_process,
    run_secret_hits,
    secret_hits,
    state_problems,
)
from tests.reliability.taps import CASES, TAP_NAMES, TapCase

if t.TYPE_CHECKING:
    from pathlib import Path

SEEDS = (1, 2, 3, 4)
SIGKILL_ROW = "SIGKILL of the command line, waiting for an answer"

REPORT.declare(
    "crash",
    "Crash and resume",
    """
Each seed kills the sync before a different record (of the clean run's total); the resumed run
starts from the last STATE the killed run emitted. "read twice" counts records of incremental
streams that both runs emitted (full-table streams are read in full by every sync, by design, and
are counted apart). Records written after the last STATE but not yet flushed die with the
process, as they would. The SIGKILL row kills the real command line (`concurrent_requests` 1, so
the kill comes at the same point every time) while it waits for an answer on the data route,
after that route's first requests, and resumes it with `--state`.
""",
    [*(f"seed {seed}" for seed in SEEDS), SIGKILL_ROW],
    TAP_NAMES,
)


def resume_report(
    case: TapCase,
    killed: list[dict[str, t.Any]],
    resumed: list[dict[str, t.Any]],
    state: dict[str, t.Any] | None,
) -> str:
    """Check that the two runs together lose nothing and re-read only what they must; describe it.

    `killed` and `resumed` are Singer messages; `state` is the one the resumed run was given.
    """
    keys, replication = primary_keys(case), replication_keys(case)
    clean = clean_records(case)

    def records(messages: list[dict[str, t.Any]]) -> list[tuple[str, dict[str, t.Any]]]:
        return [(m["stream"], m["record"]) for m in messages if m["type"] == "RECORD"]

    union = by_key(case, keys, records(killed)) | by_key(case, keys, records(resumed))
    lost = sorted(set(clean) - set(union), key=str)
    assert not lost, f"{case}: {len(lost)} records lost, e.g. {lost[:3]}"
    wrong = [key for key in clean if union[key] != clean[key]]
    assert not wrong, f"{case}: records unlike the clean run's, e.g. {wrong[:1]}: {union[wrong[0]]} != {clean[wrong[0]]}"

    last_state_at = max((i for i, m in enumerate(killed) if m["type"] == "STATE"), default=-1)
    after_last_state = {
        record_key(case, keys, m["stream"], m["record"]) for m in killed[last_state_at + 1 :] if m["type"] == "RECORD"
    }
    again = {record_key(case, keys, stream, record): record for stream, record in records(resumed)}
    twice = incremental = 0
    for stream, record in records(killed):
        key = record_key(case, keys, stream, record)
        if key not in again:
            continue
        twice += 1
        rk = replication.get(stream)
        if rk is None:
            continue
        incremental += 1
        bookmark = _bookmark_for(state, stream, record)
        assert key in after_last_state or record.get(rk) == bookmark or bookmark is None, (
            f"{case}: {key} was emitted before the last STATE and behind its bookmark ({bookmark!r}), "
            "yet read again"
        )
    full_table = twice - incremental
    text = f"{len(records(killed))} records out before the kill; 0 lost; {incremental} read twice"
    return text + (f" (+{full_table} full-table)" if full_table else "")


def _bookmark_for(state: dict[str, t.Any] | None, stream: str, record: dict[str, t.Any]) -> t.Any:  # noqa: ANN401
    """The bookmark that covers `record` in `state` (its partition's, else the stream's)."""
    stream_state = ((state or {}).get("bookmarks") or {}).get(stream) or {}
    for partition in stream_state.get("partitions") or []:
        context = partition.get("context") or {}
        if all(record.get(name) == value for name, value in context.items()):
            return partition.get("replication_key_value")
    return stream_state.get("replication_key_value")


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("seed", SEEDS)
def test_killed_in_process_resumes_without_loss(case: TapCase, seed: int, sleeps: WaitRecorder) -> None:
    total = len(clean_run(case).records)
    kill_before = random.Random(f"{case.name}:{seed}").randrange(1, total)
    with emulator(case) as server:
        config = case.config(server.url)
        killed = run_in_process(case, config, writer=DyingWriter(kill_before))
        assert isinstance(killed.failure, Killed), killed.printed or "the sync was not killed"
        resumed = run_in_process(case, config, state=killed.last_state)
    assert resumed.failure is None, resumed.printed
    for run in (killed, resumed):
        assert not state_problems(run, replication_keys(case)), state_problems(run, replication_keys(case))
        assert not run_secret_hits(run, case.secrets(config)), run_secret_hits(run, case.secrets(config))
    outcome = resume_report(case, killed.messages, resumed.messages, killed.last_state)
    REPORT.fill("crash", f"seed {seed}", case.name, f"killed before record {kill_before} of {total}: {outcome}")


def _messages(text: str) -> list[dict[str, t.Any]]:
    """The complete Singer lines of a killed process's stdout (a last, cut line is dropped)."""
    lines = text.split("\n")[:-1]  # whatever follows the last newline was cut off
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.e2e
@pytest.mark.parametrize("case", CASES, ids=str)
def test_sigkill_of_the_command_line_resumes_without_loss(case: TapCase, tmp_path: Path) -> None:
    """The command line, killed with SIGKILL mid-sync, then run again with the last STATE it printed."""
    hang = Fault(kind="slow", delay=30.0, path_regex=case.data_path)
    with emulator(case, [*passes(case.data_path, case.skip), hang]) as server:
        # One request at a time, so that the one left hanging is the one the sync waits for
        # and the kill comes at the same point on every run.
        config = case.config(server.url, concurrent_requests=1)
        config_file = tmp_path / "config.json"
        config_file.write_text(json.dumps(config))
        with (tmp_path / "out").open("w+") as out, (tmp_path / "err").open("w+") as err:
            process = subprocess.Popen(  # noqa: S603
                [str(BIN / case.executable), "--config", str(config_file)], stdout=out, stderr=err
            )
            deadline = time.monotonic() + 60
            while server.app.request_count(case.data_path) <= case.skip and process.poll() is None:
                assert time.monotonic() < deadline, "the tap never reached the hanging request"
                time.sleep(0.02)
            assert process.poll() is None, f"the tap ended before it could be killed: {err.read()}"
            time.sleep(0.1)  # let it settle in its wait for the answer
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            assert process.returncode == -signal.SIGKILL
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        killed = _messages(stdout)
        states = [m["value"] for m in killed if m["type"] == "STATE"]
        state = states[-1] if states else None
        assert not secret_hits(case.secrets(config), stdout=stdout, stderr=stderr)
        as_run = Run(killed, None, "", [])
        assert not state_problems(as_run, replication_keys(case)), state_problems(as_run, replication_keys(case))

        resume_dir = tmp_path / "resume"
        resume_dir.mkdir()
        resumed = run_tap_cli(case.executable, config, resume_dir, state=state)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_no_secret(resumed, *case.secrets(config))
    outcome = resume_report(case, killed, resumed.messages, state)
    REPORT.fill("crash", SIGKILL_ROW, case.name, outcome)

"""Running emulators, taps and references as processes, and measuring them.

Every measured program is its own process: the emulator (so that serving does not compete with the
measured client for the GIL), the tap (its real console script, as Meltano runs it) and the
reference. Wall time and peak RSS are taken by a small wrapper process around each measured one
(`measure.py`, from the kernel's accounting of that one child), request counts from the emulator's
counter.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MEASURE = Path(__file__).with_name("measure.py")
STDERR_TAIL_LINES = 15
RUN_TIMEOUT_SECONDS = 900  # far above any sync here; a run that takes longer has hung
RECORD_PREFIXES = (b'{"type":"RECORD"', b'{"type": "RECORD"')


class BenchmarkError(Exception):
    """Something broke (a sync failed, records differ): the results cannot be trusted."""


@dataclass(frozen=True)
class Measured:
    """How one process ran."""

    seconds: float
    peak_rss_mib: float


# --- processes ------------------------------------------------------------------------------------


def run_measured(command: Sequence[str], read: Callable[[IO[bytes]], None] | None = None) -> Measured:
    """Run `command` to its end: its output to `read` (or /dev/null), its time and peak RSS measured.

    The command runs under `measure.py`, a small process of its own (see there why).

    Raises:
        BenchmarkError: when it exits non-zero, with the end of its stderr.
    """
    with tempfile.TemporaryFile() as stderr, tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "measured.json"
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-S", str(MEASURE), str(report), "--", *command],
            cwd=ROOT,
            stdout=subprocess.DEVNULL if read is None else subprocess.PIPE,
            stderr=stderr,
            env=_environment(),
            start_new_session=True,  # its own process group, so a hung run can be ended whole
        )
        timed_out = threading.Event()
        watchdog = threading.Timer(RUN_TIMEOUT_SECONDS, _end_group, (process.pid, timed_out))
        watchdog.start()
        try:
            if read is not None:
                assert process.stdout is not None  # noqa: S101
                with process.stdout:
                    read(process.stdout)
        finally:
            process.wait()
            watchdog.cancel()
        if timed_out.is_set():
            raise BenchmarkError(f"{Path(command[0]).name} did not finish within {RUN_TIMEOUT_SECONDS} s")
        if process.returncode != 0:
            stderr.seek(0)
            tail = b"".join(stderr.readlines()[-STDERR_TAIL_LINES:]).decode(errors="replace")
            name = " ".join([Path(command[0]).name, *command[1:3]])
            raise BenchmarkError(f"{name} exited {process.returncode}:\n{tail}")
        measured = json.loads(report.read_text())
    return Measured(measured["seconds"], measured["peak_rss_kib"] / 1024)  # Linux counts KiB


def _end_group(group: int, ended: threading.Event) -> None:
    """Kill a run that hung (the wrapper and the program it measures: the group it leads)."""
    ended.set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def _environment() -> dict[str, str]:
    """This environment, with the repository importable (for `python -m benchmarks.reference`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class Emulator:
    """One vendor emulator in its own process (`tap-emulators serve`), driven over its control endpoints."""

    def __init__(self, vendor: str, options: Mapping[str, Any], latency: float = 0.0) -> None:
        self._session = requests.Session()
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: nothing it prints can block it
        command = [str(BIN / "tap-emulators"), "serve", vendor, "--port", "0", "--latency", str(latency)]
        for key, value in options.items():
            command += ["--option", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
        self._process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        assert self._process.stdout is not None  # noqa: S101
        line = self._process.stdout.readline()  # "<vendor> <url>" once the data is generated
        if not line:
            self._stderr.seek(0)
            errors = self._stderr.read().decode(errors="replace")[-2000:]
            self.stop()
            raise BenchmarkError(f"the {vendor} emulator did not start:\n{errors}")
        self.url = line.split()[1]

    def stats(self) -> dict[str, Any]:
        """Request counts since the last reset (`requests`, `by_path`, `pages_past_last`)."""
        stats: dict[str, Any] = self._session.get(f"{self.url}/_emulator/stats", timeout=60).json()
        return stats

    def reset(self) -> None:
        """Zero the counters."""
        self._session.post(f"{self.url}/_emulator/reset", timeout=60).raise_for_status()

    def memoize(self) -> None:
        """Answer repeated requests from memory: timed runs then measure the client, not the emulator."""
        answer = self._session.post(f"{self.url}/_emulator/memoize", json={"enabled": True}, timeout=60)
        answer.raise_for_status()

    def stop(self) -> None:
        """End the emulator process (it exits cleanly on SIGTERM)."""
        self._session.close()
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- output -------------------------------------------------------------------------------------


@dataclass
class Output:
    """What a run wrote: its records in canonical JSON (sorted keys), where they belong, the last state."""

    partition: str | None
    truth_fields: tuple[str, ...]
    records: list[bytes] = field(default_factory=list)
    partitions: list[Any] = field(default_factory=list)
    truth: list[tuple[Any, ...]] = field(default_factory=list)
    state: dict[str, Any] | None = None

    def read_singer(self, pipe: IO[bytes]) -> None:
        """A tap's Singer messages: RECORDs kept, the last STATE remembered."""
        for line in pipe:
            message = orjson.loads(line)
            if message.get("type") == "RECORD":
                self._add(message["record"])
            elif message.get("type") == "STATE":
                self.state = message["value"]

    def read_records(self, pipe: IO[bytes]) -> None:
        """The reference's bare records, one JSON object a line."""
        for line in pipe:
            self._add(orjson.loads(line))

    def _add(self, record: dict[str, Any]) -> None:
        self.records.append(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        self.partitions.append(record.get(self.partition) if self.partition else None)
        self.truth.append(tuple(record.get(name) for name in self.truth_fields))

    def by_partition(self) -> dict[Any, list[bytes]]:
        """Records in emitted order, per partition."""
        grouped: dict[Any, list[bytes]] = defaultdict(list)
        for partition, record in zip(self.partitions, self.records, strict=True):
            grouped[partition].append(record)
        return grouped


def count_records(pipe: IO[bytes]) -> int:
    """RECORD messages in a Singer stream, counted without decoding it (a million lines)."""
    return sum(1 for line in pipe if line.startswith(RECORD_PREFIXES))


def differences(first: Sequence[bytes], second: Sequence[bytes], names: tuple[str, str]) -> str | None:
    """None when both hold the same records (as multisets), else what differs, with examples."""
    only_first = Counter(first)
    only_first.subtract(Counter(second))
    extra = [record for record, count in only_first.items() if count > 0]
    missing = [record for record, count in only_first.items() if count < 0]
    if not extra and not missing:
        return None
    lines = [f"{names[0]} {len(first)} records, {names[1]} {len(second)}"]
    for label, records in ((f"only in {names[0]}", extra), (f"only in {names[1]}", missing)):
        lines += [f"  {label}: {record.decode()[:400]}" for record in records[:2]]
    return "\n".join(lines)


# --- taps ---------------------------------------------------------------------------------------


class TapRunner:
    """Runs one tap (selecting only the benchmarked stream) and the vendor's reference against one emulator."""

    def __init__(self, vendor: str, stream: str, workdir: Path) -> None:
        self.vendor = vendor
        self.stream = stream
        self.workdir = workdir
        self.executable = str(BIN / f"tap-{vendor}")
        self._catalog: Path | None = None

    def write_json(self, name: str, content: Mapping[str, Any]) -> Path:
        """A file in the work directory (configs, states, catalogs)."""
        path = self.workdir / f"{self.vendor}-{name}.json"
        path.write_bytes(orjson.dumps(content))
        return path

    def catalog(self, config: Path) -> Path:
        """The tap's own catalog with only the benchmarked stream selected (discovered once)."""
        if self._catalog is None:
            discovered = subprocess.run(  # noqa: S603
                [self.executable, "--config", str(config), "--discover"],
                cwd=ROOT, capture_output=True, check=False, env=_environment(),
            )
            if discovered.returncode != 0:
                errors = discovered.stderr.decode(errors="replace")[-2000:]
                raise BenchmarkError(f"tap-{self.vendor} --discover failed:\n{errors}")
            catalog = orjson.loads(discovered.stdout)
            names = [entry["tap_stream_id"] for entry in catalog["streams"]]
            if self.stream not in names:
                raise BenchmarkError(f"tap-{self.vendor} offers no stream {self.stream!r} (it has {names})")
            for entry in catalog["streams"]:
                for metadata in entry["metadata"]:
                    if metadata["breadcrumb"] == []:
                        metadata["metadata"]["selected"] = entry["tap_stream_id"] == self.stream
            self._catalog = self.write_json("catalog", catalog)
        return self._catalog

    def tap(
        self, config: Path, read: Callable[[IO[bytes]], None] | None = None, state: Path | None = None
    ) -> Measured:
        """One sync by the tap's console script."""
        command = [self.executable, "--config", str(config), "--catalog", str(self.catalog(config))]
        if state is not None:
            command += ["--state", str(state)]
        return run_measured(command, read)

    def reference(self, config: Path, read: Callable[[IO[bytes]], None] | None = None) -> Measured:
        """One run of the vendor's reference loop."""
        return run_measured([sys.executable, "-m", "benchmarks.reference", self.vendor, str(config)], read)

    def tap_start_up(self) -> Measured:
        """The tap's console script doing nothing but start (importing itself and singer-sdk) and end."""
        return run_measured([self.executable, "--version"])

    def reference_start_up(self) -> Measured:
        """The reference doing nothing but start (importing requests and orjson) and end."""
        return run_measured([sys.executable, "-c", "import benchmarks.reference"])


@contextmanager
def work_directory() -> Iterator[Path]:
    """A scratch directory for configs, catalogs and states."""
    with tempfile.TemporaryDirectory(prefix="tap-benchmarks-") as path:
        yield Path(path)

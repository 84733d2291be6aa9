"""Every `source-<vendor>` command against its emulator, over the Airbyte protocol, as a subprocess.

The Singer sync of the same tap (in-process, same settings) is the yardstick: an Airbyte read must
give exactly its records, and its per-stream states must hold exactly its bookmarks.
"""

from __future__ import annotations

import json
import subprocess
import typing as t
from collections import defaultdict
from dataclasses import dataclass

import pytest

from emulators.framework import Fault
from taps_common.airbyte import sdk_builtin_settings, without_progress_markers
from tests.cli import BIN, assert_no_secret
from tests.reliability.support import emulator, run_in_process
from tests.reliability.taps import CASES, TapCase

if t.TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

#: Some of singer-sdk's own settings, which must not reach Airbyte.
SDK_BUILTIN_SETTINGS = {"stream_maps", "stream_map_config", "faker_config", "flattening_enabled", "flattening_max_depth", "batch_config"}


@dataclass
class SourceRun:
    """Exit status, the protocol messages on stdout, and stderr."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> list[dict[str, t.Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]

    def of_type(self, kind: str) -> list[dict[str, t.Any]]:
        return [message for message in self.messages if message["type"] == kind]

    def records(self) -> dict[str, list[dict[str, t.Any]]]:
        by_stream: dict[str, list[dict[str, t.Any]]] = defaultdict(list)
        for message in self.of_type("RECORD"):
            by_stream[message["record"]["stream"]].append(message["record"]["data"])
        return dict(by_stream)

    def stream_states(self) -> dict[str, t.Any]:
        """The last state of each stream."""
        return {m["state"]["stream"]["stream_descriptor"]["name"]: m["state"]["stream"]["stream_state"] for m in self.of_type("STATE")}

    def state_messages(self) -> list[dict[str, t.Any]]:
        """The last STATE of each stream, as a client stores them for the next read."""
        last = {m["state"]["stream"]["stream_descriptor"]["name"]: m["state"] for m in self.of_type("STATE")}
        return list(last.values())


def run_source(case: TapCase, tmp_path: Path, command: str, **files: t.Any) -> SourceRun:
    """`source-<vendor> COMMAND --config F [--catalog F] [--state F]`, files written from `files`."""
    executable = case.executable.replace("tap-", "source-")
    arguments = [str(BIN / executable), command]
    for name, content in files.items():
        path = tmp_path / f"{command}-{name}.json"
        path.write_text(json.dumps(content))
        arguments += [f"--{name}", str(path)]
    done = subprocess.run(arguments, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    for line in done.stdout.splitlines():  # only protocol messages on stdout, one JSON object a line
        assert isinstance(json.loads(line), dict) and "type" in json.loads(line), f"not a protocol message: {line!r}"
    return SourceRun(done.returncode, done.stdout, done.stderr)


def configured_catalog(streams: list[dict[str, t.Any]], mode: str = "incremental") -> dict[str, t.Any]:
    """Every discovered stream, in `mode` where the stream supports it, else full refresh."""
    return {
        "streams": [
            {
                "stream": stream,
                "sync_mode": mode if mode in stream["supported_sync_modes"] else "full_refresh",
                "destination_sync_mode": "append",
            }
            for stream in streams
        ]
    }


def singer_records(messages: list[dict[str, t.Any]]) -> dict[str, list[dict[str, t.Any]]]:
    by_stream: dict[str, list[dict[str, t.Any]]] = defaultdict(list)
    for message in messages:
        if message["type"] == "RECORD":
            by_stream[message["stream"]].append(message["record"])
    return dict(by_stream)


def stable(case: TapCase, records: dict[str, list[dict[str, t.Any]]]) -> dict[str, list[dict[str, t.Any]]]:
    """Records without the fields that differ between two runs by design (a snapshot's time)."""
    return {
        stream: [{k: v for k, v in record.items() if k not in case.volatile.get(stream, ())} for record in rows]
        for stream, rows in records.items()
    }


@pytest.mark.parametrize("case", CASES, ids=str)
def test_spec_lists_the_taps_own_settings_with_secrets_marked(case: TapCase, tmp_path: Path) -> None:
    run = run_source(case, tmp_path, "spec")
    assert run.returncode == 0, run.stderr
    (spec,) = run.of_type("SPEC")
    specification = spec["spec"]["connectionSpecification"]
    own = case.tap_class.config_jsonschema["properties"]
    assert set(specification["properties"]) == set(own) - sdk_builtin_settings(case.tap_class)
    assert {"api_url", "start_date", "max_tries", "concurrent_requests"} <= set(specification["properties"])
    assert not SDK_BUILTIN_SETTINGS & set(specification["properties"])
    for name, definition in specification["properties"].items():
        assert definition.get("airbyte_secret", False) == bool(own[name].get("secret")), name
    assert any(definition.get("airbyte_secret") for definition in specification["properties"].values())
    assert spec["spec"]["documentationUrl"].startswith("https://")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_check_succeeds_with_one_request_and_fails_clearly_on_a_wrong_secret(case: TapCase, tmp_path: Path) -> None:
    with emulator(case) as server:
        config = case.config(server.url)
        run = run_source(case, tmp_path, "check", config=config)
        assert run.returncode == 0, run.stderr
        assert [m["connectionStatus"]["status"] for m in run.of_type("CONNECTION_STATUS")] == ["SUCCEEDED"]
        assert server.app.request_count() == 1

        secret_setting = next(
            name for name, definition in case.tap_class.config_jsonschema["properties"].items()
            if definition.get("secret") and config.get(name)
        )
        wrong = {**config, secret_setting: "a-wrong-secret-0123456789abcdef"}
        failed = run_source(case, tmp_path, "check", config=wrong)
        assert failed.returncode == 0, failed.stderr
        (status,) = failed.of_type("CONNECTION_STATUS")
        assert status["connectionStatus"]["status"] == "FAILED"
        assert f"`{secret_setting}`" in status["connectionStatus"]["message"]
        assert not failed.of_type("TRACE")
        assert_no_secret(failed, *case.secrets(wrong))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_discover_gives_one_stream_per_singer_stream_with_keys_and_cursor(case: TapCase, tmp_path: Path) -> None:
    with emulator(case) as server:
        config = case.config(server.url)
        run = run_source(case, tmp_path, "discover", config=config)
    assert run.returncode == 0, run.stderr
    (catalog,) = run.of_type("CATALOG")
    tap = case.tap_class(config=config)
    streams = {stream["name"]: stream for stream in catalog["catalog"]["streams"]}
    assert set(streams) == set(tap.streams)
    for name, singer_stream in tap.streams.items():
        stream = streams[name]
        assert stream["json_schema"] == singer_stream.schema
        assert stream["source_defined_primary_key"] == [[key] for key in singer_stream.primary_keys]
        if singer_stream.replication_key:
            assert stream["supported_sync_modes"] == ["full_refresh", "incremental"]
            assert stream["source_defined_cursor"] is True
            assert stream["default_cursor_field"] == [singer_stream.replication_key]
        else:
            assert stream["supported_sync_modes"] == ["full_refresh"]
            assert "default_cursor_field" not in stream


@pytest.mark.parametrize("case", CASES, ids=str)
def test_reads_give_the_singer_syncs_records_and_bookmarks(case: TapCase, tmp_path: Path) -> None:
    with emulator(case) as server:
        config = case.config(server.url)
        streams = run_source(case, tmp_path, "discover", config=config).of_type("CATALOG")[0]["catalog"]["streams"]
        catalog = configured_catalog(streams)

        first = run_source(case, tmp_path, "read", config=config, catalog=catalog)
        assert first.returncode == 0, first.stderr
        singer_first = run_in_process(case, config)
        assert singer_first.failure is None
        assert stable(case, first.records()) == stable(case, singer_records(singer_first.messages))
        assert all(isinstance(m["record"]["emitted_at"], int) for m in first.of_type("RECORD"))

        singer_bookmarks = singer_first.last_state["bookmarks"]
        incremental = {stream["name"] for stream in streams if "incremental" in stream["supported_sync_modes"]}
        assert incremental, "every tap has an incremental stream"
        assert first.stream_states() == {
            name: without_progress_markers(singer_bookmarks[name]) for name in incremental if name in singer_bookmarks
        }
        # A STATE message only when a stream's state changes.
        seen: dict[str, t.Any] = {}
        for message in first.of_type("STATE"):
            stream = message["state"]["stream"]
            assert seen.get(stream["stream_descriptor"]["name"]) != stream["stream_state"]
            seen[stream["stream_descriptor"]["name"]] = stream["stream_state"]

        second = run_source(case, tmp_path, "read", config=config, catalog=catalog, state=first.state_messages())
        assert second.returncode == 0, second.stderr
        singer_second = run_in_process(case, config, state=singer_first.last_state)
        assert stable(case, second.records()) == stable(case, singer_records(singer_second.messages))
        for name in incremental:
            full = len(first.records().get(name, []))
            assert len(second.records().get(name, [])) < full or full == 0, f"{name} was read again in full"
        assert_no_secret(first, *case.secrets(config))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_full_refresh_reads_everything_and_leaves_the_bookmark_alone(case: TapCase, tmp_path: Path) -> None:
    with emulator(case) as server:
        config = case.config(server.url)
        streams = run_source(case, tmp_path, "discover", config=config).of_type("CATALOG")[0]["catalog"]["streams"]
        first = run_source(case, tmp_path, "read", config=config, catalog=configured_catalog(streams))
        state = first.state_messages()

        full = run_source(case, tmp_path, "read", config=config, catalog=configured_catalog(streams, "full_refresh"), state=state)
        assert full.returncode == 0, full.stderr
        assert stable(case, full.records()) == stable(case, first.records())
        assert not full.of_type("STATE"), "a full refresh must not replace the bookmark a later incremental read needs"

        # Asking incremental of a stream without a cursor reads it in full, as Airbyte clients expect.
        again = run_source(case, tmp_path, "read", config=config, catalog=configured_catalog(streams), state=state)
        for stream in streams:
            if "incremental" not in stream["supported_sync_modes"]:
                name = stream["name"]
                assert stable(case, again.records()).get(name) == stable(case, first.records()).get(name)


@pytest.mark.parametrize("form", ["global", "legacy_singer", "legacy_streams", "wrapped_messages"])
def test_older_state_forms_resume_like_per_stream_state(form: str, tmp_path: Path) -> None:
    case = CASES[0]
    with emulator(case) as server:
        config = case.config(server.url)
        streams = run_source(case, tmp_path, "discover", config=config).of_type("CATALOG")[0]["catalog"]["streams"]
        catalog = configured_catalog(streams)
        first = run_source(case, tmp_path, "read", config=config, catalog=catalog)
        per_stream = first.state_messages()
        expected = run_source(case, tmp_path, "read", config=config, catalog=catalog, state=per_stream).records()
        states = {s["stream"]["stream_descriptor"]["name"]: s["stream"]["stream_state"] for s in per_stream}
        state: t.Any = {
            "global": [
                {
                    "type": "GLOBAL",
                    "global": {
                        "shared_state": {},
                        "stream_states": [{"stream_descriptor": {"name": n}, "stream_state": s} for n, s in states.items()],
                    },
                }
            ],
            "legacy_singer": {"bookmarks": states},
            "legacy_streams": {"type": "LEGACY", "data": states},
            "wrapped_messages": [{"type": "STATE", "state": message} for message in per_stream],
        }[form]
        resumed = run_source(case, tmp_path, "read", config=config, catalog=catalog, state=state)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.records() == expected
    assert sum(map(len, expected.values())) < sum(map(len, first.records().values()))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_failing_read_ends_with_a_trace_error_after_the_records_it_read(case: TapCase, tmp_path: Path) -> None:
    faults = [Fault(kind="slow", delay=0.0, path_regex=case.data_path, times=case.skip)]
    faults += [Fault(kind="status", status=500, body="down", path_regex=case.data_path, times=100)]
    with emulator(case, faults) as server:
        config = case.config(server.url, concurrent_requests=1)
        streams = run_source(case, tmp_path, "discover", config=config).of_type("CATALOG")[0]["catalog"]["streams"]
        run = run_source(case, tmp_path, "read", config=config, catalog=configured_catalog(streams))
    assert run.returncode == 1
    kinds = [message["type"] for message in run.messages]
    assert kinds[-1] == "TRACE"
    error = run.messages[-1]["trace"]["error"]
    assert error["failure_type"] == "system_error"
    assert "500" in error["message"] or "kept failing" in error["message"].lower() or "failed" in error["message"].lower()
    assert "RECORD" in kinds, "records read before the failure are delivered"
    assert_no_secret(run, *case.secrets(config))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_settings_and_catalogs_are_config_errors(case: TapCase, tmp_path: Path) -> None:
    with emulator(case) as server:
        config = case.config(server.url)
        bad = {**config, "start_date": "last tuesday"}
        discover = run_source(case, tmp_path, "discover", config=bad)
        assert discover.returncode == 1
        (trace,) = discover.of_type("TRACE")
        assert trace["trace"]["error"]["failure_type"] == "config_error"
        assert "`start_date`" in trace["trace"]["error"]["message"]
        assert "Traceback" not in discover.stdout

        catalog = {"streams": [{"stream": {"name": "no_such_stream", "json_schema": {}}, "sync_mode": "full_refresh"}]}
        read = run_source(case, tmp_path, "read", config=config, catalog=catalog)
        assert read.returncode == 1
        assert read.of_type("TRACE")[-1]["trace"]["error"]["failure_type"] == "config_error"
        assert "no_such_stream" in read.of_type("TRACE")[-1]["trace"]["error"]["message"]
        assert not read.of_type("RECORD")
        assert server.app.request_count() == 0

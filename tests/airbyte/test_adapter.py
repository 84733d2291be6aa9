"""The Airbyte adapter's own rules: state forms, catalogs, messages, and a stdout only protocol messages reach."""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
import typing as t

import pytest

from taps_common.airbyte import (
    AirbyteMessageWriter,
    AirbyteSourceError,
    ReadPlan,
    connection_specification,
    run_airbyte_source,
    singer_state_from_airbyte,
    without_progress_markers,
)
from tests.reliability.support import emulator
from tests.reliability.taps import UNLEASH, UNLEASH_TOKEN

if t.TYPE_CHECKING:
    from pathlib import Path

BOOKMARK = {"replication_key": "timestamp", "replication_key_value": "2024-05-01T00:00:00.000000+00:00"}


def messages_of(protocol: io.BytesIO) -> list[dict[str, t.Any]]:
    return [json.loads(line) for line in protocol.getvalue().splitlines()]


# --- incoming state ----------------------------------------------------------------------------


def test_per_stream_state_becomes_singer_bookmarks() -> None:
    state = [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "analytics"}, "stream_state": BOOKMARK}}]
    assert singer_state_from_airbyte(state) == {"bookmarks": {"analytics": BOOKMARK}}


def test_global_and_legacy_states_become_the_same_bookmarks() -> None:
    expected = {"bookmarks": {"analytics": BOOKMARK}}
    entry = {"stream_descriptor": {"name": "analytics"}, "stream_state": BOOKMARK}
    assert singer_state_from_airbyte([{"type": "GLOBAL", "global": {"shared_state": {}, "stream_states": [entry]}}]) == expected
    assert singer_state_from_airbyte({"type": "LEGACY", "data": {"analytics": BOOKMARK}}) == expected
    assert singer_state_from_airbyte({"bookmarks": {"analytics": BOOKMARK}}) == expected
    assert singer_state_from_airbyte({"analytics": BOOKMARK}) == expected
    assert singer_state_from_airbyte([{"type": "STATE", "state": {"type": "STREAM", "stream": entry}}]) == expected
    assert singer_state_from_airbyte([]) == {"bookmarks": {}}


def test_a_state_of_unknown_type_is_a_config_error() -> None:
    with pytest.raises(AirbyteSourceError, match="Unknown state type 'SHARDED'") as raised:
        singer_state_from_airbyte([{"type": "SHARDED"}])
    assert raised.value.failure_type == "config_error"


def test_progress_markers_are_left_out_at_every_depth() -> None:
    state = {
        "progress_markers": {"Note": "interim"},
        "partitions": [{"context": {"device_id": "a"}, "progress_markers": {"x": 1}, **BOOKMARK}],
    }
    assert without_progress_markers(state) == {"partitions": [{"context": {"device_id": "a"}, **BOOKMARK}]}


# --- outgoing state ----------------------------------------------------------------------------


def test_state_messages_only_for_incremental_streams_whose_bookmark_changed() -> None:
    protocol = io.BytesIO()
    writer = AirbyteMessageWriter(protocol)
    writer.state_streams = {"analytics"}
    writer.stream_states = {"analytics": BOOKMARK}
    writer.write_record("analytics", {"n": 1}, None)
    writer.write_singer_state({"bookmarks": {"analytics": BOOKMARK, "devices": {"x": 1}}})  # unchanged
    moved = {**BOOKMARK, "replication_key_value": "2024-05-02T00:00:00.000000+00:00"}
    writer.write_singer_state({"bookmarks": {"analytics": {**moved, "progress_markers": {"n": 2}}}})
    writer.write_singer_state({"bookmarks": {"analytics": moved}})  # the same once markers are dropped
    kinds = [message["type"] for message in messages_of(protocol)]
    assert kinds == ["RECORD", "STATE"]
    state = messages_of(protocol)[1]["state"]
    assert state == {
        "type": "STREAM",
        "stream": {"stream_descriptor": {"name": "analytics"}, "stream_state": moved},
        "sourceStats": {"recordCount": 1.0},
    }


def test_a_state_is_written_out_after_the_records_it_covers() -> None:
    protocol = io.BytesIO()
    writer = AirbyteMessageWriter(protocol)
    writer.state_streams = {"analytics"}
    writer.write_record("analytics", {"n": 1}, None)
    assert protocol.getvalue() == b""  # buffered
    writer.write_singer_state({"bookmarks": {"analytics": BOOKMARK}})
    assert [m["type"] for m in messages_of(protocol)] == ["RECORD", "STATE"]


# --- catalogs -----------------------------------------------------------------------------------


def discovered() -> dict[str, t.Any]:
    return UNLEASH.tap_class(config=UNLEASH.config("http://127.0.0.1:9")).catalog_dict


def configured(*streams: tuple[str, str], properties: dict[str, list[str]] | None = None) -> dict[str, t.Any]:
    entries = {entry["tap_stream_id"]: entry for entry in discovered()["streams"]}
    items = []
    for name, mode in streams:
        schema = entries[name]["schema"]
        if properties and name in properties:
            schema = {**schema, "properties": {p: schema["properties"][p] for p in properties[name]}}
        items.append({"stream": {"name": name, "json_schema": schema}, "sync_mode": mode})
    return {"streams": items}


def selected(catalog: dict[str, t.Any]) -> dict[str, bool]:
    return {
        entry["tap_stream_id"]: next(m["metadata"]["selected"] for m in entry["metadata"] if not m["breadcrumb"])
        for entry in catalog["streams"]
    }


def test_only_the_configured_streams_are_selected() -> None:
    plan = ReadPlan(configured(("sessions", "full_refresh")), discovered())
    assert selected(plan.singer_catalog(discovered())) == {"devices": False, "sessions": True, "analytics": False}


def test_incremental_only_where_there_is_a_cursor() -> None:
    plan = ReadPlan(configured(("analytics", "incremental"), ("devices", "incremental")), discovered())
    assert plan.incremental == {"analytics"}
    assert plan.full_refresh == {"devices"}


def test_full_refresh_starts_without_the_streams_bookmark_and_keeps_the_others() -> None:
    plan = ReadPlan(configured(("analytics", "full_refresh"), ("sessions", "full_refresh")), discovered())
    state = {"bookmarks": {"analytics": BOOKMARK, "other": BOOKMARK}}
    assert plan.starting_state(state) == {"bookmarks": {"other": BOOKMARK}}


def test_columns_left_out_of_the_configured_schema_are_deselected_but_keys_stay() -> None:
    plan = ReadPlan(configured(("sessions", "full_refresh"), properties={"sessions": ["session_id"]}), discovered())
    catalog = plan.singer_catalog(discovered())
    (entry,) = [e for e in catalog["streams"] if e["tap_stream_id"] == "sessions"]
    columns = {m["breadcrumb"][1]: m["metadata"].get("selected") for m in entry["metadata"] if m["breadcrumb"]}
    assert columns["session_id"] is not False
    assert any(value is False for value in columns.values())


@pytest.mark.parametrize(
    "catalog",
    [
        {"nope": []},
        {"streams": [{"stream": {"name": "missing"}, "sync_mode": "full_refresh"}]},
        {"streams": [{"stream": {"name": "sessions"}, "sync_mode": "INVALID"}]},
        {"streams": [{"stream": {"name": "sessions"}}]},
        [],
    ],
)
def test_a_catalog_that_does_not_fit_is_a_config_error(catalog: t.Any) -> None:  # noqa: ANN401
    with pytest.raises(AirbyteSourceError) as raised:
        ReadPlan(catalog, discovered())
    assert raised.value.failure_type == "config_error"


def test_the_specification_marks_secrets_and_keeps_the_required_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with_builtin = copy.deepcopy(UNLEASH.tap_class.config_jsonschema)
    UNLEASH.tap_class.append_builtin_config(with_builtin)  # what `--about` does to the class
    assert "stream_maps" in with_builtin["properties"]
    monkeypatch.setattr(UNLEASH.tap_class, "config_jsonschema", with_builtin)
    specification = connection_specification(UNLEASH.tap_class)
    assert not {"stream_maps", "flattening_enabled", "faker_config", "batch_config"} & set(specification["properties"])
    assert specification["properties"]["access_token"]["airbyte_secret"] is True
    assert "airbyte_secret" not in specification["properties"]["start_date"]
    assert specification["required"] == UNLEASH.tap_class.config_jsonschema.get("required", [])


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("2024-05-01", True),
        ("2024-05-01T00:00:00Z", True),
        ("2024-05-01T12:30:00.123456+02:00", True),
        ("2024-05-01 12:30", True),
        ("yesterday", False),
        ("05/01/2024", False),
    ],
)
def test_date_settings_accept_a_plain_date_in_the_specification(value: str, accepted: bool) -> None:  # noqa: FBT001
    definition = connection_specification(UNLEASH.tap_class)["properties"]["start_date"]
    assert "format" not in definition  # a validator checking `date-time` would refuse 2024-05-01
    assert bool(re.match(definition["pattern"], value)) is accepted


# --- in-process runs ---------------------------------------------------------------------------


def test_logs_become_masked_log_messages(tmp_path: Path) -> None:
    with emulator(UNLEASH) as server:
        config = tmp_path / "config.json"
        config.write_text(json.dumps(UNLEASH.config(server.url)))
        protocol = io.BytesIO()
        status = run_airbyte_source(UNLEASH.tap_class, ["check", "--config", str(config)], protocol)
    assert status == 0
    logs = [m["log"] for m in messages_of(protocol) if m["type"] == "LOG"]
    assert logs and all(set(log) == {"level", "message"} for log in logs)
    assert all(UNLEASH_TOKEN not in log["message"] for log in logs)
    assert messages_of(protocol)[-1] == {"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}}


def test_debug_is_accepted_as_airbyte_passes_it() -> None:
    protocol = io.BytesIO()
    assert run_airbyte_source(UNLEASH.tap_class, ["spec", "--debug"], protocol) == 0
    assert messages_of(protocol)[-1]["type"] == "SPEC"


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    protocol = io.BytesIO()
    status = run_airbyte_source(UNLEASH.tap_class, ["discover", "--config", str(tmp_path / "absent.json")], protocol)
    assert status == 1
    (trace,) = [m for m in messages_of(protocol) if m["type"] == "TRACE"]
    assert trace["trace"]["error"]["failure_type"] == "config_error"
    assert "absent.json" in trace["trace"]["error"]["message"]


def test_a_bug_is_a_system_error_with_a_masked_stack_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: t.Any) -> t.NoReturn:  # noqa: ANN401
        raise RuntimeError(f"bug near {UNLEASH_TOKEN}")

    monkeypatch.setattr(UNLEASH.tap_class, "check_connection", broken)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(UNLEASH.config("http://127.0.0.1:9")))
    protocol = io.BytesIO()
    status = run_airbyte_source(UNLEASH.tap_class, ["check", "--config", str(config)], protocol)
    assert status == 1
    error = messages_of(protocol)[-1]["trace"]["error"]
    assert error["failure_type"] == "system_error"
    assert "RuntimeError" in error["stack_trace"]
    assert UNLEASH_TOKEN not in protocol.getvalue().decode()


def test_stray_output_cannot_reach_the_protocol_stream(tmp_path: Path) -> None:
    """A print becomes a LOG message; bytes written to descriptor 1 by C code or a child go to stderr."""
    script = (
        "import os, sys\n"
        "from tap_unleash.tap import TapUnleash\n"
        "def noisy(self):\n"
        "    print('a stray print')\n"
        "    os.write(1, b'written to fd 1\\n')\n"
        "    return 'ok'\n"
        "TapUnleash.check_connection = noisy\n"
        "from taps_common.airbyte import source_main\n"
        "sys.argv = ['source-unleash', 'check', '--config', sys.argv[1]]\n"
        "source_main(TapUnleash)\n"
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps(UNLEASH.config("http://127.0.0.1:9")))
    done = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    assert {"type": "LOG", "log": {"level": "INFO", "message": "a stray print"}} in messages
    assert messages[-1]["connectionStatus"]["status"] == "SUCCEEDED"
    assert "written to fd 1" in done.stderr

"""An Airbyte CDK `Source` whose every command runs a connector executable as a subprocess.

The CDK's standard tests run a connector in-process: they build it with `create_connector()` and
drive it through `AirbyteEntrypoint`, which calls the source's `spec`, `check`, `discover` and
`read`. Here each of those runs the real executable (`.venv/bin/source-<vendor> VERB ...`) with
the very files the tests wrote (config, catalog, state), and reads its stdout as the platform
does, only more strictly: every line must be an Airbyte message the CDK's protocol models accept,
or the test fails naming the line.

- `spec`, `check` and `discover` return what the executable printed (one SPEC, CONNECTION_STATUS
  or CATALOG); its LOG and TRACE messages go out through the message repository, in order, so
  they are in the test's output too (secret leak checks included).
- `read` yields every message the executable printed, in order.
- An executable that exits non-zero fails the command with its TRACE error (message, failure
  type) and the end of its stderr; `check` and `discover` also fail when their one result message
  is missing (`check` must print a CONNECTION_STATUS and exit 0 even when the check fails). The CDK entrypoint's in-process config validation runs before `check` only, as in
  any CDK source; `discover` and `read` leave validation to the executable.

The entrypoint re-serialises what the executable printed; it also overwrites
`sourceStats.recordCount` of STATE messages with its own count, so the suite does not see the
executable's counts.
"""

from __future__ import annotations

import logging
import subprocess
import typing as t
from dataclasses import dataclass
from pathlib import Path

import orjson
from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteMessageSerializer,
    ConnectorSpecification,
    FailureType,
    Level,
    TraceType,
    Type,
)
from airbyte_cdk.sources import Source
from airbyte_cdk.sources.message import InMemoryMessageRepository, MessageRepository
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

STDERR_TAIL = 3000


class ProtocolViolation(AssertionError):
    """The executable printed something on stdout that is not an Airbyte message."""


class ExecutableFailed(AirbyteTracedException):
    """The executable exited non-zero, or without the one message its command must print."""


class CheckContractBroken(AssertionError):
    """`check` must print one CONNECTION_STATUS and exit 0, whatever the outcome.

    Not an `AirbyteTracedException`: the CDK entrypoint would turn a `config_error` one into a
    FAILED status of its own, hiding that the executable printed none.
    """


@dataclass
class Launch:
    """One run of the executable: its command, exit status, stdout messages and stderr."""

    command: list[str]
    returncode: int
    messages: list[AirbyteMessage]
    stderr: str

    def of_type(self, kind: Type) -> list[AirbyteMessage]:
        return [message for message in self.messages if message.type == kind]

    def failure(self, problem: str) -> ExecutableFailed:
        """The executable's own error (its last TRACE error), with what went wrong and its stderr."""
        errors = [
            message.trace.error
            for message in self.of_type(Type.TRACE)
            if message.trace and message.trace.type == TraceType.ERROR and message.trace.error
        ]
        error = errors[-1] if errors else None
        return ExecutableFailed(
            message=error.message if error else f"`{' '.join(self.command)}` {problem}",
            internal_message=(
                f"`{' '.join(self.command)}` {problem} (exit status {self.returncode}); "
                f"stderr ends with:\n{self.stderr[-STDERR_TAIL:]}"
            ),
            failure_type=error.failure_type if error and error.failure_type else FailureType.system_error,
        )


class ExecutableSource(Source):
    """A CDK `Source` that runs `executable` for each command (see the module's docstring)."""

    check_config_against_spec = False  # `discover` and `read`: the executable checks its config

    def __init__(self, executable: Path, timeout: float = 300) -> None:
        self.executable = executable
        self.timeout = timeout
        self._repository = InMemoryMessageRepository(Level.DEBUG)
        self._config_path: str | None = None

    @property
    def name(self) -> str:
        return self.executable.name

    @property
    def message_repository(self) -> MessageRepository:
        return self._repository

    # The files the entrypoint was given are passed on as they are ------------------------------

    def read_config(self, config_path: str) -> t.MutableMapping[str, t.Any]:  # type: ignore[override]
        self._config_path = config_path
        return super().read_config(config_path)

    def configure(self, config: t.Mapping[str, t.Any], temp_dir: str) -> t.Mapping[str, t.Any]:  # noqa: ARG002
        return config

    def read_catalog(self, catalog_path: str) -> str:  # type: ignore[override]
        return catalog_path

    def read_state(self, state_path: str | None) -> str | None:  # type: ignore[override]
        return state_path

    # Commands ------------------------------------------------------------------------------------

    def launch(self, *arguments: str) -> Launch:
        """Run the executable with `arguments`; every stdout line must be an Airbyte message."""
        command = [str(self.executable), *arguments]
        done = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=self.timeout, stdin=subprocess.DEVNULL, check=False
        )
        messages = []
        for number, line in enumerate(done.stdout.splitlines(), 1):
            try:
                messages.append(AirbyteMessageSerializer.load(orjson.loads(line)))
            except Exception as error:
                raise ProtocolViolation(
                    f"`{' '.join(command)}` printed a line that is not an Airbyte message "
                    f"(stdout line {number}: {line[:500]!r}): {error}"
                ) from error
        return Launch(command, done.returncode, messages, done.stderr)

    def _forward(self, launch: Launch, *, keep: Type) -> list[AirbyteMessage]:
        """Everything but the `keep` messages goes out through the repository; those are returned."""
        kept = []
        for message in launch.messages:
            if message.type == keep:
                kept.append(message)
            else:
                self._repository.emit_message(message)
        return kept

    def _config_arguments(self) -> list[str]:
        if self._config_path is None:
            raise RuntimeError("no config file: the entrypoint did not read one")
        return ["--config", self._config_path]

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:  # noqa: ARG002
        # The entrypoint asks for the spec before every command, so the LOG messages of this run
        # are left out: they would land in the output of whichever command follows.
        launch = self.launch("spec")
        specs = [message.spec for message in launch.of_type(Type.SPEC) if message.spec]
        if launch.returncode != 0 or len(specs) != 1:
            raise launch.failure(f"printed {len(specs)} SPEC messages")
        return specs[0]

    def check(self, logger: logging.Logger, config: t.Mapping[str, t.Any]) -> AirbyteConnectionStatus:  # noqa: ARG002
        launch = self.launch("check", *self._config_arguments())
        statuses = [m.connectionStatus for m in self._forward(launch, keep=Type.CONNECTION_STATUS) if m.connectionStatus]
        if launch.returncode != 0 or len(statuses) != 1:
            failure = launch.failure(f"printed {len(statuses)} CONNECTION_STATUS messages")
            raise CheckContractBroken(f"{failure.message}\n{failure.internal_message}")
        return statuses[0]

    def discover(self, logger: logging.Logger, config: t.Mapping[str, t.Any]) -> AirbyteCatalog:  # noqa: ARG002
        launch = self.launch("discover", *self._config_arguments())
        catalogs = [message.catalog for message in self._forward(launch, keep=Type.CATALOG) if message.catalog]
        if launch.returncode != 0 or len(catalogs) != 1:
            raise launch.failure(f"printed {len(catalogs)} CATALOG messages")
        return catalogs[0]

    def read(  # type: ignore[override]
        self,
        logger: logging.Logger,  # noqa: ARG002
        config: t.Mapping[str, t.Any],  # noqa: ARG002
        catalog: str,
        state: str | None = None,
    ) -> t.Iterator[AirbyteMessage]:
        arguments = ["read", *self._config_arguments(), "--catalog", catalog]
        if state:
            arguments += ["--state", state]
        launch = self.launch(*arguments)
        yield from launch.messages
        if launch.returncode != 0:
            raise launch.failure("failed")

"""The Airbyte CDK's standard source tests (`SourceTestSuiteBase`) against every `source-<vendor>`.

`SourceTestSuiteBase` is the CDK's suite for Python sources (`DeclarativeSourceTestSuite` is the
one for manifest-only connectors). Its tests are: `test_spec` (one SPEC, passing the CDK's spec
lint), `test_config_matches_spec`, `test_check` (the scenario's declared outcome, no secret in the
output), `test_discover` (one CATALOG, passing the CDK's catalog checks), `test_basic_read` (a
full-refresh read of every discovered stream: records in every stream, each valid against its
stream's schema) and `test_fail_read_with_bad_catalog`; plus the Docker image tests, marked
`image_tests`, which need a Docker daemon and are deselected here (`-m "not image_tests"`).

The hooks the suite offers are used as documented:

- `create_connector()` gives a `cdk_shim.ExecutableSource`, which runs `.venv/bin/source-<vendor>`
  as a subprocess for every command (see `cdk_shim`);
- `get_connector_root_dir()` is `airbyte/source-<vendor>/`, the connector's packaging folder
  (its `metadata.yaml` is what the image tests would build from);
- `acceptance_test_config` is built here rather than read from `acceptance-test-config.yml`,
  because the configs point at emulators on ports chosen at run time: the config files it names
  are written into this session's folder once the vendor's emulator runs. Scenarios: `config`
  (spec, connection, discovery, basic_read) and `invalid_config` (the same with a wrong secret;
  connection, `status: failed`).
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from airbyte_cdk.models.connector_metadata import MetadataFile
from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase
from boltons.typeutils import classproperty

from cdk_shim import ExecutableSource
from conftest import RUN_DIR, executable
from vendors import REPO, VENDORS


class ExecutableSourceSuite(SourceTestSuiteBase):
    """The standard source tests for one `source-<vendor>` executable (subclasses set `vendor`)."""

    vendor: t.ClassVar[str]

    @classmethod
    def get_connector_root_dir(cls) -> Path:
        return REPO / "airbyte" / f"source-{cls.vendor}"

    @classmethod
    def config_folder(cls) -> Path:
        return RUN_DIR / "cdk" / cls.vendor

    @classproperty
    def acceptance_test_config(cls) -> dict[str, t.Any]:  # noqa: N805
        config = str(cls.config_folder() / "config.json")
        invalid_config = str(cls.config_folder() / "invalid_config.json")
        return {
            "connector_image": f"usage-analytics-taps/source-{cls.vendor}:dev",
            "test_strictness_level": "high",
            "acceptance_tests": {
                "spec": {"tests": [{"config_path": config}]},
                "connection": {
                    "tests": [
                        {"config_path": config, "status": "succeed"},
                        {"config_path": invalid_config, "status": "failed"},
                    ]
                },
                "discovery": {"tests": [{"config_path": config}]},
                "basic_read": {"tests": [{"config_path": config}]},
            },
        }

    @classmethod
    def create_connector(cls, scenario: ConnectorTestScenario | None) -> ExecutableSource:  # noqa: ARG003
        return ExecutableSource(executable(f"source-{cls.vendor}"))

    @pytest.fixture(autouse=True)
    def _scenario_configs(self, emulators: t.Callable[[str], t.Any]) -> None:
        """Start the vendor's emulator (once a session) and write the configs the scenarios name."""
        vendor = VENDORS[self.vendor]
        url = emulators(self.vendor).url
        folder = self.config_folder()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(vendor.config(url)))
        (folder / "invalid_config.json").write_text(json.dumps(vendor.wrong_config(url)))

    def test_metadata_yaml_reads_with_the_cdk_model(self) -> None:
        """The connector's metadata.yaml, as the CDK's image build and tests read it."""
        metadata = MetadataFile.from_file(self.get_connector_root_dir() / "metadata.yaml").data
        assert metadata.dockerRepository.endswith(f"/source-{self.vendor}")
        assert metadata.language.value == "python"


class TestSourceUnleash(ExecutableSourceSuite):
    vendor = "unleash"


class TestSourceHeadspin(ExecutableSourceSuite):
    vendor = "headspin"


class TestSourceOpenspace(ExecutableSourceSuite):
    vendor = "openspace"


class TestSourceSeemetrix(ExecutableSourceSuite):
    vendor = "seemetrix"


class TestSourceWmspanel(ExecutableSourceSuite):
    vendor = "wmspanel"

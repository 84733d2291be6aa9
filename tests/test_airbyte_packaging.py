"""The Airbyte packaging in airbyte/source-<vendor>/: what can be checked without a Docker daemon.

Each connector folder holds a `Dockerfile` (built from the repository root), its
`Dockerfile.dockerignore` and Airbyte's `metadata.yaml`. No image is built here; instead:

- metadata.yaml has the fields Airbyte's metadata schema requires, consistent with pyproject.toml
  (license, console scripts), with the image's labels and with the spec the source prints;
- the Dockerfile follows Airbyte's Python connector conventions: a python 3.11 slim base, an exec-form
  ENTRYPOINT that is the console script named like the connector, AIRBYTE_ENTRYPOINT equal to it,
  and a non-root user;
- the command the image would run (the same console script, from .venv) prints a valid SPEC;
- the files the image copies build, on their own, a wheel whose console script prints that SPEC
  without importing anything from outside it (another tap, the emulators).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import typing as t
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VENDORS = ["headspin", "openspace", "seemetrix", "unleash", "wmspanel"]

#: Settings that must reach Airbyte as secrets (`airbyte_secret`), per source.
SECRET_SETTINGS = {
    "unleash": {"access_token", "api_key"},
    "headspin": {"api_token"},
    "openspace": {"api_key"},
    "seemetrix": {"user_key"},
    "wmspanel": {"client_id", "api_key"},
}

#: Required by Airbyte's ConnectorMetadataDefinitionV0 (data.*).
REQUIRED_METADATA = {
    "name", "definitionId", "connectorType", "dockerRepository", "dockerImageTag", "license",
    "documentationUrl", "githubIssueLabel", "connectorSubtype", "releaseStage",
}


def folder(vendor: str) -> Path:
    return ROOT / "airbyte" / f"source-{vendor}"


def metadata(vendor: str) -> dict[str, t.Any]:
    return yaml.safe_load((folder(vendor) / "metadata.yaml").read_text())


@dataclass
class Dockerfile:
    """The instructions of a Dockerfile, in order: (INSTRUCTION, arguments)."""

    instructions: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        logical, pending = [], ""
        for line in path.read_text().splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            logical.append(pending + line)
            pending = ""
        assert not pending, f"{path} ends inside a continued line"
        instructions = []
        for text in logical:
            keyword, _, arguments = text.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
        return cls(instructions)

    def all(self, keyword: str) -> list[str]:
        return [arguments for name, arguments in self.instructions if name == keyword]

    def pairs(self, keyword: str) -> dict[str, str]:
        """`KEY=value` pairs of every ENV or LABEL instruction (later ones win)."""
        found: dict[str, str] = {}
        for arguments in self.all(keyword):
            for item in shlex.split(arguments):
                key, separator, value = item.partition("=")
                assert separator, f"{keyword} {arguments!r}: use the KEY=value form"
                found[key] = value
        return found

    @property
    def entrypoint(self) -> list[str]:
        (last, *_) = reversed(self.all("ENTRYPOINT"))
        command = json.loads(last)  # exec form only: the shell form would drop the verb's arguments
        assert isinstance(command, list) and all(isinstance(part, str) for part in command), last
        return command

    @property
    def copied(self) -> list[str]:
        """The sources of every COPY (from the build context, the repository root)."""
        sources = []
        for arguments in self.all("COPY"):
            *paths, _destination = shlex.split(arguments)
            sources += [path for path in paths if not path.startswith("--")]
        return sources


def dockerfile(vendor: str) -> Dockerfile:
    return Dockerfile.read(folder(vendor) / "Dockerfile")


def spec_of(command: list[str]) -> dict[str, t.Any]:
    """Run `COMMAND spec`: every stdout line is an Airbyte message, and one of them is the SPEC."""
    done = subprocess.run([*command, "spec"], capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr[-3000:]
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(isinstance(message, dict) and "type" in message for message in messages), done.stdout[:2000]
    specs = [message["spec"] for message in messages if message["type"] == "SPEC"]
    assert len(specs) == 1, f"expected one SPEC message, got {len(specs)}: {done.stdout[:2000]}"
    assert {message["type"] for message in messages} <= {"SPEC", "LOG", "TRACE"}
    return specs[0]


def source_scripts() -> dict[str, str]:
    return {name: target for name, target in PYPROJECT["project"]["scripts"].items() if name.startswith("source-")}


def test_every_source_script_has_a_connector_folder() -> None:
    folders = {path.name for path in (ROOT / "airbyte").iterdir() if path.is_dir()}
    assert folders == set(source_scripts()) == {f"source-{vendor}" for vendor in VENDORS}


def test_definition_ids_are_unique() -> None:
    ids = [metadata(vendor)["data"]["definitionId"] for vendor in VENDORS]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("vendor", VENDORS)
def test_metadata_yaml_describes_the_connector(vendor: str) -> None:
    document = metadata(vendor)
    assert set(document) == {"metadataSpecVersion", "data"}
    data = document["data"]
    assert REQUIRED_METADATA <= set(data), f"missing: {REQUIRED_METADATA - set(data)}"
    assert str(uuid.UUID(data["definitionId"])) == data["definitionId"]
    assert data["connectorType"] == "source"
    assert data["connectorSubtype"] == "api"
    assert data["releaseStage"] == "alpha"
    assert data["license"] == PYPROJECT["project"]["license"]["text"]
    assert data["dockerRepository"].rsplit("/", 1)[-1] == f"source-{vendor}" in source_scripts()
    assert data["githubIssueLabel"] == f"source-{vendor}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", data["dockerImageTag"])
    assert data["documentationUrl"].startswith("https://")
    assert "language:python" in data.get("tags", [])


@pytest.mark.parametrize("vendor", VENDORS)
def test_dockerfile_follows_airbytes_python_connector_conventions(vendor: str) -> None:
    image = dockerfile(vendor)
    data = metadata(vendor)["data"]
    (base,) = image.all("FROM")
    assert base.startswith("python:3.11-slim")

    entrypoint = image.entrypoint
    assert entrypoint[0].startswith("/"), "ENTRYPOINT must be an absolute path"
    assert Path(entrypoint[0]).name == f"source-{vendor}" in source_scripts()
    assert image.pairs("ENV")["AIRBYTE_ENTRYPOINT"] == " ".join(entrypoint)

    users = image.all("USER")
    assert users, "the image must not run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert any("useradd" in command and user in command for command in image.all("RUN"))

    labels = image.pairs("LABEL")
    assert labels["io.airbyte.name"] == data["dockerRepository"]
    assert labels["io.airbyte.version"] == data["dockerImageTag"]


@pytest.mark.parametrize("vendor", VENDORS)
def test_dockerignore_lets_through_what_the_image_copies(vendor: str) -> None:
    lines = (folder(vendor) / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "the ignore file should list what goes in, after excluding everything"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = {source.rstrip("/") for source in dockerfile(vendor).copied}
    assert copied == allowed
    assert {"pyproject.toml", "taps_common", f"tap_{vendor}"} <= copied
    assert all((ROOT / source).exists() for source in copied)


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_image_command_prints_a_valid_spec(vendor: str) -> None:
    """What `docker run IMAGE spec` would print: the ENTRYPOINT's console script, from .venv."""
    script = BIN / Path(dockerfile(vendor).entrypoint[0]).name
    spec = spec_of([str(script)])
    schema = spec["connectionSpecification"]
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["type"] == "object"
    assert spec["documentationUrl"] == metadata(vendor)["data"]["documentationUrl"]
    secrets = {name for name, definition in schema["properties"].items() if definition.get("airbyte_secret")}
    assert SECRET_SETTINGS[vendor] <= secrets


RUN_FROM_WHEEL = """
import importlib.metadata, sys
site = sys.argv[1]
sys.path.insert(0, site)
entry_points = importlib.metadata.distribution("usage-analytics-taps").entry_points
(entry_point,) = [e for e in entry_points if e.name == sys.argv[2] and e.group == "console_scripts"]
main = entry_point.load()
sys.argv = [sys.argv[2], "spec"]
try:
    code = main()
except SystemExit as exit:
    code = exit.code
project = ("taps_common", "emulators", "tap_")
strays = sorted(
    f"{name} ({module.__file__})"
    for name, module in list(sys.modules.items())
    if name.startswith(project) and not str(getattr(module, "__file__", "") or "").startswith(site)
)
if strays:
    sys.stderr.write("imported from outside the image's files: " + ", ".join(strays) + "\\n")
    sys.exit(3)
sys.exit(code)
"""


@pytest.mark.e2e
@pytest.mark.parametrize("vendor", VENDORS)
def test_the_files_the_image_copies_build_a_working_source(vendor: str, tmp_path: Path) -> None:
    """`pip install .` of exactly the COPY sources: the wheel has the script, which runs from it alone."""
    context = tmp_path / "context"
    for source in dockerfile(vendor).copied:
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, context / source)
    built = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path / "dist"), str(context)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    (entry_points,) = site.glob("*.dist-info/entry_points.txt")
    assert re.search(rf"^source-{vendor} = ", entry_points.read_text(), re.MULTILINE)
    spec = spec_of([sys.executable, "-c", RUN_FROM_WHEEL, str(site), f"source-{vendor}"])
    assert spec["connectionSpecification"]["type"] == "object"

"""The five sources under test: their executables, emulator options, configs and credential errors.

Everything here is plain data and paths: the project's packages are never imported into
.venv-airbyte; the executables of .venv (`source-*`, `tap-*`, `tap-emulators`) are run by path.

Each emulator is started with a fixed `anchor` (the end of its synthetic data), so that every sync of
a test session sees the same data whatever the clock says, and with credentials made for the
session: long, random and unique, so that PyAirbyte's masking of secret values in what it reads
back cannot touch anything but the secrets themselves.
"""

from __future__ import annotations

import os
import secrets
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Where the project's executables are: .venv/bin (`SOURCE_BIN_DIR` overrides it, e.g. for an install elsewhere).
BIN = Path(os.environ.get("SOURCE_BIN_DIR") or REPO / ".venv" / "bin")

#: The last instant of every emulator's data, and the end of every sync that takes an `end_date`.
ANCHOR = "2024-06-01T00:00:00Z"


def _secret(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(20)}"


@dataclass(frozen=True)
class Vendor:
    """One source: how to serve its emulator, and the config an Airbyte user would give it."""

    name: str
    #: `--option key=value` of `tap-emulators serve` (credentials come on top).
    emulator_options: dict[str, t.Any]
    #: Path after the emulator's root URL that `api_url` takes (e.g. `/v1`).
    api_path: str
    #: The config without `api_url` and credentials.
    settings: dict[str, t.Any]
    #: The credential settings and their session values; the first is the one made wrong.
    credentials: dict[str, str]
    #: The emulator options that make it accept `credentials`.
    credential_options: dict[str, str]
    #: What the source must say when the first credential is wrong (each fragment must appear).
    refusal: tuple[str, ...]
    wrong_secret: str = field(default_factory=lambda: _secret("wrong-"))

    @property
    def source(self) -> str:
        return f"source-{self.name}"

    @property
    def tap(self) -> str:
        return f"tap-{self.name}"

    @property
    def secret_setting(self) -> str:
        return next(iter(self.credentials))

    def config(self, emulator_url: str) -> dict[str, t.Any]:
        return {"api_url": emulator_url + self.api_path, **self.credentials, **self.settings}

    def wrong_config(self, emulator_url: str) -> dict[str, t.Any]:
        return {**self.config(emulator_url), self.secret_setting: self.wrong_secret}


def _vendors() -> dict[str, Vendor]:
    unleash_token = _secret("ul_pat_")
    headspin_token = _secret("hs-token-")
    openspace_key = _secret("os-key-")
    seemetrix_key = _secret("sm-key-")
    wmspanel_key, wmspanel_client = _secret("wms-key-"), _secret("wms-client-")
    vendors = [
        Vendor(
            name="unleash",
            emulator_options={"anchor": ANCHOR},
            api_path="/v1",
            settings={"start_date": "2024-05-01", "end_date": "2024-06-02"},
            credentials={"access_token": unleash_token},
            credential_options={"access_tokens": unleash_token},
            refusal=("refused the credential in `access_token`",),
        ),
        Vendor(
            name="headspin",
            emulator_options={"anchor": ANCHOR},
            api_path="",
            # Every grouping, the three legacy (v1) ones included: Singer selects those only when
            # `groupings` names them, while an Airbyte client selects every stream it discovers.
            settings={
                "start_date": "2024-05-01",
                "end_date": "2024-06-02",
                "groupings": [
                    "org", "device", "team", "user", "host", "device_team", "device_user",
                    "country", "devicemodel", "team_devicemodel",
                ],
            },
            credentials={"api_token": headspin_token},
            credential_options={"api_tokens": headspin_token},
            refusal=("HeadSpin refused the API token", "`api_token`"),
        ),
        Vendor(
            name="openspace",
            emulator_options={"anchor": ANCHOR},
            api_path="",
            settings={"start_date": "2024-01-01"},
            credentials={"api_key": openspace_key},
            credential_options={"api_keys": openspace_key},
            refusal=("OpenSpace refused the API key in `api_key`",),
        ),
        Vendor(
            name="seemetrix",
            emulator_options={"anchor": ANCHOR, "days": 3},
            api_path="/api",
            settings={"user_id": 632, "start_date": "2024-05-28", "end_date": "2024-06-02"},
            credentials={"user_key": seemetrix_key},
            credential_options={"user_key": seemetrix_key},
            refusal=("Seemetrix refused the key in `user_key`",),
        ),
        Vendor(
            name="wmspanel",
            emulator_options={"anchor": ANCHOR[:10], "days": 10, "data_slices": 2},
            api_path="/v1",
            settings={"start_date": "2024-05-20", "end_date": "2024-06-01"},
            credentials={"api_key": wmspanel_key, "client_id": wmspanel_client},
            credential_options={"api_key": wmspanel_key, "client_id": wmspanel_client},
            refusal=("WMSPanel refused", "`api_key`"),
        ),
    ]
    return {vendor.name: vendor for vendor in vendors}


#: The sources by vendor name; the credentials are made once per test session.
VENDORS = _vendors()

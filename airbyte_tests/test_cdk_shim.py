"""The shim can fail: the standard tests' verdicts mean something only if it rejects what it should.

Each case wraps the real `source-<vendor>` in a shell script that breaks one rule of the protocol,
and the shim must refuse the result. (Parametrised by vendor so that `-k <vendor>` runs them with
that vendor's other tests.)
"""

from __future__ import annotations

import json
import logging
import typing as t

import pytest

from cdk_shim import CheckContractBroken, ExecutableFailed, ExecutableSource, ProtocolViolation
from conftest import executable
from vendors import VENDORS, Vendor

if t.TYPE_CHECKING:
    from pathlib import Path

LOGGER = logging.getLogger("airbyte_tests.cdk_shim")
vendor_params = pytest.mark.parametrize("vendor", list(VENDORS.values()), ids=list(VENDORS))


def wrapped(vendor: Vendor, folder: Path, after: str) -> ExecutableSource:
    """A shim over a script that runs the real executable, then `after` (sh)."""
    script = folder / f"broken-{vendor.source}"
    script.write_text(f'#!/bin/sh\n"{executable(vendor.source)}" "$@" {after}\n')
    script.chmod(0o755)
    return ExecutableSource(script)


def with_config(source: ExecutableSource, vendor: Vendor, url: str, folder: Path) -> ExecutableSource:
    config = folder / "config.json"
    config.write_text(json.dumps(vendor.config(url)))
    source.read_config(str(config))
    return source


@vendor_params
def test_shim_refuses_a_stdout_line_that_is_not_a_message(vendor: Vendor, tmp_path: Path) -> None:
    source = wrapped(vendor, tmp_path, "; echo 'Starting sync...'")
    with pytest.raises(ProtocolViolation, match="stdout line .*Starting sync"):
        source.spec(LOGGER)


@vendor_params
def test_shim_refuses_a_check_that_prints_no_status(
    vendor: Vendor, emulators: t.Callable[[str], t.Any], tmp_path: Path
) -> None:
    source = wrapped(vendor, tmp_path, "| grep -v CONNECTION_STATUS; exit 1")
    source = with_config(source, vendor, emulators(vendor.name).url, tmp_path)
    with pytest.raises(CheckContractBroken, match="printed 0 CONNECTION_STATUS messages"):
        source.check(LOGGER, {})


@vendor_params
def test_shim_fails_a_read_that_exits_non_zero(
    vendor: Vendor, emulators: t.Callable[[str], t.Any], tmp_path: Path
) -> None:
    source = wrapped(vendor, tmp_path, "; exit 3")
    source = with_config(source, vendor, emulators(vendor.name).url, tmp_path)
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"streams": []}))
    messages = source.read(LOGGER, {}, str(catalog))
    with pytest.raises(ExecutableFailed) as failed:
        list(messages)
    assert "(exit status 3)" in str(failed.value.internal_message)

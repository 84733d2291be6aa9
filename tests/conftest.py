"""Fixtures shared by every tap's tests."""

from __future__ import annotations

import pytest

from taps_common.redaction import SECRETS


@pytest.fixture(autouse=True)
def _forget_secrets() -> None:
    """Each test registers the secrets of the taps it builds, and only those."""
    SECRETS.clear()

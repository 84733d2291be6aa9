"""Fixtures shared by every tap's tests."""

from __future__ import annotations

import pytest

from taps_common.redaction import SECRETS


@pytest.fixture(autouse=True)
def _forget_secrets() -> None:
    """Each test registers the secrets of the taps it builds, and only those."""
    SECRETS.clear()


@pytest.fixture(autouse=True)
def _fetch_ahead_however_quick_the_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process syncs fetch ahead even from the emulators on loopback, whose answers come in well
    under `WORTH_FETCHING_AHEAD_SECONDS`: otherwise no test of fetching ahead would fetch anything.
    Tests of that threshold itself set it back (tests/common/test_fetch_ahead.py).
    """
    monkeypatch.setattr("taps_common.fetch_ahead.WORTH_FETCHING_AHEAD_SECONDS", 0.0)

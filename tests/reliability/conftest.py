"""Fixtures of the reliability suite, and the document it writes at the end of a complete run."""

from __future__ import annotations

import pytest

from tests.reliability.report import REPORT
from tests.reliability.support import WaitRecorder


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> WaitRecorder:
    """The taps' waits recorded, not slept: backoff's, and the fetch-ahead gate's."""
    recorder = WaitRecorder()
    monkeypatch.setattr("backoff._sync.time", recorder.backoff)
    monkeypatch.setattr("taps_common.fetch_ahead.time", recorder.gate)
    return recorder


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:  # noqa: ARG001
    """Write docs/reliability.md when every cell of every table was filled by a passing test."""
    REPORT.write_if_complete()

"""Retry timing: exponential backoff that honours `Retry-After`.

The SDK's default waits ignore `Retry-After` (sdk issue 2012). Here the wait
generator receives each failure (backoff sends it in) and, when the response
says how long to wait, waits that long, capped so a hostile or broken header
cannot stall a sync for hours.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import typing as t
from dataclasses import dataclass

import requests

from taps_common.timestamps import UTC, utc_now

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator

#: Failures worth another try: the server was busy or broken, or the network was.
RETRIABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def parse_retry_after(
    value: str | None,
    now: Callable[[], dt.datetime] = utc_now,
) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date.

    Returns None when the header is absent or unreadable; never a negative wait.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now()).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries, and how long to wait between them."""

    max_tries: int = 5
    base_seconds: float = 2.0
    max_backoff_seconds: float = 120.0
    retry_after_cap_seconds: float = 300.0

    def wait_seconds(self, attempt: int, retry_after: float | None) -> float:
        """The wait before try `attempt + 2` (attempt 0 is the first failure)."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap_seconds)
        return min(self.base_seconds * (2**attempt), self.max_backoff_seconds)


def retry_after_of(failure: BaseException | None) -> float | None:
    """The `Retry-After` wait carried by a failed response, if any."""
    response = getattr(failure, "response", None)
    if response is None:
        return None
    return parse_retry_after(response.headers.get("Retry-After"))


def wait_generator(policy: RetryPolicy) -> Generator[float, BaseException | None, None]:
    """A backoff wait generator: each failure is sent in, its wait comes out."""
    failure = yield 0.0  # backoff primes the generator with send(None)
    attempt = 0
    while True:
        failure = yield policy.wait_seconds(attempt, retry_after_of(failure))
        attempt += 1

"""Keep secret setting values out of every line the taps print.

Secrets travel in headers for some vendors and in query strings for others, so
they can surface in exception texts (requests prints full URLs), in the SDK's
own error and backoff messages, and in tracebacks. Rather than trusting every
message to be built carefully, each configured secret is registered here and
masked wherever text leaves the process: log records, and the stderr stream the
command line writes to.
"""

from __future__ import annotations

import io
import logging
import threading
import typing as t
from urllib.parse import quote, quote_plus

MASK = "***"


class SecretRegistry:
    """The secret values known to this process, in every encoding a URL gives them."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._ordered: list[str] = []
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        """Register a secret; values too short to mask safely are ignored."""
        if not isinstance(value, str) or len(value) < 4:  # noqa: PLR2004
            return
        with self._lock:
            for form in {value, quote(value, safe=""), quote_plus(value), quote(value)}:
                self._values.add(form)
            # Longest first, so a secret that contains another is masked whole.
            self._ordered = sorted(self._values, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Return `text` with every registered secret replaced by a mask."""
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def clear(self) -> None:
        """Forget every secret (tests only)."""
        with self._lock:
            self._values.clear()
            self._ordered = []


SECRETS = SecretRegistry()


def redact(text: str) -> str:
    """Mask every registered secret in `text`."""
    return SECRETS.redact(text)


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in the message and the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Add the redacting filter to every handler that exists now.

    Filters on handlers see the records of every logger that propagates to
    them, which a filter on a logger would not.
    """
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


class RedactingTextStream(io.TextIOBase):
    """A text stream that masks secrets line by line before writing them on.

    Lines are held until complete, so a secret written in two pieces is still
    caught; `flush` writes out any partial line.
    """

    def __init__(self, target: t.TextIO) -> None:
        super().__init__()
        self._target = target
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:  # noqa: D102
        with self._lock:
            self._pending += text
            if "\n" in self._pending:
                complete, _, self._pending = self._pending.rpartition("\n")
                self._target.write(redact(complete + "\n"))
        return len(text)

    def flush(self) -> None:  # noqa: D102
        with self._lock:
            if self._pending:
                self._target.write(redact(self._pending))
                self._pending = ""
            self._target.flush()

    def fileno(self) -> int:  # noqa: D102
        return self._target.fileno()

    def isatty(self) -> bool:  # noqa: D102
        return self._target.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # noqa: D102
        return getattr(self._target, "encoding", "utf-8")

    def writable(self) -> bool:  # noqa: D102
        return True

"""Secrets are masked in every encoding, in log records, tracebacks and stderr."""

from __future__ import annotations

import io
import logging

import pytest

from taps_common.redaction import SECRETS, RedactingFilter, RedactingTextStream, redact
from taps_common.tap import register_secrets

SECRET = "s3cr3t/key+with=chars"


@pytest.fixture(autouse=True)
def _registered_secret() -> None:
    SECRETS.clear()
    SECRETS.add(SECRET)
    yield
    SECRETS.clear()


def test_plain_and_url_encoded_forms_are_masked() -> None:
    text = f"a {SECRET} b s3cr3t%2Fkey%2Bwith%3Dchars c s3cr3t/key%2Bwith%3Dchars"
    assert "s3cr3t" not in redact(text)
    assert redact(text).count("***") == 3


def test_short_values_are_not_registered() -> None:
    SECRETS.add("ab")
    assert redact("ab cab") == "ab cab"


def test_only_settings_marked_secret_are_registered() -> None:
    SECRETS.clear()
    schema = {"properties": {"api_key": {"secret": True}, "client_id": {"type": "string"}}}
    register_secrets({"api_key": "key-value-1", "client_id": "client-value-1"}, schema)
    assert redact("key-value-1 client-value-1") == "*** client-value-1"


def test_log_filter_masks_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError(f"boom at https://x/?key={SECRET}")  # noqa: TRY301
        except RuntimeError:
            logger.exception("failed with %s", SECRET)
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "RuntimeError" in output
    assert "s3cr3t" not in output


def test_stderr_wrapper_masks_a_secret_written_in_pieces() -> None:
    target = io.StringIO()
    stream = RedactingTextStream(target)
    stream.write("token=s3cr3t/ke")
    stream.write("y+with=chars and more\npartial s3cr3t/key+with=chars")
    stream.flush()
    assert target.getvalue() == "token=*** and more\npartial ***"

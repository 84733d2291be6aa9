"""Helpers the HeadSpin tests share."""

from __future__ import annotations

import datetime as dt

from emulators.headspin import HeadSpinEmulator


def in_the_newest_bin(app: HeadSpinEmulator) -> tuple[dt.datetime, int]:
    """The newest session's second, on another device: new usage in the newest bin, whatever its size."""
    newest = max(app.sessions(), key=lambda session: session["start"])
    device = next(i for i, d in enumerate(app.devices) if d.address != newest["device_address"])
    return newest["start"], device

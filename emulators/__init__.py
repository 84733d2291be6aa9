"""Local HTTP emulators of the vendor APIs the taps read, for tests, demos and benchmarks.

`EMULATORS` maps each vendor's name (as `python -m emulators serve <name>` takes it) to where its
app class lives; `emulator_class(name)` imports it only when asked, so serving one vendor never
loads the others. A new vendor's emulator is one more line here.

In a test:

    with EmulatorServer(UnleashEmulator(seed=1, page_size=50)) as server:
        server.app.inject(Fault("status", status=429, retry_after="1"))
        ...  # point the tap at server.url + "/v1"; compare with server.app.truth_records()

From a shell: `python -m emulators serve unleash --port 8101 --option devices=5`, then drive it
over HTTP with GET /_emulator/stats, POST /_emulator/faults and POST /_emulator/reset.
"""

from __future__ import annotations

import importlib

from emulators.framework import EmulatorApp, EmulatorServer, Fault, Request, Response
from emulators.unleash import UnleashEmulator

EMULATORS: dict[str, str] = {
    "headspin": "emulators.headspin:HeadSpinEmulator",
    "openspace": "emulators.openspace:OpenSpaceEmulator",
    "seemetrix": "emulators.seemetrix:SeemetrixEmulator",
    "unleash": "emulators.unleash:UnleashEmulator",
    "wmspanel": "emulators.wmspanel:WMSPanelEmulator",
}


def emulator_class(vendor: str) -> type[EmulatorApp]:
    """The app class of one vendor's emulator, imported on first use."""
    module_name, _, class_name = EMULATORS[vendor].partition(":")
    app_class: type[EmulatorApp] = getattr(importlib.import_module(module_name), class_name)
    return app_class

__all__ = [
    "EMULATORS",
    "EmulatorApp",
    "EmulatorServer",
    "Fault",
    "Request",
    "Response",
    "UnleashEmulator",
    "emulator_class",
]

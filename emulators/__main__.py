"""Command line: `python -m emulators serve unleash [...]` and `python -m emulators list`.

`serve` prints one "<vendor> <url>" line per emulator, flushed, so a parent process can read the
URLs before it starts a tap; then it serves until SIGTERM or SIGINT and exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

from emulators import EMULATORS, emulator_class
from emulators.framework import EmulatorServer, require_loopback


class Option(NamedTuple):
    """One `--option [vendor.]key=value`: for every served vendor, or only the one named."""

    vendor: str | None
    key: str
    value: Any


def parse_option(text: str) -> Option:
    """Split `[vendor.]key=value`; the value is JSON when it parses (5 is an int), else a string."""
    name, separator, raw_value = text.partition("=")
    vendor, _, key = name.rpartition(".")
    if not separator or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected [vendor.]key=value, got {text!r}")
    if vendor and vendor not in EMULATORS:
        raise argparse.ArgumentTypeError(f"unknown vendor {vendor!r} in option {text!r}")
    try:
        value = json.loads(raw_value)
    except ValueError:
        value = raw_value
    return Option(vendor or None, key, value)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range")
    return port


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments; kept apart from `main` so the help text can be tested alone."""
    parser = argparse.ArgumentParser(prog="tap-emulators", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="print the vendors that can be served")
    serve = commands.add_parser("serve", help="serve vendor emulators until SIGTERM/SIGINT")
    serve.add_argument(
        "vendors",
        nargs="+",
        choices=sorted(EMULATORS),
        metavar="vendor",
        help=f"emulator to serve, one of: {', '.join(sorted(EMULATORS))}",
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    serve.add_argument(
        "--port",
        type=_port,
        default=8101,
        help="port of the first vendor, the next ones follow (0: any free port for each)",
    )
    serve.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds added to each response")
    serve.add_argument(
        "--option",
        type=parse_option,
        action="append",
        default=[],
        metavar="[VENDOR.]KEY=VALUE",
        help="emulator option, e.g. devices=5 or unleash.order=shuffled (repeatable)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m emulators` and of the `tap-emulators` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        print("\n".join(sorted(EMULATORS)))
        return 0
    try:
        host = require_loopback(args.host)
    except ValueError as exc:
        parser.error(str(exc))
    servers: list[EmulatorServer] = []
    try:
        for offset, vendor in enumerate(args.vendors):
            options = {o.key: o.value for o in args.option if o.vendor in (None, vendor)}
            try:
                app = emulator_class(vendor)(seed=args.seed, latency=args.latency, **options)
                server = EmulatorServer(app, host, args.port + offset if args.port else 0)
            except (TypeError, ValueError, OSError) as exc:
                parser.error(f"{vendor}: {exc}")
            servers.append(server.start())
            print(f"{vendor} {server.url}", flush=True)
        _wait_for_stop_signal()
    finally:
        for server in servers:
            server.stop()
    return 0


def _wait_for_stop_signal() -> None:
    """Block until SIGTERM or SIGINT, so either ends the command cleanly with exit status 0."""
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in signals}
    try:
        stop.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())

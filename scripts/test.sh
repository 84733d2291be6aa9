#!/usr/bin/env bash
# Set up, then run every test (unit, emulator, SDK suite, end-to-end with Meltano).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"

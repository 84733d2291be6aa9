#!/usr/bin/env bash
# Set up everything on a fresh machine (idempotent): the project's virtualenv
# with the taps and test tools, Meltano in a virtualenv of its own (its pins
# and singer-sdk's are kept apart), and Meltano's plugins.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is required")'

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"

if [ ! -x .venv-meltano/bin/meltano ]; then
  "$PYTHON" -m venv .venv-meltano
  .venv-meltano/bin/python -m pip install --quiet --disable-pip-version-check "meltano==4.4.1"
fi
mkdir -p output
if ! .venv-meltano/bin/meltano install >output/meltano-install.log 2>&1; then
  tail -n 40 output/meltano-install.log
  exit 1
fi
echo "setup: ready (.venv, .venv-meltano, Meltano plugins)"

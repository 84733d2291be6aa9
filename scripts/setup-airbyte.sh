#!/usr/bin/env bash
# Create .venv-airbyte (idempotent, quiet): PyAirbyte, the Airbyte CDK and pytest, every
# distribution pinned in airbyte_tests/requirements.txt. These are the Airbyte *clients* that
# airbyte_tests/ runs against the project's `source-*` executables; they are never installed into
# .venv (airbyte-cdk's `backoff` and singer-sdk's `python-backoff` write the same module).
#
# PyAirbyte needs Python < 3.13, and the pins are those of CPython 3.11 (3.12 works too):
# PYTHON=/path/to/python3.11 picks the interpreter, otherwise python3.11, python3.12 or python3.
# A second run with an unchanged requirements file does nothing. Runs that overlap wait for each
# other (flock), so two test sessions in one tree do not build the venv at the same time.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$self")/.."

if [ "${SETUP_AIRBYTE_LOCKED:-}" != 1 ] && command -v flock >/dev/null; then
  exec env SETUP_AIRBYTE_LOCKED=1 flock --exclusive "$self" bash "$self" "$@"
fi

VENV=.venv-airbyte
REQUIREMENTS=airbyte_tests/requirements.txt
STAMP=$VENV/.requirements.sha256
wanted=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi

supported='import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)'
python=""
for candidate in ${PYTHON:-} python3.11 python3.12 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c "$supported" 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "setup-airbyte: PyAirbyte needs Python 3.11 or 3.12 (set PYTHON=...); none found" >&2
  exit 1
fi

# A venv without the stamp is half-built (interrupted) or built from other pins: start again.
rm -rf "$VENV"
"$python" -m venv "$VENV"
log=$VENV/install.log
started=$SECONDS
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --only-binary=:all: \
    -r "$REQUIREMENTS" >"$log" 2>&1; then
  grep -v "^WARNING: Location '" "$log" | tail -n 40 >&2
  echo "setup-airbyte: pip install failed (full log: $log)" >&2
  exit 1
fi
"$VENV/bin/python" -m pip check >>"$log" 2>&1 || {
  tail -n 20 "$log" >&2
  echo "setup-airbyte: the pinned distributions do not fit together (see $log)" >&2
  exit 1
}
echo "$wanted" >"$STAMP"
versions=$("$VENV/bin/python" -c 'from importlib.metadata import version as v
print(", ".join(f"{name} {v(name)}" for name in ("airbyte", "airbyte-cdk", "pytest")))')
echo "setup-airbyte: ready ($VENV: $versions; installed in $((SECONDS - started)) s)"

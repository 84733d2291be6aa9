#!/usr/bin/env bash
# Set up, start the API emulators on 127.0.0.1, run every tap through Meltano
# into output/warehouse.duckdb, and print the tables with their row counts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# One file per tap in scripts/demo/ says how to point it at its emulator.
TAPS=()
for file in scripts/demo/*.sh; do TAPS+=("$(basename "$file" .sh)"); done
mkdir -p output
# A fresh warehouse each time: the emulators' data ends at "now", so it moves between runs.
rm -f output/warehouse.duckdb
emulator_log=output/emulators.txt
.venv/bin/tap-emulators serve "${TAPS[@]}" --port "${DEMO_PORT:-0}" >"$emulator_log" 2>output/emulators.err &
emulators_pid=$!
trap 'kill "$emulators_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ "$(wc -l <"$emulator_log")" -ge "${#TAPS[@]}" ] && break
  sleep 0.1
done
url_of() { awk -v name="$1" '$1 == name {print $2}' "$emulator_log"; }

DEMO_START_DATE=$(.venv/bin/python -c 'import datetime as d; print((d.date.today() - d.timedelta(days=30)).isoformat())')
export DEMO_START_DATE

for tap in "${TAPS[@]}"; do
  EMULATOR_URL=$(url_of "$tap")
  # shellcheck source=/dev/null
  source "scripts/demo/$tap.sh"
  echo "demo: meltano run --full-refresh tap-$tap target-duckdb"
  .venv-meltano/bin/meltano run --full-refresh "tap-$tap" target-duckdb >"output/meltano-$tap.log" 2>&1 || {
    tail -n 30 "output/meltano-$tap.log"
    exit 1
  }
done

.meltano/loaders/target-duckdb/venv/bin/python scripts/warehouse_summary.py output/warehouse.duckdb

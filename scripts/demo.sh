#!/usr/bin/env bash
# Set up, start the API emulators on 127.0.0.1, run every tap through Meltano
# into output/warehouse.duckdb, and print the tables with their row counts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

TAPS=(unleash)
mkdir -p output
emulator_log=output/emulators.txt
.venv/bin/tap-emulators serve "${TAPS[@]}" --port "${DEMO_PORT:-0}" >"$emulator_log" 2>output/emulators.err &
emulators_pid=$!
trap 'kill "$emulators_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ "$(wc -l <"$emulator_log")" -ge "${#TAPS[@]}" ] && break
  sleep 0.1
done
url_of() { awk -v name="$1" '$1 == name {print $2}' "$emulator_log"; }

start_date=$(.venv/bin/python -c 'import datetime as d; print((d.date.today() - d.timedelta(days=30)).isoformat())')

# tap-unleash: the emulator accepts this demo token (see emulators/unleash.py).
export TAP_UNLEASH_API_URL="$(url_of unleash)/v1"
export TAP_UNLEASH_ACCESS_TOKEN="ul_pat_test-token"
export TAP_UNLEASH_START_DATE="$start_date"

for tap in "${TAPS[@]}"; do
  echo "demo: meltano run tap-$tap target-duckdb"
  .venv-meltano/bin/meltano run "tap-$tap" target-duckdb >"output/meltano-$tap.log" 2>&1 || {
    tail -n 30 "output/meltano-$tap.log"
    exit 1
  }
done

.meltano/loaders/target-duckdb/venv/bin/python scripts/warehouse_summary.py output/warehouse.duckdb

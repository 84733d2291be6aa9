# Demo settings for tap-openspace against its emulator at $EMULATOR_URL (sourced by scripts/demo.sh).
# The emulator accepts this key (see emulators/openspace.py); it caps pages at 500 records.
export TAP_OPENSPACE_API_URL="$EMULATOR_URL"
export TAP_OPENSPACE_API_KEY="test-openspace-key"
export TAP_OPENSPACE_START_DATE="$DEMO_START_DATE"

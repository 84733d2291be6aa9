# Demo settings for tap-headspin against its emulator at $EMULATOR_URL (sourced by scripts/demo.sh).
# The emulator accepts this token (see emulators/headspin.py).
export TAP_HEADSPIN_API_URL="$EMULATOR_URL"
export TAP_HEADSPIN_API_TOKEN="test-api-token"
export TAP_HEADSPIN_START_DATE="$DEMO_START_DATE"

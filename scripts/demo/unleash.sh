# Demo settings for tap-unleash against its emulator at $EMULATOR_URL (sourced by scripts/demo.sh).
# The emulator accepts this token (see emulators/unleash.py).
export TAP_UNLEASH_API_URL="$EMULATOR_URL/v1"
export TAP_UNLEASH_ACCESS_TOKEN="ul_pat_test-token"
export TAP_UNLEASH_START_DATE="$DEMO_START_DATE"

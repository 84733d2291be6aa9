# Demo settings for tap-wmspanel against its emulator at $EMULATOR_URL (sourced by scripts/demo.sh).
# The emulator accepts these credentials (see emulators/wmspanel.py).
export TAP_WMSPANEL_API_URL="$EMULATOR_URL/v1"
export TAP_WMSPANEL_CLIENT_ID="test-client-id"
export TAP_WMSPANEL_API_KEY="test-api-key"
export TAP_WMSPANEL_START_DATE="$DEMO_START_DATE"

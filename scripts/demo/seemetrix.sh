# Demo settings for tap-seemetrix against its emulator at $EMULATOR_URL (sourced by scripts/demo.sh).
# The emulator's account is user 632 with this key (see emulators/seemetrix.py).
export TAP_SEEMETRIX_API_URL="$EMULATOR_URL/api"
export TAP_SEEMETRIX_USER_ID="632"
export TAP_SEEMETRIX_USER_KEY="test-user-key"
export TAP_SEEMETRIX_START_DATE="$DEMO_START_DATE"

#!/usr/bin/env bash
# nyro-gw soak: minutes of mixed load against the real binary, with a config
# reload every second; fails on a lost or wrong answer, RSS growth over 20 %
# or an open-fd drift over 10. See bench/README.md ("Soak").
#
#   bench/soak.sh                          # 300 s, builds the release binary
#   NYRO_SOAK_SECS=60 bench/soak.sh        # what CI runs
#   NYRO_GW_BIN=/path/to/nyro-gw bench/soak.sh   # test that binary, build no gateway
#
# Exit: 0 pass; non-zero when a condition failed or the run went wrong (the
# summary table printed above says which).
set -euo pipefail
cd "$(dirname "$0")/.."

export NYRO_SOAK_SECS=${NYRO_SOAK_SECS:-300}
if [[ -n ${NYRO_GW_BIN:-} ]]; then
    [[ -x $NYRO_GW_BIN ]] || { echo "soak: NYRO_GW_BIN=$NYRO_GW_BIN is not an executable" >&2; exit 2; }
    NYRO_GW_BIN=$(cd "$(dirname "$NYRO_GW_BIN")" && pwd)/$(basename "$NYRO_GW_BIN")
    export NYRO_GW_BIN
fi
# The load driver is an ignored integration test (tests/soak.rs); cargo
# compiles it (and, without NYRO_GW_BIN, the gateway) unless `cargo test
# --release` already did.
exec cargo test --release --test soak -- --ignored --nocapture

#!/usr/bin/env bash
# Regenerates bench/nyro-gw.profdata, the profile that release builds of
# nyro-gw are optimized with (profile-guided optimization, README
# "Performance"): builds an instrumented nyro-gw, runs the benchmark's
# scenarios against it (bench/run.sh, short rounds) so that the profile
# records the request path as it runs under load, and merges what the
# processes wrote.
#
#   bench/pgo.sh            # then commit bench/nyro-gw.profdata
#
# Run it after changing the request path: a function whose code changed
# since the profile was taken is compiled without its profile (correct,
# just slower), and the benchmark shows the loss. Needs what bench/run.sh
# needs, plus rustup's llvm-tools (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/nyro-gw.profdata
WORK=${PGO_WORK:-target/pgo}
GEN_TARGET=$WORK/target
RAW=$WORK/raw

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$sysroot/lib/rustlib/$host/bin/llvm-profdata
if [ ! -x "$profdata" ]; then
  rustup component add llvm-tools
fi

rm -rf "$RAW"
mkdir -p "$RAW"
echo "pgo: building an instrumented nyro-gw in $GEN_TARGET"
RUSTFLAGS="-Cprofile-generate=$PWD/$RAW" CARGO_TARGET_DIR=$GEN_TARGET \
  cargo build --release --locked --bin nyro-gw

echo "pgo: running the benchmark's scenarios against it"
# Every process the benchmark starts writes its own file (%p); the gates
# judge an instrumented binary here, so their verdict does not matter,
# only that the scenarios ran.
status=0
LLVM_PROFILE_FILE="$PWD/$RAW/nyro-%p-%m.profraw" NYRO_GW_BIN=$GEN_TARGET/release/nyro-gw \
  BENCH_SCENARIOS=${PGO_SCENARIOS:-"main conn1k h2"} BENCH_DURATION=3s BENCH_WARMUP=1s \
  BENCH_ROUNDS=1 bench/run.sh > "$WORK/bench.log" 2>&1 || status=$?
if ((status > 1)); then
  echo "pgo: bench/run.sh failed to run (exit $status); see $WORK/bench.log" >&2
  exit "$status"
fi
shopt -s nullglob
# nyro-gw's processes only: the instrumented build scripts wrote theirs
# (default_*) into the same directory.
raws=("$RAW"/nyro-*.profraw)
if ((${#raws[@]} == 0)); then
  echo "pgo: no profile was written; see $WORK/bench.log" >&2
  exit 1
fi

"$profdata" merge --sparse -o "$OUT" "${raws[@]}"
rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p' > bench/nyro-gw.profdata.llvm
echo "pgo: wrote $OUT ($(wc -c < "$OUT") bytes, LLVM $(cat bench/nyro-gw.profdata.llvm)) from ${#raws[@]} processes"

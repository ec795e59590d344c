#!/usr/bin/env bash
# Run every fuzz target in turn, SECONDS each (default 600), one at a time; logs to $LOGS/<target>.log (default
# /tmp/fuzz-logs). Seed the corpus first (./seed_corpus.sh). Extra arguments go to libFuzzer.
#   ./run_all.sh [SECONDS] [libFuzzer args...]
set -uo pipefail
cd "$(dirname "$0")"
SECS=${1:-600}
shift || true
LOGS=${LOGS:-/tmp/fuzz-logs}
mkdir -p "$LOGS"
for t in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$t"
  echo "== $t ($SECS s) -> $LOGS/$t.log"
  nice -n 15 cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$SECS" -rss_limit_mb=2048 \
    -max_len=65536 -timeout=10 "$@" >"$LOGS/$t.log" 2>&1
  echo "   exit $?: $(grep -E '^Done [0-9]+ runs' "$LOGS/$t.log" || grep -E 'ERROR|SUMMARY|panicked' "$LOGS/$t.log" | head -3)"
done

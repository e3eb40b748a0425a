#!/usr/bin/env bash
# Runs every fuzz target in turn on stable Rust, each for RUNS executions or SECONDS seconds,
# whichever comes first, at the lowest priority, one process at a time. Each target's
# corpus grows in fuzz/corpus/<target>/ (seeded from fuzz/seeds/<target>/); its log ends up
# in fuzz/logs/<target>.log and crashes in fuzz/artifacts/<target>/ (all three ignored by git).
#
#   scripts/fuzz.sh                      # all targets, 10 million runs or 30 minutes each
#   RUNS=100000 SECONDS_PER_TARGET=60 scripts/fuzz.sh idx_parse
#   SANITIZER=none scripts/fuzz.sh       # without AddressSanitizer (faster, fewer checks)
#
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept the -Z flags cargo-fuzz passes to rustc
# (sanitizer, coverage instrumentation). AddressSanitizer's runtime ships with the stable
# x86_64 Linux toolchain; the sanitized build goes to fuzz/target/address/, apart from the
# -s none one in fuzz/target/. -malloc_limit_mb (ASan only) makes any single allocation over 64 MiB a crash.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

RUNS="${RUNS:-10000000}"
SECONDS_PER_TARGET="${SECONDS_PER_TARGET:-1800}"
SANITIZER="${SANITIZER:-address}"
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(idx_parse idx_gzip dataset_pair model_file checkpoint fasta)
fi

# The plain build in cargo-fuzz's default folder, the sanitized one beside it.
TARGET_DIR=target
if [ "$SANITIZER" != none ]; then
    TARGET_DIR="target/$SANITIZER"
fi

export RUSTC_BOOTSTRAP=1
mkdir -p logs
for t in "${TARGETS[@]}"; do
    status=0
    mkdir -p "corpus/$t"
    echo "== $t: $RUNS runs or ${SECONDS_PER_TARGET}s (sanitizer: $SANITIZER), $(date -u +%FT%TZ)"
    nice -n 19 cargo fuzz run -s "$SANITIZER" --target-dir "$TARGET_DIR" "$t" \
        "corpus/$t" "seeds/$t" -- \
        -jobs=1 -workers=1 -runs="$RUNS" -max_total_time="$SECONDS_PER_TARGET" \
        -malloc_limit_mb=64 -print_final_stats=1 || status=$?
    # With -jobs, libFuzzer writes the worker's output to fuzz-0.log.
    mv -f fuzz-0.log "logs/$t.log" 2>/dev/null || true
    grep -E "^#[0-9]+.*(DONE|pulse|NEW)|^stat::|Done [0-9]+ runs|ERROR|SUMMARY" "logs/$t.log" \
        | tail -n 14 || true
    if [ "$status" -ne 0 ]; then
        echo "$t: exit status $status (see fuzz/logs/$t.log, fuzz/artifacts/$t/)" >&2
        exit "$status"
    fi
done

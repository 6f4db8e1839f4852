#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after the other (never two at
# once), at the lowest priority, each with its dictionary and seed corpus; prints the
# executions each reached and any crash. New inputs go to fuzz/corpus-run/<target>/ (not
# committed), crashes to fuzz/artifacts/<target>/: minimise one with
# `cargo +nightly fuzz tmin <target> <file>`, keep it in fuzz/regressions/<target>/, fix it,
# and tests/fuzz_replay.rs replays it from then on.
#
#   scripts/fuzz-all.sh 600                 # ten minutes per target
#   TARGETS="idx csv" scripts/fuzz-all.sh 60
#   RUNS=10000000 scripts/fuzz-all.sh 3600  # stop each at 10 million executions
#
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`). Built with debug assertions
# (`-a`: overflowing arithmetic panics, which is what a size taken from a file must never
# do) and without AddressSanitizer (`-s none`, for speed: the code is safe Rust apart from the
# commented unsafe kernels, which their own tests hold to reference kernels).
# The timeout is generous (120 s): at the lowest priority a run may be starved or paused by
# other work, and libFuzzer measures wall time; a real hang still shows.
# NO_TRACE_COMPARES=1 builds without comparison tracing: the csv target runs several times
# faster (the CSV reader's automaton is rebuilt for each input, and tracing its comparisons
# dominates), at the cost of libFuzzer no longer learning comparison operands (the
# dictionaries still supply the boundary values). It rebuilds the targets.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
targets=${TARGETS:-"idx csv spec spec_structured checkpoint image playground"}
mkdir -p logs
for t in $targets; do
    dict=dicts/$t.dict
    [ "$t" = spec_structured ] && dict=dicts/spec.dict
    mkdir -p "corpus-run/$t"
    set +e
    nice -n 19 cargo +nightly fuzz run -a -s none ${NO_TRACE_COMPARES:+--no-trace-compares} \
        "$t" "corpus-run/$t" "corpus/$t" -- \
        -dict="$dict" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -timeout=120 -print_final_stats=1 ${RUNS:+-runs=$RUNS} >"logs/$t.log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    if [ $rc -eq 0 ]; then
        echo "$t: $execs executions in ${secs} s, no crash"
    else
        echo "$t: exit $rc after $execs executions; see fuzz/logs/$t.log and fuzz/artifacts/$t/"
        grep -m3 -E "ERROR|panicked|SUMMARY" "logs/$t.log" || true
    fi
done

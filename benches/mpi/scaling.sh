#!/usr/bin/env bash
# Data-parallel scaling on one machine: training samples per second of `backprop train`
# in 1 process and in 2 MPI ranks (`--distributed`), 1 compute thread each, for the cnn
# preset and the W1 MLP; rounds alternate the two so drift on a shared machine hits both.
# Prints each round and, per model, the best rate of each and the parallel efficiency
# rate(2) / (2 · rate(1)).
#
#   benches/mpi/scaling.sh [ROUNDS]     (BIN: default target/release/backprop, --features mpi)
#
# On a shared machine run it in a quiet moment (e.g. under a script that pauses
# background jobs); it takes about a minute per round.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/backprop}
ROUNDS=${1:-2}
[ -x "$BIN" ] || { echo "$BIN is missing: cargo build --release --features mpi" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the last epoch's rate (the first warms up); no validation set, so an epoch is training only
rate() { sed -n 's/.*(\([0-9]*\) samples\/s).*/\1/p' "$1" | tail -1; }
run() { # MODEL LIMIT RANKS
    local flags=(train --dataset mnist --model "$1" --limit "$2" --validation 0 --epochs 2
        --threads 1 --seed 1 --out "$tmp/run" --overwrite)
    if [ "$3" = 1 ]; then
        "$BIN" "${flags[@]}" >/dev/null 2>"$tmp/log"
    else
        mpirun --oversubscribe --bind-to core -np "$3" "$BIN" "${flags[@]}" --distributed \
            >/dev/null 2>"$tmp/log"
    fi
    rate "$tmp/log"
}
declare -A best
for ((r = 1; r <= ROUNDS; r++)); do
    for spec in "cnn 6400" "mlp 32000"; do
        set -- $spec
        for ranks in 1 2; do
            s=$(run "$1" "$2" "$ranks")
            echo "round $r  $1  $ranks rank(s): $s samples/s"
            k="$1-$ranks"
            [ "${best[$k]:-0}" -lt "$s" ] && best[$k]=$s
        done
    done
done
for m in cnn mlp; do
    one=${best[$m-1]}
    two=${best[$m-2]}
    eff=$(awk -v a="$one" -v b="$two" 'BEGIN { printf "%.0f", 100 * b / (2 * a) }')
    echo "RESULT $m: 1 rank $one samples/s, 2 ranks $two samples/s, parallel efficiency $eff%"
done

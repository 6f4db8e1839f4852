#!/usr/bin/env bash
# Accuracy at equal epochs over many seeds: runs a workload (default cnn) on backprop and on
# PyTorch for seeds 0..SEEDS-1 and prints each one's mean and standard deviation and the
# difference of the means with its standard error. One seed's accuracy moves by a few tenths
# of a point either way (the shuffle and the initial weights), so the few seeds of run.sh
# can show a gap that is not there. FIRST (default 0) is the first seed, so that one set of
# seeds can be run in parts. Usage: SEEDS=15 benches/peers/accuracy.sh [mlp|cnn|lstm|cnn-bn]
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS="${SEEDS:-15}"
FIRST="${FIRST:-0}"
THREADS="${THREADS:-2}"
VENV="${VENV:-benches/peers/.venv}"
W="${1:-cnn}"
case "$W" in mlp | cnn | lstm | cnn-bn) ;; *) echo "workload $W: choose mlp, cnn, lstm or cnn-bn" >&2; exit 2 ;; esac
PY="$VENV/bin/python"
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "PyTorch is missing from $VENV: run benches/peers/run.sh once to install the peers" >&2
    exit 1
fi
cargo build --release --quiet
OUT="$(mktemp -t backprop-accuracy.XXXXXX)"
echo "# $(date -u +%FT%TZ) $W, seeds $FIRST..$((FIRST + SEEDS - 1))" | tee "$OUT"
for seed in $(seq "$FIRST" $((FIRST + SEEDS - 1))); do
    ./target/release/backprop bench "$W" --threads "$THREADS" --seed "$seed" | sed "s/^RESULT/RESULT seed=$seed/" | tee -a "$OUT"
    "$PY" benches/peers/torch_bench.py "$W" --threads "$THREADS" --seed "$seed" | grep '^RESULT' | sed "s/^RESULT/RESULT seed=$seed/" | tee -a "$OUT"
done
"$PY" - "$OUT" <<'PY'
import statistics as st, sys
acc = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT"):
        f = dict(kv.split("=", 1) for kv in line.split()[1:])
        acc.setdefault(f["impl"], []).append(float(f["test_acc"]) * 100)
for impl, v in acc.items():
    print(f"{impl:9} {len(v)} seeds: mean {st.mean(v):.2f}%, sd {st.stdev(v):.2f} pt")
o, p = acc["backprop"], acc["pytorch"]
se = (st.variance(o) / len(o) + st.variance(p) / len(p)) ** 0.5
print(f"backprop - pytorch: {st.mean(o) - st.mean(p):+.2f} pt (standard error {se:.2f} pt)")
PY

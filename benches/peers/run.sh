#!/usr/bin/env bash
# Runs the workloads on backprop and on the peers (PyTorch eager, JAX jit), alternately,
# ROUNDS times (round k uses seed k-1 everywhere, so accuracies average over seeds), each
# workload in its own process; then prints each one's best figure and our
# ratios against them. Usage: benches/peers/run.sh [workload...]   (default: the four anchor
# workloads mlp cnn tiny infer; W5 `lstm` runs when named, against PyTorch only)
# Environment: ROUNDS (default 2), THREADS (default 2), PEERS (default "pytorch jax"),
# VENV (default benches/peers/.venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-2}"
THREADS="${THREADS:-2}"
PEERS="${PEERS:-pytorch jax}"
VENV="${VENV:-benches/peers/.venv}"
WORKLOADS="${*:-mlp cnn tiny infer}"
PY="$VENV/bin/python"

if ! "$PY" -c "import torch, jax, numpy" 2>/dev/null; then
    echo "installing the peers into $VENV (PyTorch's wheel is several GB)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch jax jaxlib numpy
fi
cargo build --release --quiet
OUT="$(mktemp -t backprop-peers.XXXXXX)"
echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cores; $("$PY" -c 'import torch, jax; print("torch", torch.__version__, "jax", jax.__version__)')" | tee "$OUT"
for round in $(seq "$ROUNDS"); do
    for w in $WORKLOADS; do
        seed=$((round - 1))
        ./target/release/backprop bench "$w" --threads "$THREADS" --seed "$seed" | tee -a "$OUT"
        for peer in $PEERS; do
            [ "$peer:$w" = "jax:lstm" ] && continue
            case "$peer" in
                pytorch) "$PY" benches/peers/torch_bench.py "$w" --threads "$THREADS" --seed "$seed" ;;
                torch.compile) "$PY" benches/peers/torch_bench.py "$w" --threads "$THREADS" --seed "$seed" --compile ;;
                jax) "$PY" benches/peers/jax_bench.py "$w" --threads "$THREADS" --seed "$seed" 2>/dev/null ;;
            esac | grep '^RESULT' | tee -a "$OUT"
        done
    done
done
"$PY" benches/peers/ratios.py "$OUT"

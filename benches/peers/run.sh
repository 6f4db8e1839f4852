#!/usr/bin/env bash
# Runs the workloads on backprop and on the peers (PyTorch eager, JAX jit), alternately,
# ROUNDS times (round k uses seed k-1 everywhere, so accuracies average over seeds), each
# workload in its own process; then prints each one's best figure and our
# ratios against them. Usage: benches/peers/run.sh [workload...]   (default: the four anchor
# workloads mlp cnn tiny infer; W5 `lstm`, W6 `cnn-bn` and W7 `infer-cnn` run when named;
# `lstm`, `cnn-bn` and `infer-cnn` have no JAX peer)
# The inference workloads (`infer`, `infer-cnn`) also run in ONNX Runtime: backprop writes
# the network it measured as ONNX (`--export`), and ONNX Runtime and PyTorch load those
# very weights.
# Environment: ROUNDS (default 2), THREADS (default 2), PEERS (default "pytorch jax
# onnxruntime"), VENV (default benches/peers/.venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-2}"
THREADS="${THREADS:-2}"
PEERS="${PEERS:-pytorch jax onnxruntime}"
VENV="${VENV:-benches/peers/.venv}"
WORKLOADS="${*:-mlp cnn tiny infer}"
PY="$VENV/bin/python"

if ! "$PY" -c "import torch, jax, numpy, onnx, onnxruntime" 2>/dev/null; then
    echo "installing the peers into $VENV (PyTorch's wheel is several GB)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch jax jaxlib numpy onnx onnxruntime
fi
cargo build --release --quiet
OUT="$(mktemp -t backprop-peers.XXXXXX)"
MODEL="$OUT.onnx"
echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cores; $("$PY" -c 'import torch, jax, onnxruntime; print("torch", torch.__version__, "jax", jax.__version__, "onnxruntime", onnxruntime.__version__)')" | tee "$OUT"
for round in $(seq "$ROUNDS"); do
    for w in $WORKLOADS; do
        seed=$((round - 1))
        export=()
        onnx=()
        case "$w" in infer|infer-cnn) export=(--export "$MODEL"); onnx=(--onnx "$MODEL") ;; esac
        ./target/release/backprop bench "$w" --threads "$THREADS" --seed "$seed" "${export[@]}" | tee -a "$OUT"
        for peer in $PEERS; do
            case "$peer:$w" in
                jax:lstm|jax:cnn-bn|jax:infer-cnn) continue ;;
                onnxruntime:infer|onnxruntime:infer-cnn|pytorch:*|torch.compile:*|jax:*) ;;
                *) continue ;;
            esac
            case "$peer" in
                pytorch) "$PY" benches/peers/torch_bench.py "$w" --threads "$THREADS" --seed "$seed" "${onnx[@]}" ;;
                torch.compile) "$PY" benches/peers/torch_bench.py "$w" --threads "$THREADS" --seed "$seed" --compile "${onnx[@]}" ;;
                jax) "$PY" benches/peers/jax_bench.py "$w" --threads "$THREADS" --seed "$seed" 2>/dev/null ;;
                onnxruntime) "$PY" benches/peers/ort_bench.py "$w" --threads "$THREADS" --seed "$seed" "${onnx[@]}" ;;
            esac | grep '^RESULT' | tee -a "$OUT"
        done
    done
done
rm -f "$MODEL"
"$PY" benches/peers/ratios.py "$OUT"

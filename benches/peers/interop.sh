#!/usr/bin/env bash
# Interoperability checks against the peers, with every figure printed:
#  - backprop's ONNX export run in ONNX Runtime (MLP, LeNet-5, cnn, residual + layer norm;
#    1,000 MNIST test inputs each; max abs difference of logits and probabilities);
#  - the recurrent presets and specs (Elman, LSTM, GRU; stacked, bidirectional, padded)
#    exported and run in ONNX Runtime against `backprop predict`;
#  - a PyTorch model imported here, fine-tuned, and loaded back into PyTorch (strict).
# Usage: benches/peers/interop.sh   (installs onnxruntime, onnx and safetensors in the venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${VENV:-benches/peers/.venv}"
PY="$VENV/bin/python"
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "PyTorch is missing from $VENV: run benches/peers/run.sh once to install the peers" >&2
    exit 1
fi
"$PY" -c "import onnxruntime, onnx, safetensors" 2>/dev/null ||
    "$VENV/bin/pip" install --quiet onnxruntime onnx safetensors
OUT="${OUT:-$(mktemp -d -t backprop-onnx.XXXXXX)}"
cargo build --release --quiet
cargo bench --quiet --bench onnx_export -- "$OUT"
"$PY" benches/peers/onnx_runtime.py "$OUT"
"$PY" benches/peers/onnx_recurrent.py --bin target/release/backprop
"$PY" benches/peers/pytorch_roundtrip.py

"""backprop's recurrent models exported to ONNX run in ONNX Runtime as `backprop predict`
computes them.

For the Elman, LSTM and GRU presets (one layer of 128 units on row-by-row MNIST) and five
specs — a 2-layer bidirectional GRU (dropout between its layers), a 2-layer bidirectional
LSTM passing on every step's output to the linear layer, a bidirectional ReLU Elman network,
and a GRU and a 2-layer bidirectional LSTM with `padding_value` 0 (an image's trailing black
rows are padding, so the lengths differ from sample to sample):
1. `backprop train` trains briefly (2,000 images, 1 epoch) and `backprop export` writes
   `model.onnx`, which `onnx.checker` accepts (full check, with shape inference);
2. ONNX Runtime's probabilities on 1,000 MNIST test images (one batch, and one sample at a
   time: the batch dimension is symbolic) and on a few made-up images read through
   `predict --csv` (all black: length 0; only the top row; the top half; the left half)
   equal `backprop predict`'s: the script prints the largest absolute difference and fails
   above 1e-5.
Finally `backprop export` refuses a Jordan network and a stateful LSTM, naming the layer.

Prints one RESULT line per model and exits non-zero if a check fails.
Usage: benches/peers/.venv/bin/python benches/peers/onnx_recurrent.py [--bin PATH]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, mnist  # noqa: E402

CHECK = 1000
TOL = 1e-5

SPECS = {
    "bigru": [{"type": "gru", "hidden": 32, "num_layers": 2, "bidirectional": True,
               "dropout": 0.2}],
    "bilstm_sequence": [{"type": "lstm", "hidden": 16, "num_layers": 2, "bidirectional": True,
                         "output": "sequence"}],
    "birnn_relu": [{"type": "rnn_relu", "hidden": 32, "bidirectional": True}],
    "gru_padded": [{"type": "gru", "hidden": 32, "padding_value": 0.0}],
    "bilstm_padded": [{"type": "lstm", "hidden": 16, "num_layers": 2, "bidirectional": True,
                       "padding_value": 0.0}],
}
REFUSED = {
    "jordan": ([{"type": "jordan", "hidden": 16, "out": 16}], "jordan1"),
    "stateful_lstm": ([{"type": "lstm", "hidden": 16, "stateful": True}], "lstm1"),
}


def run(bin_path, *args, check=True):
    out = subprocess.run([bin_path, *args, "--json"], cwd=ROOT, capture_output=True, text=True)
    if check and out.returncode != 0:
        sys.exit(f"backprop {' '.join(args)} failed:\n{out.stderr}")
    return out


def last_json(out):
    return json.loads(out.stdout.strip().splitlines()[-1])


def spec_file(work, name, layers):
    path = os.path.join(work, f"{name}.json")
    with open(path, "w") as f:
        json.dump({"layers": layers + [{"type": "linear", "out": 10}]}, f)
    return path


def made_up(xte):
    """Inputs with unusual lengths under `padding_value` 0: all black, only the first row,
    the top half, and the left half (every row real)."""
    x = np.zeros((4, 28, 28), dtype=np.float32)
    imgs = xte[:4].reshape(4, 28, 28)
    x[1, 0] = 0.5
    x[2, :14] = imgs[2, :14]
    x[3, :, :14] = imgs[3, :, :14]
    return x.reshape(4, 784)


def probabilities(bin_path, out, *how):
    preds = last_json(run(bin_path, "predict", "--model-path", out, *how))["predictions"]
    return np.array([p["probabilities"] for p in preds], dtype=np.float64)


def check_model(bin_path, work, model, xte, extra):
    name = os.path.basename(model).replace(".json", "")
    out = os.path.join(work, name)
    run(bin_path, "train", "--model", model, "--limit", "2000", "--epochs", "1", "--out", out)
    path = os.path.join(out, "model.onnx")
    exported = last_json(run(bin_path, "export", "--model-path", out, "--out", path))
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    ops = sorted({n.op_type for n in proto.graph.node} & {"RNN", "LSTM", "GRU"})
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = xte[:CHECK]
    ours = probabilities(bin_path, out, "--index", ",".join(str(i) for i in range(CHECK)))
    batch = s.run(["probabilities"], {"input": x})[0]
    single = np.concatenate([s.run(["probabilities"], {"input": x[i:i + 1]})[0]
                             for i in range(CHECK)])
    diff = max(np.abs(batch - ours).max(), np.abs(single - ours).max())
    csv = os.path.join(work, f"{name}.csv")
    np.savetxt(csv, extra, delimiter=",", fmt="%.9g")
    ours_extra = probabilities(bin_path, out, "--csv", csv)
    diff_extra = np.abs(s.run(["probabilities"], {"input": extra})[0] - ours_extra).max()
    agree = (batch.argmax(1) == ours.argmax(1)).mean()
    good = max(diff, diff_extra) <= TOL
    print(f"RESULT model={name} ops={'+'.join(ops)} nodes={exported['nodes']} "
          f"probabilities_max_abs_diff={diff:.3e} over={CHECK} "
          f"made_up_max_abs_diff={diff_extra:.3e} over={len(extra)} "
          f"argmax_agreement={agree:.4f} {'OK' if good else 'FAILED'}", flush=True)
    return good


def check_refused(bin_path, work, name, layers, layer):
    out = os.path.join(work, name)
    model = spec_file(work, name, layers)
    run(bin_path, "train", "--model", model, "--limit", "200", "--epochs", "1", "--out", out)
    res = run(bin_path, "export", "--model-path", out, check=False)
    msg = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
    good = res.returncode != 0 and f"layer {layer} (" in msg and "panicked" not in res.stderr
    print(f"RESULT model={name} refused={res.returncode != 0} message={msg!r} "
          f"{'OK' if good else 'FAILED'}", flush=True)
    return good


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "backprop"))
    a = ap.parse_args()
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}")
    _, _, xte, _ = mnist()
    extra = made_up(xte)
    work = tempfile.mkdtemp(prefix="backprop-onnx-recurrent-")
    models = ["rnn", "lstm", "gru"] + [spec_file(work, n, l) for n, l in SPECS.items()]
    ok = True
    for model in models:
        ok = check_model(a.bin, work, model, xte, extra) and ok
    for name, (layers, layer) in REFUSED.items():
        ok = check_refused(a.bin, work, name, layers, layer) and ok
    print("ONNX Runtime matches backprop" if ok else "a check FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

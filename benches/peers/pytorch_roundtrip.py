"""PyTorch → backprop → PyTorch, checked end to end.

1. Trains a small MNIST classifier in PyTorch (784-64 with batch norm and ReLU, then 10; one
   epoch of Adam) and saves its state dict with `safetensors.torch.save_file`, as any
   PyTorch user would.
2. `backprop import` reads it for the matching spec; `backprop eval` must report the same
   test accuracy as PyTorch, and `backprop predict` the same probabilities (max abs
   difference over 1,000 test images, at most 1e-6).
3. `backprop train --init-from` fine-tunes it for one epoch.
4. The fine-tuned `model.safetensors` loads back into the PyTorch module with
   `load_state_dict(strict=True)` as it is, and PyTorch's probabilities equal backprop's
   (again at most 1e-6); `backprop export` writes it as ONNX too.

Prints one RESULT line per figure and exits non-zero if a check fails.
Usage: benches/peers/.venv/bin/python benches/peers/pytorch_roundtrip.py [--bin PATH]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import OrderedDict

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, mnist  # noqa: E402

SPEC = {"layers": [{"type": "linear", "out": 64}, {"type": "batch_norm"}, {"type": "relu"},
                   {"type": "linear", "out": 10}]}
CHECK = 1000


def torch_model():
    # the layer names are the ones `backprop summary --model spec.json` prints
    return nn.Sequential(OrderedDict(fc1=nn.Linear(784, 64), bn1=nn.BatchNorm1d(64),
                                     relu1=nn.ReLU(), fc2=nn.Linear(64, 10)))


def run(bin_path, *args):
    out = subprocess.run([bin_path, *args, "--json"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"backprop {' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def backprop_probabilities(bin_path, model_dir):
    idx = ",".join(str(i) for i in range(CHECK))
    preds = run(bin_path, "predict", "--model-path", model_dir, "--index", idx)["predictions"]
    return np.array([p["probabilities"] for p in preds], dtype=np.float64)


def torch_probabilities(model, x):
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x)), dim=1).double().numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "backprop"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    xtr, ytr, xte, yte = mnist()
    work = tempfile.mkdtemp(prefix="backprop-roundtrip-")
    spec = os.path.join(work, "spec.json")
    with open(spec, "w") as f:
        json.dump(SPEC, f)

    # 1. train in PyTorch, save the state dict
    model = torch_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(len(xtr))
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    model.train()
    for i in range(0, len(xtr), 64):
        b = perm[i:i + 64]
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt[b]), yt[b]).backward()
        opt.step()
    weights = os.path.join(work, "torch.safetensors")
    save_file(model.state_dict(), weights)
    model.eval()
    with torch.no_grad():
        torch_acc = (model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    print(f"RESULT step=pytorch test_accuracy={torch_acc:.4f}")

    # 2. import here: same accuracy, same probabilities
    imported = os.path.join(work, "imported")
    r = run(a.bin, "import", "--weights", weights, "--model", spec, "--dataset", "mnist",
            "--out", imported)
    ev = run(a.bin, "eval", "--model-path", imported)
    ours = backprop_probabilities(a.bin, imported)
    diff = np.abs(ours - torch_probabilities(model, xte[:CHECK])).max()
    print(f"RESULT step=import skipped={','.join(r['skipped'])} test_accuracy={ev['test_accuracy']:.4f} "
          f"pytorch={torch_acc:.4f} probabilities_max_abs_diff={diff:.3e} over={CHECK}")
    ok = abs(ev["test_accuracy"] - torch_acc) < 1e-12 and diff <= 1e-6

    # 3. fine-tune one epoch here
    tuned = os.path.join(work, "tuned")
    t = run(a.bin, "train", "--init-from", weights, "--model", spec, "--dataset", "mnist",
            "--epochs", "1", "--optimizer", "adam", "--lr", "0.0005", "--out", tuned)
    print(f"RESULT step=fine-tune epochs=1 test_accuracy={t['test_accuracy']:.4f}")

    # 4. back into PyTorch, strict
    back = torch_model()
    state = load_file(os.path.join(tuned, "model.safetensors"))
    back.load_state_dict(state, strict=True)
    ours = backprop_probabilities(a.bin, tuned)
    diff2 = np.abs(ours - torch_probabilities(back, xte[:CHECK])).max()
    with torch.no_grad():
        back_acc = (back(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    print(f"RESULT step=back-to-pytorch strict=True keys={len(state)} test_accuracy={back_acc:.4f} "
          f"backprop={t['test_accuracy']:.4f} probabilities_max_abs_diff={diff2:.3e} over={CHECK}")
    ok = ok and diff2 <= 1e-6 and abs(back_acc - t["test_accuracy"]) < 1e-12
    e = run(a.bin, "export", "--model-path", tuned, "--format", "onnx",
            "--out", os.path.join(work, "tuned.onnx"))
    print(f"RESULT step=export nodes={e['nodes']} bytes={e['bytes']}")
    print("round trip", "OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

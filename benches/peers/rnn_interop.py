"""Recurrent models saved by backprop load into PyTorch with `load_state_dict(strict=True)`
and give the same outputs.

For the Elman, LSTM and GRU presets (one layer of 128 units on row-by-row MNIST) and a
2-layer bidirectional GRU spec with dropout between its layers:
1. `backprop train` trains briefly (2,000 images, 1 epoch) and saves `model.safetensors`;
2. the file loads as it is into the matching PyTorch module (nn.RNN / nn.LSTM / nn.GRU with
   batch_first, then nn.Linear), strict;
3. PyTorch's probabilities on 1,000 test images equal `backprop predict`'s (max abs
   difference at most 1e-5).

Prints one RESULT line per model and exits non-zero if a check fails.
Usage: benches/peers/.venv/bin/python benches/peers/rnn_interop.py [--bin PATH]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, mnist  # noqa: E402

CHECK = 1000
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RowModel(nn.Module):
    """A recurrent layer over the 28 rows of an image, its last state into a linear layer:
    the layer names are the ones `backprop summary` prints (`lstm1`, `fc1`)."""

    def __init__(self, kind, hidden=128, layers=1, bidirectional=False, dropout=0.0):
        super().__init__()
        self.kind, self.dirs = kind, 2 if bidirectional else 1
        rnn = CELLS[kind](28, hidden, num_layers=layers, bidirectional=bidirectional,
                          dropout=dropout, batch_first=True)
        setattr(self, f"{kind}1", rnn)
        self.fc1 = nn.Linear(hidden * self.dirs, 10)

    def forward(self, x):
        _, h = getattr(self, f"{self.kind}1")(x.view(-1, 28, 28))
        if self.kind == "lstm":
            h = h[0]
        last = h[-self.dirs:].transpose(0, 1).reshape(x.shape[0], -1)
        return self.fc1(last)


def run(bin_path, *args):
    out = subprocess.run([bin_path, *args, "--json"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"backprop {' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "backprop"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    _, _, xte, _ = mnist()
    work = tempfile.mkdtemp(prefix="backprop-rnn-interop-")
    bigru = {"layers": [{"type": "gru", "hidden": 32, "num_layers": 2, "bidirectional": True,
                         "dropout": 0.2}, {"type": "linear", "out": 10}]}
    spec = os.path.join(work, "bigru.json")
    with open(spec, "w") as f:
        json.dump(bigru, f)
    cases = [("rnn", "rnn", {}), ("lstm", "lstm", {}), ("gru", "gru", {}),
             (spec, "gru", dict(hidden=32, layers=2, bidirectional=True, dropout=0.2))]
    ok = True
    idx = ",".join(str(i) for i in range(CHECK))
    for model, kind, opts in cases:
        out = os.path.join(work, os.path.basename(model).replace(".json", ""))
        run(a.bin, "train", "--model", model, "--limit", "2000", "--epochs", "1", "--out", out)
        torch_model = RowModel(kind, **opts)
        state = load_file(os.path.join(out, "model.safetensors"))
        torch_model.load_state_dict(state, strict=True)
        torch_model.eval()
        with torch.no_grad():
            theirs = torch.softmax(torch_model(torch.from_numpy(xte[:CHECK])), 1).double().numpy()
        preds = run(a.bin, "predict", "--model-path", out, "--index", idx)["predictions"]
        ours = np.array([p["probabilities"] for p in preds], dtype=np.float64)
        diff = np.abs(ours - theirs).max()
        good = diff <= 1e-5
        ok = ok and good
        print(f"RESULT model={os.path.basename(model)} strict=True keys={len(state)} "
              f"probabilities_max_abs_diff={diff:.3e} over={CHECK} {'OK' if good else 'FAILED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

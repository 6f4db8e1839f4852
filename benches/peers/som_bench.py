"""Self-organizing maps side by side: backprop's `som` command and MiniSom, alternating, at
equal grid, iterations, schedule and initialisation, on scikit-learn's digits and MNIST.

Both train on the same samples in the same order (sequential online training or Kohonen's
batch algorithm) from PCA initial weights, so their errors should agree closely. Times are
of the training only (initialisation and error measurement excluded); CPU seconds are
printed beside wall seconds because the machine is shared.

    benches/peers/.venv/bin/python benches/peers/som_bench.py [--rounds 2] [--skip-mnist]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
from minisom import MiniSom
from sklearn.datasets import load_digits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, mnist  # noqa: E402

BIN = os.path.join(ROOT, "target", "release", "backprop")


def write_idx(directory, prefix, images, labels):
    """MNIST-layout IDX files, so that `backprop som --data-dir` reads the same rows."""
    n, h, w = images.shape
    with open(os.path.join(directory, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, h, w) + images.astype(np.uint8).tobytes())
    with open(os.path.join(directory, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())


def digits_dir(tmp):
    d = load_digits()
    # grey levels 0..16 scaled to bytes, so both sides see x = byte / 255
    images = np.round(d.images * 255.0 / 16.0).astype(np.uint8)
    path = os.path.join(tmp, "digits")
    os.makedirs(path, exist_ok=True)
    write_idx(path, "train", images, d.target)
    write_idx(path, "t10k", images[:10], d.target[:10])
    return path, images.reshape(len(images), -1).astype(np.float64) / 255.0


def ours(case, data_dir, out):
    args = [BIN, "som", "--grid", f"{case['x']}x{case['y']}", "--sigma", str(case["sigma"]),
            "--lr", str(case["lr"]), "--topology", case["topology"],
            "--neighborhood", case["neighborhood"], "--init", "pca", "--mode", case["mode"],
            "--iterations", str(case["iterations"]), "--out", out, "--json"]
    if data_dir:
        args += ["--data-dir", data_dir]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"backprop som failed: {r.stderr}")
    j = json.loads(r.stdout)
    return (j["train"]["quantization_error"], j["train"]["topographic_error"],
            j["train_seconds"], j["train_cpu_seconds"])


def minisom(case, x):
    som = MiniSom(case["x"], case["y"], x.shape[1], sigma=case["sigma"],
                  learning_rate=case["lr"], neighborhood_function=case["neighborhood"],
                  topology=case["topology"], random_seed=0)
    som.pca_weights_init(x)
    w0, c0 = time.perf_counter(), time.process_time()
    if case["mode"] == "online":
        som.train(x, case["iterations"], random_order=False)
    else:
        som.train_batch_offline(x, case["iterations"])
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return som.quantization_error(x), som.topographic_error(x), wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--skip-mnist", action="store_true")
    ap.add_argument("--only-mnist", action="store_true")
    opts = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: run `cargo build --release` first")
    tmp = tempfile.mkdtemp(prefix="som-bench-")
    ddir, dx = digits_dir(tmp)
    base = dict(x=15, y=15, sigma=3.0, lr=0.5, topology="rectangular",
                neighborhood="gaussian", mode="online", iterations=10000)
    cases = [
        ("digits", ddir, dx, dict(base)),
        ("digits", ddir, dx, dict(base, topology="hexagonal")),
        ("digits", ddir, dx, dict(base, neighborhood="bubble", sigma=2.5)),
        ("digits", ddir, dx, dict(base, mode="batch", iterations=20)),
    ]
    if opts.only_mnist:
        cases = []
    if not opts.skip_mnist:
        mx = mnist()[0].astype(np.float64)
        cases.append(("mnist", None, mx, dict(base)))
    print(f"{'data':7} {'case':34} {'who':9} {'QE':>8} {'TE':>7} {'wall s':>8} {'cpu s':>8}")
    for name, data_dir, x, case in cases:
        label = f"{case['x']}x{case['y']} {case['topology'][:4]} {case['neighborhood']} {case['mode']} {case['iterations']}"
        res = {"backprop": [], "minisom": []}
        for r in range(opts.rounds):
            order = ["backprop", "minisom"] if r % 2 == 0 else ["minisom", "backprop"]
            for who in order:
                if who == "backprop":
                    res[who].append(ours(case, data_dir, os.path.join(tmp, "out")))
                else:
                    res[who].append(minisom(case, x))
        for who in ["backprop", "minisom"]:
            q, t = res[who][-1][0], res[who][-1][1]
            wall = min(v[2] for v in res[who])
            cpu = min(v[3] for v in res[who])
            print(f"{name:7} {label:34} {who:9} {q:8.4f} {t:7.4f} {wall:8.3f} {cpu:8.3f}")
        b, m = res["backprop"][-1], res["minisom"][-1]
        wall_ratio = min(v[2] for v in res["minisom"]) / min(v[2] for v in res["backprop"])
        cpu_ratio = min(v[3] for v in res["minisom"]) / max(min(v[3] for v in res["backprop"]), 1e-9)
        print(f"RATIO {name} {label}: QE ours/MiniSom {b[0] / m[0]:.4f}, TE ours {b[1]:.4f} vs "
              f"{m[1]:.4f}, speed-up wall {wall_ratio:.1f}x, cpu {cpu_ratio:.1f}x")


if __name__ == "__main__":
    main()

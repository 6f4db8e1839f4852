"""Echo state networks side by side: backprop's `esn` command and reservoirpy, alternating,
with reservoirpy's README settings (100 units, spectral radius 1.25, leak rate 0.3,
ridge 1e-5, 100 steps of warm-up, 2,000 Mackey-Glass points, the last 20% as test).

Both fit the same series (reservoirpy's `mackey_glass(2000)`, written to a CSV for ours)
one step ahead; NRMSE is RMSE / std of the test targets for both. Times cover building the
reservoir, fitting the readout and predicting the test part. Several seeds, since a single
random reservoir varies.

    benches/peers/.venv/bin/python benches/peers/esn_bench.py [--seeds 5]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT  # noqa: E402

BIN = os.path.join(ROOT, "target", "release", "backprop")


def nrmse(y, p):
    y, p = np.ravel(y), np.ravel(p)
    return float(np.sqrt(np.mean((y - p) ** 2)) / np.std(y))


def theirs(x, seed):
    from reservoirpy import ESN
    from reservoirpy.datasets import to_forecasting
    x_train, x_test, y_train, y_test = to_forecasting(x, test_size=0.2)
    w0, c0 = time.perf_counter(), time.process_time()
    esn = ESN(units=100, sr=1.25, lr=0.3, ridge=1e-5, seed=seed)
    esn.fit(x_train, y_train, warmup=100)
    pred = esn.run(x_test)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return nrmse(y_test, pred), wall, cpu, len(x_test)


def ours(csv, seed, out):
    r = subprocess.run([BIN, "esn", "--series", csv, "--units", "100", "--spectral-radius", "1.25",
                        "--leak-rate", "0.3", "--ridge", "1e-5", "--washout", "100",
                        "--test-fraction", "0.2", "--seed", str(seed), "--out", out, "--json"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"backprop esn failed: {r.stderr}")
    j = json.loads(r.stdout)
    return j["one_step_nrmse"], j["seconds"], j["cpu_seconds"], j["test_steps"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    opts = ap.parse_args()
    from reservoirpy.datasets import mackey_glass
    x = mackey_glass(n_timesteps=2000)
    tmp = tempfile.mkdtemp(prefix="esn-bench-")
    csv = os.path.join(tmp, "mackey_glass.csv")
    np.savetxt(csv, x[:, 0], header="x", comments="")
    theirs(x, 0)  # import and JIT warm-up, not timed
    res = {"backprop": [], "reservoirpy": []}
    for seed in range(opts.seeds):
        order = ["backprop", "reservoirpy"] if seed % 2 == 0 else ["reservoirpy", "backprop"]
        for who in order:
            r = ours(csv, seed, os.path.join(tmp, "out")) if who == "backprop" else theirs(x, seed)
            res[who].append(r)
            print(f"seed {seed} {who:12} NRMSE {r[0]:.5f}  wall {r[1]*1e3:8.2f} ms  cpu {r[2]*1e3:8.2f} ms  test steps {r[3]}")
    med = {k: np.median([v[0] for v in vs]) for k, vs in res.items()}
    wall = {k: np.median([v[1] for v in vs]) for k, vs in res.items()}
    cpu = {k: np.median([v[2] for v in vs]) for k, vs in res.items()}
    print(f"median NRMSE: backprop {med['backprop']:.5f}, reservoirpy {med['reservoirpy']:.5f} "
          f"(ratio {med['backprop'] / med['reservoirpy']:.3f})")
    print(f"RATIO esn mackey-glass: NRMSE ours/reservoirpy {med['backprop'] / med['reservoirpy']:.3f}, "
          f"speed-up wall {wall['reservoirpy'] / wall['backprop']:.1f}x, cpu {cpu['reservoirpy'] / cpu['backprop']:.1f}x")


if __name__ == "__main__":
    main()

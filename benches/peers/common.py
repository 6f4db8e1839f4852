"""Shared by the peers' workload scripts: MNIST from the project's data/mnist, the two-spirals
set, and the RESULT line format of `backprop bench`."""
import gzip
import os
import resource
import struct
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist(data_dir=None):
    """(x_train, y_train, x_test, y_test): f32 in [0,1] of shape [n, 784], int64 labels."""
    d = data_dir or os.path.join(ROOT, "data", "mnist")
    def load(prefix):
        x = read_idx(os.path.join(d, f"{prefix}-images-idx3-ubyte.gz")).reshape(-1, 784)
        y = read_idx(os.path.join(d, f"{prefix}-labels-idx1-ubyte.gz"))
        return (x.astype(np.float32) / 255.0), y.astype(np.int64)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    return xtr, ytr, xte, yte


def spirals(n=1000, noise=0.1, seed=0):
    """Two interleaved spirals in [-1,1]^2, as backprop's `spiral` set."""
    rng = np.random.default_rng(seed)
    cls = np.arange(n) % 2
    t = rng.uniform(size=n)
    r = 0.05 + 0.95 * t
    a = 1.75 * 2 * np.pi * t + np.pi * cls
    x = np.stack([r * np.cos(a), r * np.sin(a)], 1) + noise * 0.25 * rng.normal(size=(n, 2))
    return x.astype(np.float32), cls.astype(np.int64)


def median_seconds(call, warmup, reps):
    """Median wall time of `call()` over `reps` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def result(impl, workload, threads, **fields):
    parts = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
    print(f"RESULT impl={impl} workload={workload} threads={threads} {parts}", flush=True)

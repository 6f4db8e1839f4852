"""W4 `infer` and W7 `infer-cnn` in ONNX Runtime, running backprop's own export of the network
it measured (`backprop bench infer-cnn --export PATH`): one-sample latency and batched
throughput with the same call counts and thread count as `backprop bench`.

Usage: ort_bench.py {infer,infer-cnn} --onnx PATH [--threads 2] [--seed 0]
"""
import argparse

import numpy as np
import onnxruntime as ort

from common import median_seconds, mnist, result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=["infer", "infer-cnn"])
    p.add_argument("--onnx", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(a.onnx, opts, providers=["CPUExecutionProvider"])
    _, _, xte, yte = mnist()
    calls, size, reps = (10000, 1024, 50) if a.workload == "infer" else (2000, 256, 30)
    one = np.ascontiguousarray(xte[:1])
    batch = np.ascontiguousarray(xte[np.random.default_rng(a.seed).integers(0, len(xte), size)])
    out = ["logits"]
    latency = median_seconds(lambda: s.run(out, {"input": one}), calls // 20, calls)
    per_batch = median_seconds(lambda: s.run(out, {"input": batch}), 5, reps)
    extra = {}
    if a.workload == "infer-cnn":
        logits = np.concatenate([s.run(out, {"input": xte[i:i + 1000]})[0] for i in range(0, len(xte), 1000)])
        extra["test_acc"] = float((logits.argmax(1) == yte).mean())
    result("onnxruntime", a.workload, a.threads, latency_us=latency * 1e6,
           samples_per_s=size / per_batch, **extra)


if __name__ == "__main__":
    main()

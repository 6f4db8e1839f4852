"""backprop's ONNX export run by ONNX Runtime: for each model written by
`cargo bench --bench onnx_export -- DIR` (an MLP, LeNet-5, the cnn preset with batch norm, a
residual network with layer norm, each trained one epoch), checks the file with
`onnx.checker` (full check, with shape inference), runs the 1,000 MNIST test inputs through
ONNX Runtime in one batch and again one sample at a time (the batch dimension is symbolic),
and prints the largest absolute difference from backprop's own logits and probabilities.

Usage: benches/peers/.venv/bin/python benches/peers/onnx_runtime.py [DIR]
Exits non-zero if a difference exceeds 1e-5.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

TOL = 1e-5


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "runs/onnx-peers"
    ok = True
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}")
    for m in json.load(open(f"{d}/models.json")):
        name, n = m["name"], m["samples"]
        path = f"{d}/{name}.onnx"
        proto = onnx.load(path)
        onnx.checker.check_model(proto, full_check=True)
        x = np.fromfile(f"{d}/{name}.input.f32", dtype="<f4").reshape(n, m["inputs"])
        ours = {k: np.fromfile(f"{d}/{name}.{k}.f32", dtype="<f4").reshape(n, m["outputs"])
                for k in ("logits", "probabilities")}
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        inp = s.get_inputs()[0]
        assert inp.name == "input" and isinstance(inp.shape[0], str), inp
        names = [o.name for o in s.get_outputs()]
        batch = dict(zip(names, s.run(None, {"input": x})))
        single = [dict(zip(names, s.run(None, {"input": x[i:i + 1]}))) for i in range(n)]
        worst = {}
        for k in ("logits", "probabilities"):
            one = np.concatenate([r[k] for r in single])
            worst[k] = max(np.abs(batch[k] - ours[k]).max(), np.abs(one - ours[k]).max())
        agree = (batch["logits"].argmax(1) == ours["logits"].argmax(1)).mean()
        print(f"RESULT model={name} opset={proto.opset_import[0].version} nodes={len(proto.graph.node)} "
              f"samples={n} logits_max_abs_diff={worst['logits']:.3e} "
              f"probabilities_max_abs_diff={worst['probabilities']:.3e} argmax_agreement={agree:.4f}")
        ok = ok and max(worst.values()) <= TOL
    print("ONNX Runtime matches backprop" if ok else f"ONNX Runtime differs by more than {TOL}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

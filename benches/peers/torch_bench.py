"""The workloads of docs/PERFORMANCE.md in PyTorch (eager, or torch.compile with --compile)."""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import median_seconds, mnist, peak_rss_mb, result, spirals


def mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def lenet():
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def cnn_bn():
    """W6: the `cnn` preset (426,234 parameters): conv-BN-ReLU blocks of 16, 32 and 64
    channels of 3x3 kernels without bias, 2x2 max pooling after the first two, 3136 -> 128
    ReLU -> 10; He-uniform weights as backprop's preset."""
    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    net = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        *block(1, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    for m in net.modules():
        if isinstance(m, nn.Conv2d) or (isinstance(m, nn.Linear) and m.out_features == 128):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
    assert sum(p.numel() for p in net.parameters()) == 426234
    return net


def load_onnx_weights(model, path):
    """Copies the initializers of backprop's ONNX export of the same network into `model`,
    in order (weights, biases, batch norm's scale, shift, running mean and variance)."""
    import onnx
    from onnx import numpy_helper
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    names = [n for n in inits if not n.endswith("shape")]
    ours = [t for m in model.modules() if not list(m.children())
            for t in list(m.parameters()) + [b for b in m.buffers() if b.dtype == torch.float32]]
    theirs = [inits[n] for n in names if inits[n].dtype.kind == "f"]
    assert len(ours) == len(theirs), (len(ours), len(theirs), names)
    with torch.no_grad():
        for t, v in zip(ours, theirs):
            assert tuple(t.shape) == v.shape, (t.shape, v.shape)
            t.copy_(torch.from_numpy(v.copy()))


class RowLstm(nn.Module):
    """W5: each image as 28 steps of 28 pixels; nn.LSTM 28 -> 128 (PyTorch's fused CPU
    kernel), its final hidden state -> Linear 128 -> 10."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        _, (h, _) = self.lstm(x.view(-1, 28, 28))
        return self.fc(h[-1])


def train(model, x, y, epochs, batch, lr, momentum, seed, compile_):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    step_model = torch.compile(model) if compile_ else model
    g = torch.Generator().manual_seed(seed)
    times = []
    n = x.shape[0]
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(step_model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times


def accuracy(model, x, y):
    with torch.inference_mode():
        return (model(x).argmax(1) == y).float().mean().item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=["mlp", "cnn", "tiny", "infer", "lstm", "cnn-bn", "infer-cnn", "all"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--onnx", help="infer, infer-cnn: load the weights of backprop's export of the network")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    impl = "torch.compile" if a.compile else "pytorch"
    work = ["mlp", "cnn", "tiny", "infer"] if a.workload == "all" else [a.workload]
    data = None
    if any(w != "tiny" for w in work):
        xtr, ytr, xte, yte = (torch.from_numpy(v) for v in mnist())
        data = (xtr, ytr, xte, yte)
    for w in work:
        if w in ("mlp", "cnn", "lstm", "cnn-bn"):
            xtr, ytr, xte, yte = data
            model = {"mlp": mlp, "cnn": lenet, "lstm": RowLstm, "cnn-bn": cnn_bn}[w]()
            epochs = 5 if w == "mlp" else 3
            times = train(model, xtr, ytr, epochs, 64, 0.05, 0.9, a.seed, a.compile)
            model.eval()
            extra = {"peak_rss_mb": peak_rss_mb()} if w in ("cnn", "cnn-bn") else {}
            result(impl, w, a.threads, epoch_s=times[1], test_acc=accuracy(model, xte, yte), **extra)
        elif w == "tiny":
            x, y = (torch.from_numpy(v) for v in spirals(seed=a.seed))
            model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))
            t0 = time.perf_counter()
            train(model, x, y, 200, 10, 0.1, 0.0, a.seed, a.compile)
            total = time.perf_counter() - t0
            result(impl, w, a.threads, total_s=total, train_acc=accuracy(model, x, y))
        else:
            xtr, ytr, xte, yte = data
            model = (mlp() if w == "infer" else cnn_bn()).eval()
            if a.onnx:
                load_onnx_weights(model, a.onnx)
            # the same counts as `backprop bench`: (one-sample calls, batch size, batch calls)
            calls, size, reps = (10000, 1024, 50) if w == "infer" else (2000, 256, 30)
            fwd = torch.compile(model) if a.compile else model
            one = xte[:1].clone()
            batch = xte[torch.randint(0, xte.shape[0], (size,))].clone()
            with torch.inference_mode():
                latency = median_seconds(lambda: fwd(one), calls // 20, calls)
                per_batch = median_seconds(lambda: fwd(batch), 5, reps)
            extra = {"test_acc": accuracy(model, xte, yte)} if w == "infer-cnn" else {}
            result(impl, w, a.threads, latency_us=latency * 1e6, samples_per_s=size / per_batch, **extra)


if __name__ == "__main__":
    main()

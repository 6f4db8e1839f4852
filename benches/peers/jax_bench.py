"""The four workloads of docs/PERFORMANCE.md in JAX (jit), with SGD and momentum written out."""
import argparse
import os
import time

import numpy as np

from common import median_seconds, mnist, peak_rss_mb, result, spirals


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=["mlp", "cnn", "tiny", "infer", "all"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={a.threads}")
    import jax
    import jax.numpy as jnp

    def dense(key, n_in, n_out):
        k1, k2 = jax.random.split(key)
        bound = 1.0 / np.sqrt(n_in)
        return (jax.random.uniform(k1, (n_in, n_out), minval=-bound, maxval=bound),
                jax.random.uniform(k2, (n_out,), minval=-bound, maxval=bound))

    def conv(key, c_in, c_out, k):
        k1, k2 = jax.random.split(key)
        bound = 1.0 / np.sqrt(c_in * k * k)
        return (jax.random.uniform(k1, (c_out, c_in, k, k), minval=-bound, maxval=bound),
                jax.random.uniform(k2, (c_out,), minval=-bound, maxval=bound))

    def mlp_params(key, sizes):
        keys = jax.random.split(key, len(sizes) - 1)
        return [dense(k, i, o) for k, i, o in zip(keys, sizes[:-1], sizes[1:])]

    def mlp_apply(params, x, act=jax.nn.relu):
        for w, b in params[:-1]:
            x = act(x @ w + b)
        w, b = params[-1]
        return x @ w + b

    def lenet_params(key):
        ks = jax.random.split(key, 5)
        return [conv(ks[0], 1, 6, 5), conv(ks[1], 6, 16, 5), dense(ks[2], 400, 120), dense(ks[3], 120, 84), dense(ks[4], 84, 10)]

    def pool(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def lenet_apply(params, x):
        x = x.reshape(-1, 1, 28, 28)
        (w1, b1), (w2, b2) = params[0], params[1]
        x = jax.lax.conv_general_dilated(x, w1, (1, 1), ((2, 2), (2, 2))) + b1[None, :, None, None]
        x = pool(jax.nn.relu(x))
        x = jax.lax.conv_general_dilated(x, w2, (1, 1), "VALID") + b2[None, :, None, None]
        x = pool(jax.nn.relu(x)).reshape(x.shape[0], -1)
        return mlp_apply(params[2:], x)

    def make_step(apply, lr, momentum):
        def loss(params, x, y):
            logits = apply(params, x)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))

        @jax.jit
        def step(params, vel, x, y):
            g = jax.grad(loss)(params, x, y)
            vel = jax.tree_util.tree_map(lambda v, g: momentum * v + g, vel, g)
            params = jax.tree_util.tree_map(lambda p, v: p - lr * v, params, vel)
            return params, vel
        return step

    def train(params, apply, x, y, epochs, batch, lr, momentum, seed):
        step = make_step(apply, lr, momentum)
        vel = jax.tree_util.tree_map(jnp.zeros_like, params)
        rng = np.random.default_rng(seed)
        n = x.shape[0]
        times = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            perm = rng.permutation(n)
            for i in range(0, n, batch):
                idx = perm[i:i + batch]
                params, vel = step(params, vel, x[idx], y[idx])
            jax.block_until_ready(params)
            times.append(time.perf_counter() - t0)
        return params, times

    def accuracy(apply, params, x, y):
        return float(np.mean(np.asarray(jax.jit(apply)(params, x)).argmax(1) == y))

    key = jax.random.PRNGKey(a.seed)
    work = ["mlp", "cnn", "tiny", "infer"] if a.workload == "all" else [a.workload]
    data = mnist() if any(w != "tiny" for w in work) else None
    for w in work:
        if w in ("mlp", "cnn"):
            xtr, ytr, xte, yte = data
            if w == "mlp":
                params, apply, epochs = mlp_params(key, [784, 256, 128, 10]), mlp_apply, 5
            else:
                params, apply, epochs = lenet_params(key), lenet_apply, 3
            params, times = train(params, apply, xtr, ytr, epochs, 64, 0.05, 0.9, a.seed)
            extra = {"peak_rss_mb": peak_rss_mb()} if w == "cnn" else {}
            result("jax", w, a.threads, epoch_s=times[1], test_acc=accuracy(apply, params, xte, yte), **extra)
        elif w == "tiny":
            x, y = spirals(seed=a.seed)
            apply = lambda p, x: mlp_apply(p, x, jnp.tanh)
            t0 = time.perf_counter()
            params, _ = train(mlp_params(key, [2, 16, 16, 2]), apply, x, y, 200, 10, 0.1, 0.0, a.seed)
            total = time.perf_counter() - t0
            result("jax", w, a.threads, total_s=total, train_acc=accuracy(apply, params, x, y))
        else:
            xtr, ytr, xte, yte = data
            params = mlp_params(key, [784, 256, 128, 10])
            fwd = jax.jit(mlp_apply)
            one = jnp.asarray(xte[:1])
            batch = jnp.asarray(xte[np.random.default_rng(a.seed).integers(0, len(xte), 1024)])
            latency = median_seconds(lambda: fwd(params, one).block_until_ready(), 500, 10000)
            per_batch = median_seconds(lambda: fwd(params, batch).block_until_ready(), 5, 50)
            result("jax", w, a.threads, latency_us=latency * 1e6, samples_per_s=1024 / per_batch)


if __name__ == "__main__":
    main()

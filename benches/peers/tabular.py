"""Tabular data with default flags, side by side with scikit-learn.

Writes scikit-learn's bundled datasets (iris, wine, breast cancer, digits; diabetes and
make_friedman1 with 1,000 rows, seed 0) as CSV files to a temporary directory, then for each
seed runs `backprop train --dataset FILE.csv --seed S` with default flags (only `--task
regression` for the regression sets), and scikit-learn on the very same split: the test rows
backprop held out (its `test_rows`), StandardScaler + MLPClassifier(max_iter=1000) or
MLPRegressor(max_iter=1000), and LogisticRegression / LinearRegression. The two run one after
the other for each seed. It prints one row per dataset and seed, then the acceptance table:
backprop's test accuracy against the MLP's less one test sample (R² against the MLP's less
0.03), and whether any seed collapsed to a single class.

Usage: benches/peers/.venv/bin/python benches/peers/tabular.py [--seeds 5] [--bin PATH]
(scikit-learn installs from PyPI: pip install scikit-learn).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def datasets():
    from sklearn import datasets as ds
    out = []
    for name, load in [("iris", ds.load_iris), ("wine", ds.load_wine),
                       ("breast_cancer", ds.load_breast_cancer), ("digits", ds.load_digits)]:
        d = load()
        out.append((name, "classification", d.data, d.target))
    d = ds.load_diabetes()
    out.append(("diabetes", "regression", d.data, d.target))
    x, y = ds.make_friedman1(n_samples=1000, random_state=0)
    out.append(("friedman1", "regression", x, y))
    return out


def write_csv(path, x, y, task):
    with open(path, "w") as f:
        f.write(",".join(f"f{i}" for i in range(x.shape[1])) + ",target\n")
        for row, t in zip(x, y):
            label = repr(float(t)) if task == "regression" else str(int(t))
            f.write(",".join(repr(float(v)) for v in row) + "," + label + "\n")


def backprop(binary, csv, task, seed, out, extra=()):
    cmd = [binary, "train", "--dataset", csv, "--seed", str(seed), "--out", out, "--json", *extra]
    if task == "regression":
        cmd += ["--task", "regression"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"backprop failed on {csv} seed {seed}:\n{p.stderr}")
    r = json.loads(p.stdout)
    preds = None
    if r.get("confusion_matrix"):
        cm = np.array(r["confusion_matrix"])
        preds = int((cm.sum(0) > 0).sum())  # classes ever predicted on the test split
    score = r["test_accuracy"] if task == "classification" else r["test_scores"]["r2"]
    return score, r["test_rows"], preds, secs, r["epochs"], r["warnings"]


def sklearn_scores(task, x, y, test_rows, seed):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    test = np.zeros(len(y), bool)
    test[test_rows] = True
    xtr, ytr, xte, yte = x[~test], y[~test], x[test], y[test]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "classification":
            mlp = make_pipeline(StandardScaler(), MLPClassifier(max_iter=1000, random_state=seed))
            lin = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        else:
            mlp = make_pipeline(StandardScaler(), MLPRegressor(max_iter=1000, random_state=seed))
            lin = make_pipeline(StandardScaler(), LinearRegression())
        mlp.fit(xtr, ytr)
        secs = time.perf_counter() - t0
        lin.fit(xtr, ytr)
    return mlp.score(xte, yte), lin.score(xte, yte), secs, int(test.sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--bin", default=None, help="the backprop binary (default: target/release, else target/debug)")
    ap.add_argument("--only", default=None, help="comma-separated dataset names")
    ap.add_argument("--extra", default="", help="extra backprop flags (to try settings; the acceptance uses none)")
    a = ap.parse_args()
    binary = a.bin
    if binary is None:
        for p in ("target/release/backprop", "target/debug/backprop"):
            if os.path.exists(os.path.join(ROOT, p)):
                binary = os.path.join(ROOT, p)
                break
    if binary is None:
        sys.exit("build backprop first (cargo build --release)")
    tmp = tempfile.mkdtemp(prefix="backprop-tabular-")
    rows = []
    print(f"# backprop: {binary}; CSV files in {tmp}")
    print("dataset        seed  backprop  sk-MLP  sk-linear  test  classes-predicted  epochs  bp-s  sk-s  warnings")
    for name, task, x, y in datasets():
        if a.only and name not in a.only.split(","):
            continue
        csv = os.path.join(tmp, f"{name}.csv")
        write_csv(csv, x, y, task)
        for seed in range(a.seeds):
            bp, test_rows, predicted, bsecs, epochs, warns = backprop(
                binary, csv, task, seed, os.path.join(tmp, f"run-{name}-{seed}"), a.extra.split())
            mlp, lin, ssecs, n_test = sklearn_scores(task, x, y, test_rows, seed)
            rows.append((name, task, seed, bp, mlp, lin, n_test, predicted))
            print(f"{name:14} {seed:4}  {bp:8.4f}  {mlp:6.4f}  {lin:9.4f}  {n_test:4}  "
                  f"{'' if predicted is None else predicted:>17}  {epochs:6}  {bsecs:4.1f}  {ssecs:4.1f}  {len(warns)}",
                  flush=True)
    print()
    print("| dataset | task | backprop (seeds) | scikit-learn MLP (seeds) | margin | passes | no collapse |")
    print("|---|---|---|---|---|---|---|")
    names = []
    for r in rows:
        if r[0] not in names:
            names.append(r[0])
    for name in names:
        rs = [r for r in rows if r[0] == name]
        task = rs[0][1]
        n_test = rs[0][6]
        margin = 1.0 / n_test if task == "classification" else 0.03
        ok = sum(r[3] >= r[4] - margin - 1e-9 for r in rs)
        collapse = any(r[7] == 1 for r in rs) if task == "classification" else False
        fmt = (lambda v: f"{100 * v:.1f}") if task == "classification" else (lambda v: f"{v:.3f}")
        print(f"| {name} | {'accuracy %' if task == 'classification' else 'R²'} | "
              f"{' '.join(fmt(r[3]) for r in rs)} (mean {fmt(np.mean([r[3] for r in rs]))}) | "
              f"{' '.join(fmt(r[4]) for r in rs)} (mean {fmt(np.mean([r[4] for r in rs]))}) | "
              f"{'1 sample' if task == 'classification' else '0.03'} | {ok}/{len(rs)} | "
              f"{'-' if task == 'regression' else ('no' if collapse else 'yes')} |")


if __name__ == "__main__":
    main()

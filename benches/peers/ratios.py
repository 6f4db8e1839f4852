"""Reads RESULT lines (of one run of run.sh) and prints each implementation's best figure per
workload and backprop's ratio against each peer: time ratios are ours/theirs (below 1 is
faster), throughput ratios are ours/theirs (above 1 is faster), accuracy as a difference."""
import sys
from collections import defaultdict

LOWER = {"epoch_s", "total_s", "latency_us", "peak_rss_mb"}
HIGHER = {"samples_per_s"}

best = defaultdict(dict)  # (workload, metric) -> impl -> value
acc = defaultdict(dict)
for line in open(sys.argv[1]):
    if not line.startswith("RESULT"):
        continue
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    impl, w = f.pop("impl"), f.pop("workload")
    f.pop("threads", None)
    for k, v in f.items():
        v = float(v)
        if k in LOWER or k in HIGHER:
            old = best[(w, k)].get(impl)
            better = old is None or (v < old if k in LOWER else v > old)
            if better:
                best[(w, k)][impl] = v
        else:
            acc[(w, k)].setdefault(impl, []).append(v)

print(f"{'workload':9} {'metric':14} " + " ".join(f"{i:>14}" for i in ["backprop", "peer", "ratio"]))
for (w, k), by in sorted(best.items()):
    ours = by.get("backprop")
    for impl, v in sorted(by.items()):
        if impl == "backprop" or ours is None:
            continue
        print(f"{w:9} {k:14} {ours:14.4g} {impl + ' ' + format(v, '.4g'):>14} {ours / v:14.3f}")
for (w, k), by in sorted(acc.items()):
    ours = by.get("backprop")
    for impl, vs in sorted(by.items()):
        if impl == "backprop" or not ours:
            continue
        mo, mp = sum(ours) / len(ours), sum(vs) / len(vs)
        print(f"{w:9} {k:14} {mo:14.4f} {impl + ' ' + format(mp, '.4f'):>14} {100 * (mo - mp):+13.2f}pt")

#!/usr/bin/python3
# Usage: /usr/bin/python3 scripts/analysis/calibration-ks.py results.h5
# Calibration of every decision statistic on the independent models of a results file:
# false-positive rate at 0.01 / 0.05 with the binomial 95% upper bound, and a Kolmogorov-Smirnov
# test of p_perm's uniformity (un-attacked evaluations), per score kind.
import sys, math, h5py, numpy as np
def ks_p(d, n):  # asymptotic Kolmogorov distribution (Marsaglia-style series), fine for n >= 35
    t = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    return max(0.0, min(1.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * t * t) for k in range(1, 101))))
def upper95(k, n):  # Clopper-Pearson upper bound by bisection
    from math import comb
    lo, hi = k / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        cdf = sum(comb(n, i) * mid ** i * (1 - mid) ** (n - i) for i in range(k + 1))
        lo, hi = (mid, hi) if cdf > 0.025 else (lo, mid)
    return hi
f = h5py.File(sys.argv[1], 'r')
rows = {}
for jid, j in f['jobs'].items():
    if int(j.attrs['independent']) != 1: continue
    for ei, ev in j['evals'].items():
        for kind, g in ev.items():
            if kind == 'model' or not isinstance(g, h5py.Group): continue
            for stat in ('p_perm', 'p_rank', 'p_welch', 'p_mw'):
                rows.setdefault((kind, stat, ei == '0'), []).append(float(g.attrs[stat]))
for (kind, stat, unatt), ps in sorted(rows.items()):
    ps = np.array([p for p in ps if not math.isnan(p)]); n = len(ps)
    if not n: continue
    k1, k5 = int((ps <= 0.01).sum()), int((ps <= 0.05).sum())
    line = f"{kind:6s} {stat:8s} {'un-attacked' if unatt else 'attacked   '} n={n:5d} FPR@0.01 {k1}/{n} (its 95% upper bound {upper95(k1, n):.3f}) FPR@0.05 {k5}/{n} (upper bound {upper95(k5, n):.3f})"
    if stat == 'p_perm':
        s = np.sort(ps); i = np.arange(1, n + 1)
        d = max((i / n - s).max(), (s - (i - 1) / n).max())
        line += f" KS D={d:.4f} p={ks_p(d, n):.3f}"
    print(line)

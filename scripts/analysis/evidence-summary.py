#!/usr/bin/env python3
"""Pool, dataset and combined evidence of a results file, per attack setting and over pools.

Usage: evidence-summary.py RESULTS.h5 [ALPHA ...]   (python3 with h5py: Debian's /usr/bin/python3)

Prints, for the file's decision score (first of score_kinds) and decision p-value, at each alpha
(default 0.01 0.05):
  - per attack setting: owner accuracy (mean, min, max over seeds) and the owner models claimed
    by the pool evidence (p_pool), the dataset evidence (data_p) and the combined verdict
    (p_combined);
  - false positives of un-attacked independent models: pool evidence over all of them, dataset
    and combined evidence over those that never saw the owner's data (owner_data = 0; models
    trained on it are judged on the pool evidence alone), each with the binomial 95% upper bound
    of a calibrated test (the smallest c with P(X >= c) <= 0.05 for X ~ Binomial(n, alpha));
  - per pool (seed): the most independent models one pool had claimed by the combined rule, and
    how many pools the audit refused for the raw kind.
Every number comes from /summary (docs/results-schema.md); nothing is recomputed but counts.
"""
import math
import sys

import h5py
import numpy as np


def binom_bound(n, a):
    """Smallest c with P(X >= c) <= 0.05, X ~ Binomial(n, a): more than c - 1 false positives
    would reject calibration at the 5% level."""
    pmf = [math.comb(n, k) * a ** k * (1 - a) ** (n - k) for k in range(n + 1)]
    for c in range(n + 1):
        if sum(pmf[c:]) <= 0.05:
            return c
    return n + 1


def main():
    path = sys.argv[1]
    alphas = [float(x) for x in sys.argv[2:]] or [0.01, 0.05]
    f = h5py.File(path, "r")
    kinds = [k.decode() if isinstance(k, bytes) else k for k in f.attrs["score_kinds"]]
    decide = f.attrs["decide"]
    decide = decide.decode() if isinstance(decide, bytes) else decide
    s = f["summary"][:]
    s = s[np.array([r.decode() == kinds[0] for r in s["score"]])]
    role = np.array([r.decode() for r in s["role"]])
    attack = np.array([a.decode() + ("" if not p else " " + p.decode()) for a, p in zip(s["attack"], s["params"])])
    print("file %s: score %s, decision p_%s, %d seeds" % (path, kinds[0], decide, len(set(s["seed"]))))
    own = role == "owner"
    for a in alphas:
        print("\nalpha %g: owner models claimed (pool / dataset / combined)" % a)
        print("%-70s %-22s %-8s %-8s %-8s" % ("attack", "owner acc mean [min, max]", "pool", "dataset", "combined"))
        for at in dict.fromkeys(attack[own]):
            sel = own & (attack == at)
            acc = s["test_acc"][sel]
            n = sel.sum()
            print("%-70s %.4f [%.4f, %.4f]  %-8s %-8s %-8s" % (at[:70], acc.mean(), acc.min(), acc.max(),
                  "%d/%d" % ((s["p_pool"][sel] < a).sum(), n), "%d/%d" % ((s["data_p"][sel] < a).sum(), n),
                  "%d/%d" % ((s["p_combined"][sel] < a).sum(), n)))
        ind = (s["independent"] == 1) & (attack == "none")
        null = ind & (s["owner_data"] == 0)
        pool_fp = (s["p_pool"][ind] < a).sum()
        data_fp = (s["data_p"][null] < a).sum()
        comb = np.where(s["owner_data"][ind] == 1, s["p_pool"][ind], s["p_combined"][ind]) < a
        print("false positives, un-attacked independent models:")
        for what, k, n in (("pool evidence (all independent)", pool_fp, ind.sum()),
                           ("dataset evidence (never saw the owner's data)", data_fp, null.sum()),
                           ("combined rule (pool alone for those that saw it)", comb.sum(), ind.sum())):
            b = binom_bound(int(n), a) if n else 0
            print("  %-52s %4d / %-4d  rate %.4f  calibrated if < %d: %s" % (what, k, n, k / n if n else float("nan"), b,
                  "yes" if k < b else "NO"))
        seeds = s["seed"][ind]
        worst = max((comb[seeds == x].sum(), x) for x in set(seeds)) if ind.any() else (0, None)
        per = ind.sum() // max(1, len(set(seeds)))
        print("  most independent models claimed in one pool: %d of %d (seed %s)" % (worst[0], per, worst[1]))
    audit = s["pool_audit_p"][own & (attack == "none")]
    if np.isfinite(audit).any():
        print("\npool audit (raw %s): %d of %d pools unsafe (audit p < 0.05)" % (kinds[0], (audit < 0.05).sum(), np.isfinite(audit).sum()))


if __name__ == "__main__":
    main()

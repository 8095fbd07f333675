#!/usr/bin/env python3
"""Would the robustness table survive my own attack? For every owner of a pmi results file run
with `[store] save_models = 1`, applies each attack setting of the file again outside pmi, with
attack.py's PyTorch code and the same parameters, has `pmi verify` judge it, and prints one
Markdown row per setting: pmi's own claimed count over the seeds, the outside one, the mean
test accuracies of both and the median verdict p-values of both.

Usage: compare.py RESULTS.h5 [--work DIR] [--data DIR] [--pmi ./pmi] [--alpha 0.01]
                  [--holdout 2000] [--thief-size attacker|all]

Settings come from the owners' evaluations (/jobs/<owner>/evals/<i>: attack, type, params; the
parameters a section leaves out are pmi's defaults, which are attack.py's). `none` (the
un-attacked owner) is a row too: the outside model is the export re-saved as TorchScript. Chains
(type a+b) are listed as not applied. An interface setting (label ... flip) is the owner behind
interface.py's wrapper: pmi verify renormalises its answers, which changes round's verdict p (pmi's
round is not renormalised), and its noise (innoise, outnoise) is drawn otherwise than pmi's. pmi's verdict is the file's /summary row of the owner, the
evaluation and the decision score kind (score_kinds[0]): claimed when p_combined (else p_<decide>)
is below --alpha; the outside verdict is the p_combined of pmi verify's record. Accuracies: pmi's
is the evaluation's test_accuracy (split/test of the test file), the outside one attack.py's on
the test file's last --holdout samples. The outside thief trains on the test file's other
samples: --thief-size attacker (default) gives it as many as pmi's attacker had (data.n_attacker
times the setting's fraction), all gives it every one. Models, keys and records go to --work
(default: a folder beside RESULTS named outside/)."""
import argparse
import configparser
import contextlib
import json
import os
import subprocess
import sys

import h5py
import numpy as np

import attack
import common


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read_results(path):
    """(config, owners, settings, summary, decide, kind): the effective config, the owner job ids
    with their seeds, the attack settings of the owners' evaluations in order
    [(eval, attack, type, params)] (the first owner's; every owner has the same plan), the
    /summary rows, the decision p-value's name and score kind."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        common.fail("cannot open %s: %s" % (path, e))
    with f:
        if int(f.attrs.get("schema_version", 0)) != 3:
            common.fail("%s: results schema version %s, this script reads version 3" % (path, f.attrs.get("schema_version")))
        for need in ("config", "summary", "jobs"):
            if need not in f:
                common.fail("%s: no /%s (not a merged pmi results file?)" % (path, need))
        cfg = configparser.ConfigParser(strict=False, interpolation=None, inline_comment_prefixes=(";", "#"))
        cfg.read_string(text(f["config"][()]))
        owners = sorted((text(j), int(g.attrs["seed"])) for j, g in f["jobs"].items() if text(g.attrs["role"]) == "owner")
        if not owners:
            common.fail("%s: no owner job" % path)
        evals = f["jobs"][owners[0][0]]["evals"]
        if "model" not in evals["0"]:
            common.fail("%s: the evaluations hold no models: run the experiment with [store] save_models = 1" % path)
        settings = [(int(i), text(evals[i].attrs["attack"]), text(evals[i].attrs["type"]), text(evals[i].attrs["params"]))
                    for i in sorted(evals, key=int)]
        summary = f["summary"][:]
        decide, kind = text(f.attrs["decide"]), text(f.attrs["score_kinds"][0])
    return cfg, owners, settings, summary, decide, kind


def pmi_verdicts(summary, job, attack_name, params, decide, kind, alpha):
    """(claimed, verdict p, test accuracy) of the summary row of owner job's evaluation with that
    attack."""
    s = summary
    rows = s[(s["job_id"] == job.encode()) & (s["attack"] == attack_name.encode()) &
             (s["params"] == params.encode()) & (s["score"] == kind.encode())]
    if len(rows) != 1:
        common.fail("/summary has %d rows for job %s, attack %s (%s), score %s; expected 1" % (len(rows), job, attack_name, params, kind))
    r = rows[0]
    p = r["p_combined"] if "p_combined" in s.dtype.names else r["p_" + decide]
    return bool(p < alpha), float(p), float(r["test_acc"])


def attack_options(params):
    """attack.py's options for a pmi parameter label "k=v,k=v" (fraction apart), and fraction."""
    p = dict(kv.split("=", 1) for kv in params.split(",") if kv)
    frac = float(p.pop("fraction", 1))
    return [x for k, v in p.items() for x in ("--" + k.replace("_", "-"), v)], frac


def fraction_option(family, frac, n_attacker, n_thief, thief_size):
    """--fraction for attack.py: pmi's fraction of its attacker's n_attacker samples as the same
    number of the thief's n_thief (thief_size attacker, capped at all of them), or as is (all)."""
    if "fraction" not in attack.FAMILIES[family][0]:
        return []
    if thief_size == "attacker":
        frac = min(1.0, frac * n_attacker / n_thief)
    return ["--fraction", repr(frac)]


def run(cmd, log):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write("$ %s\n%s" % (" ".join(cmd), r.stdout))
    return r.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("--work")
    ap.add_argument("--data")
    ap.add_argument("--pmi", default="./pmi")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--holdout", type=int, default=2000)
    ap.add_argument("--thief-size", choices=["attacker", "all"], default="attacker")
    a = ap.parse_args()
    if not 0 < a.alpha < 1:
        common.fail("--alpha %g: expected a number in (0, 1)" % a.alpha)
    if not (os.path.isfile(a.pmi) and os.access(a.pmi, os.X_OK)):
        common.fail("--pmi %s: not an executable (build it with make pmi)" % a.pmi)
    cfg, owners, settings, summary, decide, kind = read_results(a.results)
    data = a.data or cfg.get("data", "path", fallback="") or os.environ.get("FASHION_MNIST") or "/usr/share/datasets/fashion-mnist"
    n_test = len(common.idx(os.path.join(data, "t10k-labels-idx1-ubyte.gz")))
    n_thief = n_test - a.holdout
    if n_thief < 1:
        common.fail("--holdout %d leaves the thief none of the test file's %d samples" % (a.holdout, n_test))
    n_attacker = cfg.getint("data", "n_attacker", fallback=0)
    work = a.work or os.path.join(os.path.dirname(os.path.abspath(a.results)), "outside")
    os.makedirs(work, exist_ok=True)
    log = open(os.path.join(work, "compare.log"), "a")
    rows = {}   # (eval, attack, params) -> [pmi claimed, outside claimed, pmi accs, outside accs, n, note, pmi ps, outside ps]
    for job, seed in owners:
        d = os.path.join(work, job)
        os.makedirs(d, exist_ok=True)
        owner, key = os.path.join(d, "owner.safetensors"), os.path.join(d, "owner.key.h5")
        if run([a.pmi, "export", a.results, "--job", job, "--eval", "0", "-o", owner], log) or \
                run([a.pmi, "key", "export", a.results, "--job", job, "-o", key], log):
            common.fail("pmi export or key export of %s failed; see %s" % (job, log.name))
        for ev, name, typ, params in settings:
            row = rows.setdefault((ev, name, typ, params), [0, 0, [], [], 0, "", [], []])
            claimed, p, acc = pmi_verdicts(summary, job, name, params, decide, kind, a.alpha)
            row[6].append(p)
            row[0] += claimed
            row[2].append(acc)
            row[4] += 1
            if typ not in attack.FAMILIES:
                row[5] = "not applied outside (a chain)"
                continue
            opts, frac = attack_options(params)
            pt, rec, ver = (os.path.join(d, "%d-%s.%s" % (ev, name, ext)) for ext in ("pt", "attack.json", "verify.json"))
            argv = ["--owner", owner, "--key", key, "--family", typ, "--out", pt, "--record", rec, "--data", data,
                    "--holdout", str(a.holdout), "--seed", str(seed)] + opts + \
                fraction_option(typ, frac, n_attacker, n_thief, a.thief_size)
            print("compare: %s eval %d: attack.py %s" % (job, ev, " ".join(argv)), file=sys.stderr)
            with contextlib.redirect_stdout(sys.stderr):
                attack.main(argv)
            rc = run([a.pmi, "verify", "--key", key, "--model", pt, "-o", ver], log)
            if rc not in (0, 1):
                common.fail("pmi verify of %s exited %d; see %s" % (pt, rc, log.name))
            with open(ver) as f:
                v = json.load(f)
            with open(rec) as f:
                r = json.load(f)
            p = v.get("p_combined", v["p"])
            row[1] += p is not None and p < a.alpha
            row[7].append(float("nan") if p is None else p)
            row[3].append(r["test_accuracy"])
    print("Outside pmi (scripts/adversary/attack.py) against pmi's own attacks, %s, %d owner(s), alpha %g, verdict p_combined"
          % (a.results, len(owners), a.alpha))
    print()
    print("| family | setting | pmi claimed | outside claimed | pmi accuracy | outside accuracy | pmi median p | outside median p |")
    print("|---|---|---|---|---|---|---|---|")
    for (ev, name, typ, params), (pc, oc, pa, oa, n, note, pp, op) in rows.items():
        setting = name + (" (%s)" % params if params else "")
        out = note or "%d/%d" % (oc, n)
        oacc, omed = ("%.3f" % np.mean(oa), "%.4g" % np.median(op)) if oa else ("-", "-")
        print("| %s | %s | %d/%d | %s | %.3f | %s | %.4g | %s |" % (typ, setting, pc, n, out, np.mean(pa), oacc, np.median(pp), omed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

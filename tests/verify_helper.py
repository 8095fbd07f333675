"""The PyTorch side of tests/test_verify.sh (run with /usr/bin/python3, Debian's python3-torch).

  load RESULTS JOB EVAL KEY ST  builds the torch.nn equivalent of ST's architecture, loads ST
                                with load_state_dict(strict=True) and prints the largest
                                difference between its per-sample log p_y on the key's samples
                                and the loss scores pmi stored for JOB's evaluation EVAL
  resave ST OUT                 reads ST with this file's parser, loads it into the module, and
                                writes the module's state_dict back with this file's writer
  script ST OUT                 torch.jit.script(module).save(OUT)
  logits ST KEY OUT.csv|OUT.h5  the module's logits on the key's samples, in key order
  random ARCH-ST OUT SEED       a freshly initialised module of ST's architecture (a model that
                                never saw the pool), scripted
  derived ST RESULTS JOB KEY DIR OUT  fine-tunes ST's module for one epoch (SGD, lr 0.01) on
                                the attacker's samples of JOB (split/attacker, read from the
                                Fashion-MNIST IDX files in DIR), scripts and saves it
  scratch ST RESULTS JOB KEY DIR OUT  trains a fresh module of ST's architecture from scratch on
                                the attacker's samples (disjoint from the pool), 20 epochs
  compare RECORD RESULTS JOB EVAL  exits 1 unless every p-value, margin and identified index of
                                the verification record equals what RESULTS stored for JOB's
                                evaluation EVAL
  close RECORD_A RECORD_B TOL   exits 1 unless both records have the same verdict and
                                identified indices and p-values within TOL
  nokey KEY OUT ATTR            a copy of the key without root attribute ATTR
  badref KEY OUT BASE           a copy of the key whose references/BASE lacks its last reference
                                (shape (R-1, N, m) while the attribute references says R)
  v1 KEY OUT                    the key as schema 1 wrote it: key_schema_version 1, no
                                references attributes or group
  dropref RESULTS OUT JOB       a copy of the results file without /jobs/JOB/reference_scores (as
                                a pmi that did not store the references' scores wrote it)
  bad ST KIND OUT               a broken copy of ST: truncated, shape (fc.weight transposed),
                                dtype (fc.bias as F64), extra (an unknown tensor), header (a
                                header length beyond the file)"""
import json
import math
import struct
import sys

import h5py
import numpy as np
import torch

from torch_models import build, read_safetensors, write_safetensors

torch.set_num_threads(1)   # the same sums on any machine


def key_inputs(key):
    with h5py.File(key, "r") as f:
        x = torch.from_numpy(f["samples"][:].astype(np.float32))
        y = torch.from_numpy(f["labels"][:].astype(np.int64)).reshape(-1)
        norm = f.attrs["normalize"]
        mean, sd = f.attrs["mean"], f.attrs["std"]
    n, m, c, h, w = x.shape
    x = x.reshape(n * m, c, h, w).double() / 255.0
    if norm == "standard":
        for ch in range(c):
            x[:, ch] = (x[:, ch] - mean[ch]) / (sd[ch] if sd[ch] > 0 else 1.0)
    elif norm == "none":
        x = x * 255.0
    return x.float(), y


def module(st):
    tensors, meta = read_safetensors(st)
    net = build(meta)
    net.load_state_dict(tensors, strict=True)
    return net.eval(), meta


def cmd_load(results, job, ev, key, st):
    net, _ = module(st)
    x, y = key_inputs(key)
    with torch.no_grad():
        lp = torch.log_softmax(net(x), 1).gather(1, y[:, None])[:, 0].double()
    with h5py.File(results, "r") as f:
        stored = torch.from_numpy(f["jobs/%s/evals/%s/loss/sample_scores" % (job, ev)][:]).reshape(-1)
    print("%.3g" % (lp - stored).abs().max().item())


def attacker_data(results, job, key, datadir):
    import gzip
    with gzip.open(datadir + "/train-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(datadir + "/train-labels-idx1-ubyte.gz") as f:
        lab = np.frombuffer(f.read(), np.uint8, offset=8)
    with h5py.File(results, "r") as f:
        idx = f["jobs/%s/split/attacker" % job][:]
    with h5py.File(key, "r") as f:
        mean, sd = f.attrs["mean"], f.attrs["std"]
    x = (torch.from_numpy(raw[idx].astype(np.float32)).double() / 255.0 - mean[0]) / sd[0]
    return x.float(), torch.from_numpy(lab[idx].astype(np.int64))


def train(net, x, y, epochs, lr, seed):
    torch.manual_seed(int(seed))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for b in range(0, len(x), 64):
            i = perm[b:b + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i]), y[i]).backward()
            opt.step()
    return net.eval()


def cmd_derived(st, results, job, key, datadir, out):
    net, _ = module(st)
    x, y = attacker_data(results, job, key, datadir)
    torch.jit.script(train(net, x, y, 1, 0.01, 1)).save(out)


def cmd_scratch(st, results, job, key, datadir, out):
    _, meta = read_safetensors(st)
    torch.manual_seed(5)
    x, y = attacker_data(results, job, key, datadir)
    torch.jit.script(train(build(meta), x, y, 20, 0.05, 2)).save(out)


def cmd_resave(st, out):
    net, meta = module(st)
    write_safetensors(out, net.state_dict(), meta)


def cmd_script(st, out):
    net, _ = module(st)
    torch.jit.script(net).save(out)


def cmd_logits(st, key, out):
    net, _ = module(st)
    x, _ = key_inputs(key)
    with torch.no_grad():
        z = net(x).double().numpy()
    if out.endswith(".csv"):
        np.savetxt(out, z, delimiter=",", fmt="%.17g")
    else:
        with h5py.File(out, "w") as f:
            f["logits"] = z


def cmd_random(st, out, seed):
    _, meta = read_safetensors(st)
    torch.manual_seed(int(seed))
    torch.jit.script(build(meta)).save(out)


def pvals(d):
    """The pool evidence's numbers of a record's kind (the dataset evidence's p_data is compared
    with the results' data_p attribute where the run had one: tests/test_dataset_evidence.sh)."""
    return {k: v for k, v in d.items() if (k.startswith("p_") and k != "p_data") or k in ("margin", "identified")}


def cmd_compare(record, results, job, ev):
    rec = json.load(open(record))
    bad = 0
    with h5py.File(results, "r") as f:
        for kind, got in rec["scores"].items():
            a = f["jobs/%s/evals/%s/%s" % (job, ev, kind)].attrs
            for name, v in pvals(got).items():
                want = float(a[name])
                same = (v is None and math.isnan(want)) or (v is not None and (v == want or abs(v - want) <= 1e-12 * abs(want)))
                if not same:
                    print("# %s %s: record %r, results %r" % (kind, name, v, want))
                    bad = 1
    sys.exit(bad)


def cmd_close(ra, rb, tol):
    a, b = json.load(open(ra)), json.load(open(rb))
    bad = a["claimed"] != b["claimed"]
    for kind in a["scores"]:
        x, y = a["scores"][kind], b["scores"][kind]
        bad |= x["identified"] != y["identified"]
        for name in x:
            if name.startswith("p_") and x[name] is not None and abs(x[name] - y[name]) > float(tol):
                print("# %s %s: %r vs %r" % (kind, name, x[name], y[name]))
                bad = 1
    sys.exit(1 if bad else 0)


def cmd_nokey(key, out, attr):
    import shutil
    shutil.copy(key, out)
    with h5py.File(out, "a") as f:
        del f.attrs[attr]


def cmd_badref(key, out, base):
    import shutil
    shutil.copy(key, out)
    with h5py.File(out, "a") as f:
        v = f["references/" + base][:]
        del f["references/" + base]
        f["references/" + base] = v[:-1]


def cmd_v1(key, out):
    import shutil
    shutil.copy(key, out)
    with h5py.File(out, "a") as f:
        f.attrs["key_schema_version"] = np.int32(1)
        for a in ("references", "reference_fraction"):
            del f.attrs[a]
        if "references" in f:
            del f["references"]


def cmd_dropref(results, out, job):
    import shutil
    shutil.copy(results, out)
    with h5py.File(out, "a") as f:
        del f["jobs/%s/reference_scores" % job]


def cmd_bad(st, kind, out):
    raw = open(st, "rb").read()
    if kind == "truncated":
        open(out, "wb").write(raw[: len(raw) - 7])
        return
    if kind == "header":
        open(out, "wb").write(struct.pack("<Q", len(raw)) + raw[8:])
        return
    tensors, meta = read_safetensors(st)
    if kind == "shape":
        tensors["fc.weight"] = tensors["fc.weight"].t().contiguous()
    elif kind == "dtype":
        tensors["fc.bias"] = tensors["fc.bias"].double()
    elif kind == "extra":
        tensors["fc.extra"] = torch.zeros(3)
    write_safetensors(out, tensors, meta)


if __name__ == "__main__":
    cmd = {"load": cmd_load, "resave": cmd_resave, "script": cmd_script, "logits": cmd_logits, "random": cmd_random,
           "compare": cmd_compare, "close": cmd_close, "bad": cmd_bad, "nokey": cmd_nokey, "badref": cmd_badref, "v1": cmd_v1, "dropref": cmd_dropref,
           "derived": cmd_derived, "scratch": cmd_scratch}[sys.argv[1]]
    cmd(*sys.argv[2:])

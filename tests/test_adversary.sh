#!/bin/sh
# Tests of pmi's attacks outside pmi (scripts/adversary/attack.py, compare.py; PyTorch through
# /usr/bin/python3, Debian's python3-torch) on a tiny Fashion-MNIST owner (LeNet, 500 samples,
# N = 5, m = 20, D_k three times), each attacked model judged by `pmi verify --model`:
#   - none (the export re-saved as TorchScript) gets the p-values of `pmi verify --weights`;
#   - every family's TorchScript loads in pmi verify, and the record's accuracy on the key's pool
#     is the pool accuracy attack.py printed (to 1e-9);
#   - ftll changes only the last layer (every other tensor bit-identical to the owner's);
#     rtal changes the last layer and the first;
#   - prune (global) leaves exactly round(s n) of the conv/linear weights zero and the others
#     bit-identical, and gets the very p-values pmi's in-process prune stored (the same mask);
#     --global 0 leaves exactly round(s n_l) zero in every layer; prune-ft keeps its mask through
#     training; fineprune removes round(s C) whole channels of the last convolution (weights and
#     bias) and zeroes nothing else;
#   - quantize leaves at most 2^bits distinct values per tensor; noise moves each tensor by
#     sigma times its std (within 25%); distill and extract (an mlp student) share no tensor
#     value pattern with the owner;
#   - the training recipes (smooth, noisyft, advtrain) at their neutral values are ftal bit for
#     bit, and smooth, noisyft, advtrain and flood at real values train otherwise; transfer with
#     --freeze 1 changes only fc and answers at most 0.55 of the 10-class test;
#   - compare.py tables the file's settings, and its outside prune's verdict count and p equal pmi's;
#   - bad input (an unknown family, a parameter the family does not take, a key given as the
#     owner, a missing test file) exits 2 naming the culprit.
# Prints one TAP line per check; run from the repository root (make test).
pmi=${PMI_BIN:-./pmi}
python=${PMI_PYTHON:-/usr/bin/python3}
data=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
adv=scripts/adversary
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
if ! $python -c "import torch, h5py" 2>/dev/null; then
  echo "ok - # SKIP $python cannot import torch and h5py (make deps installs python3-torch, python3-h5py)"; exit 0
fi
export OMP_NUM_THREADS=1

cat >"$tmp/own.ini" <<EOF
[experiment]
name = own
seeds = 1
device = cpu
output = $tmp/res
[data]
dataset = fashion-mnist
n_train = 500
n_attacker = 200
n_test = 300
normalize = standard
[pool]
N = 5
m = 20
repeat = 3
[model]
arch = lenet
[train]
optimizer = adam
lr = 0.003
weight_decay = 0
epochs = 20
batch_size = 32
[pmi]
independent = 0
scores = loss
[store]
save_models = 1
[attack.prune]
type = prune
sparsity = 0.5
[attack.quantize]
type = quantize
bits = 2
EOF
R=$tmp/res/own/results.h5; O=p0-s1-owner
"$pmi" run "$tmp/own.ini" --threads 1 >/dev/null 2>"$tmp/log" &&
  "$pmi" export "$R" --job $O -o "$tmp/owner.safetensors" >/dev/null 2>>"$tmp/log" &&
  "$pmi" key export "$R" --job $O -o "$tmp/owner.key.h5" >/dev/null 2>>"$tmp/log"
check $? "a tiny Fashion-MNIST owner (lenet) trains with pmi's prune and quantize, exports and gives a key"

# attack NAME FAMILY [options]: attack.py, then pmi verify of its TorchScript (exit 0 or 1)
attack() {
  name=$1; fam=$2; shift 2
  timeout 300 $python $adv/attack.py --owner "$tmp/owner.safetensors" --key "$tmp/owner.key.h5" --data "$data" \
    --family "$fam" --out "$tmp/$name.pt" --record "$tmp/$name.json" "$@" >"$tmp/$name.txt" 2>&1 &&
    { timeout 60 "$pmi" verify --key "$tmp/owner.key.h5" --model "$tmp/$name.pt" -o "$tmp/$name.v.json" >"$tmp/$name.vtxt" 2>&1
      [ $? -le 1 ]; }
  ok=$?
  [ $ok = 0 ] || sed 's/^/# /' "$tmp/$name.txt" "$tmp/$name.vtxt" 2>/dev/null
  check $ok "attack.py --family $fam $* -> TorchScript that pmi verify judges ($(sed -n 's/.*\(test accuracy [0-9.]*\).*/\1/p' "$tmp/$name.txt"))"
}
attack none none
attack ftll ftll --epochs 1 --fraction 0.05
attack rtal rtal --epochs 1 --fraction 0.05
attack prune prune --sparsity 0.5
attack prunel prune --sparsity 0.3 --global 0
attack pruneft prune-ft --sparsity 0.5 --epochs 1 --fraction 0.05
attack fineprune fineprune --sparsity 0.5 --epochs 1 --fraction 0.05
attack quant2 quantize --bits 2
attack noise noise --sigma 0.1
attack distill distill --epochs 2 --fraction 0.1
attack extract extract --epochs 2 --fraction 0.1 --arch mlp --width 32
# the training recipes: neutral values are ftal bit for bit, real values train otherwise
ft="--epochs 1 --fraction 0.05"
attack ftal ftal $ft
attack smooth0 smooth --smoothing 0 $ft
attack smooth smooth --smoothing 0.3 $ft
attack noisy0 noisyft --clip 1000000 --sigma 0 $ft
attack noisy noisyft --clip 1 --sigma 4 $ft
attack adv0 advtrain --eps 0 $ft
attack adv advtrain --eps 0.3 --steps 2 $ft
attack flood flood --level 1 $ft
attack transfer transfer --classes 5 --freeze 1 --epochs 3 --fraction 0.2
"$pmi" verify --key "$tmp/owner.key.h5" --weights "$tmp/owner.safetensors" -o "$tmp/weights.v.json" >/dev/null 2>&1
[ $? -le 1 ]; check $? "pmi verify --weights of the owner's export"

# Every property in one Python process (one torch import): TAP lines.
$python - "$tmp" "$R" $O <<'EOF'
import json, math, sys
import h5py, torch
sys.path.insert(0, "tests")
from torch_models import read_safetensors
tmp, results, job = sys.argv[1:]
owner, _ = read_safetensors(tmp + "/owner.safetensors")
def ok(cond, what):
    print("%s - %s" % ("ok" if cond else "not ok", what))
def load(name):
    try:
        return {k: v.detach() for k, v in torch.jit.load("%s/%s.pt" % (tmp, name)).state_dict().items()}
    except Exception as e:
        print("# %s.pt: %s" % (name, e)); return None
def rec(name):
    try:
        return json.load(open("%s/%s" % (tmp, name)))
    except Exception as e:
        print("# %s: %s" % (name, e)); return None
def pvals(r):
    return {(k, n): v for k, s in r["scores"].items() for n, v in s.items() if n.startswith("p_") or n in ("margin", "identified")}
weights = [k for k, v in owner.items() if v.dim() >= 2]
names = ("none ftll rtal prune prunel pruneft fineprune quant2 noise distill extract "
         "ftal smooth0 smooth noisy0 noisy adv0 adv flood transfer").split()
m = {n: load(n) for n in names}
a = {n: rec(n + ".json") for n in names}
v = {n: rec(n + ".v.json") for n in names + ["weights"]}
for n in names:
    good = a[n] is not None and v[n] is not None and abs(a[n]["pool_accuracy"] - v[n]["accuracy"]) <= 1e-9
    ok(good, "%s: pmi verify's accuracy on the pool (%s) is the one attack.py printed (%s)"
       % (n, v[n] and v[n]["accuracy"], a[n] and a[n]["pool_accuracy"]))
ok(v["none"] is not None and v["weights"] is not None and v["none"]["claimed"] == v["weights"]["claimed"]
   and pvals(v["none"]) == pvals(v["weights"]),
   "none: pmi verify --model of the TorchScript gives the p-values of --weights of the safetensors (claimed: %s)"
   % (v["none"] and v["none"]["claimed"]))
s = m["ftll"]
ok(s is not None and all(torch.equal(s[k], owner[k]) for k in owner if not k.startswith("fc."))
   and not torch.equal(s["fc.weight"], owner["fc.weight"]) and not torch.equal(s["fc.bias"], owner["fc.bias"]),
   "ftll: fc.weight and fc.bias changed, every other tensor bit-identical to the owner's")
same = lambda a_, b_: a_ is not None and b_ is not None and all(torch.equal(a_[k], b_[k]) for k in b_)
for n in ("smooth0", "noisy0", "adv0"):
    ok(same(m[n], m["ftal"]), "%s: at its neutral value the recipe is ftal bit for bit" % n)
for n in ("smooth", "noisy", "adv", "flood"):
    ok(m[n] is not None and m["ftal"] is not None and not same(m[n], m["ftal"]), "%s: the recipe trains otherwise than ftal" % n)
s = m["transfer"]
ok(s is not None and all(torch.equal(s[k], owner[k]) for k in owner if not k.startswith("fc."))
   and not torch.equal(s["fc.weight"], owner["fc.weight"]) and a["transfer"] is not None and a["transfer"]["test_accuracy"] <= 0.55,
   "transfer --freeze 1: only fc changed, and the 5-class head answers at most 0.55 of the 10-class test (%s)"
   % (a["transfer"] and a["transfer"]["test_accuracy"]))
s = m["rtal"]
ok(s is not None and not torch.equal(s["fc.weight"], owner["fc.weight"]) and not torch.equal(s["conv1.weight"], owner["conv1.weight"]),
   "rtal: the last layer (fc) differs from the owner's, and so does the first (all layers trained)")
s = m["prune"]
if s is not None:
    n = sum(owner[k].numel() for k in weights)
    z = sum(int((s[k] == 0).sum()) for k in weights)
    same = all(torch.equal(s[k][s[k] != 0], owner[k][s[k] != 0]) for k in weights)
    bias = all(torch.equal(s[k], owner[k]) for k in owner if k not in weights)
    ok(z == round(0.5 * n) and same and bias,
       "prune 0.5 (global): %d of %d conv/linear weights zero (round(0.5 n) = %d), the rest and the biases bit-identical" % (z, n, round(0.5 * n)))
else:
    ok(False, "prune: the model loads")
with h5py.File(results, "r") as f:
    ev = [i for i in f["jobs/%s/evals" % job] if f["jobs/%s/evals/%s" % (job, i)].attrs["attack"] == "prune"][0]
    st = {n: float(f["jobs/%s/evals/%s/loss" % (job, ev)].attrs[n]) for n in ("p_perm", "p_rank", "p_welch", "p_mw", "margin")}
got = v["prune"] and {n: v["prune"]["scores"]["loss"][n] for n in st}
ok(got is not None and all(abs(got[n] - st[n]) <= 1e-12 * abs(st[n]) for n in st),
   "prune: pmi verify of the outside model gives the p-values and margin (to 1e-12) pmi's in-process prune stored (%s)" % got)
s = m["prunel"]
ok(s is not None and all(int((s[k] == 0).sum()) == round(0.3 * owner[k].numel()) for k in weights),
   "prune 0.3 --global 0: each conv/linear weight tensor has exactly round(0.3 n_l) zeros (%s)"
   % (s and [int((s[k] == 0).sum()) for k in weights]))
s = m["pruneft"]
if s is not None:
    z = sum(int((s[k] == 0).sum()) for k in weights)
    moved = sum(int(((s[k] != owner[k]) & (s[k] != 0)).sum()) for k in weights)
    ok(z == round(0.5 * sum(owner[k].numel() for k in weights)) and moved > 0,
       "prune-ft 0.5: the mask survives training (%d zeros) and %d unpruned weights changed" % (z, moved))
else:
    ok(False, "prune-ft: the model loads")
s = m["fineprune"]
if s is not None:
    w2, b2 = s["conv2.weight"], s["conv2.bias"]
    gone = [c for c in range(w2.shape[0]) if int((w2[c] != 0).sum()) == 0 and float(b2[c]) == 0]
    others = sum(int((s[k] == 0).sum()) for k in weights if k != "conv2.weight")
    ok(len(gone) == round(0.5 * w2.shape[0]) and int((w2 == 0).sum()) == len(gone) * w2[0].numel() and others == 0,
       "fineprune 0.5 (Liu et al.): exactly %d of conv2's %d channels removed (weights and bias), no other weight zero (%d)"
       % (len(gone), w2.shape[0], others))
else:
    ok(False, "fineprune: the model loads")
for name, bits in (("quant2", 2),):
    s = m[name]
    counts = s and {k: s[k].unique().numel() for k in owner}
    ok(s is not None and max(counts.values()) <= 2 ** bits and any(not torch.equal(s[k], owner[k]) for k in owner),
       "quantize %d bits: at most %d distinct values in every tensor (largest %s)" % (bits, 2 ** bits, counts and max(counts.values())))
s = m["noise"]
rel = s and {k: ((s[k] - owner[k]).std(unbiased=False) / owner[k].std(unbiased=False)).item() for k in owner if owner[k].numel() >= 100}
ok(s is not None and all(0.075 <= r <= 0.125 for r in rel.values()),
   "noise sigma 0.1: each tensor (of 100+ values) moved by 0.1 of its std within 25%% (%s)"
   % (rel and "%.3f..%.3f" % (min(rel.values()), max(rel.values()))))
s = m["distill"]
ok(s is not None and set(s) == set(owner) and all(not torch.equal(s[k], owner[k]) for k in owner),
   "distill: a fresh lenet student, no tensor equal to the owner's")
s = m["extract"]
ok(s is not None and "fc1.weight" in s and s["fc1.weight"].shape == (32, 784),
   "extract --arch mlp --width 32: the student is an mlp of width 32 (fc1.weight %s)" % (s and list(s["fc1.weight"].shape)))
EOF

# compare.py: the file's settings re-run outside pmi.
timeout 300 $python $adv/compare.py "$R" --pmi "$pmi" --data "$data" --work "$tmp/cmp" >"$tmp/cmp.txt" 2>"$tmp/cmp.err"
ok=$?; [ $ok = 0 ] || sed 's/^/# /' "$tmp/cmp.err" | tail -5
check $ok "compare.py runs on the results file"
rows=$(grep -c '^| \(none\|prune\|quantize\) |' "$tmp/cmp.txt")
[ "$rows" = 3 ]; check $? "compare.py prints one row per setting: none, prune, quantize ($rows rows)"
grep -q '^| prune | prune (sparsity=0.5) | \([01]\)/1 | \1/1 | [0-9.]* | [0-9.]* | \([0-9.e-]*\) | \2 |$' "$tmp/cmp.txt"
check $? "compare.py: the outside prune's claimed count and verdict p equal pmi's ($(grep '^| prune' "$tmp/cmp.txt"))"

# Bad input: exit 2, the culprit named.
bad() {
  words=$1; what=$2; shift 2
  timeout 120 $python $adv/attack.py "$@" >"$tmp/bad.out" 2>&1; rc=$?
  [ $rc = 2 ] && grep -qF -- "$words" "$tmp/bad.out"; ok=$?
  [ $ok = 0 ] || sed 's/^/# /' "$tmp/bad.out"
  check $ok "attack.py with $what -> exit 2, says '$words' (exit $rc)"
}
S=$tmp/owner.safetensors; K=$tmp/owner.key.h5
bad "--family 'bogus': expected one of" "an unknown family" --owner "$S" --key "$K" --out "$tmp/x.pt" --family bogus
bad "--epochs: family prune does not take it" "a parameter the family does not take" --owner "$S" --key "$K" --out "$tmp/x.pt" --family prune --epochs 3
bad "owner.key.h5 as safetensors" "the key as --owner" --owner "$K" --key "$K" --out "$tmp/x.pt" --family none
bad "cannot open key $S" "the owner as --key" --owner "$S" --key "$S" --out "$tmp/x.pt" --family none
bad "t10k-images-idx3-ubyte" "a --data folder without the test file" --owner "$S" --key "$K" --out "$tmp/x.pt" --family none --data "$tmp"
bad "--out $tmp/owner.safetensors is an input" "--out naming the owner" --owner "$S" --key "$K" --out "$S" --family none

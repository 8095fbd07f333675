#!/bin/sh
# Tests of pmi's attacks outside pmi (scripts/adversary/attack.py, interface.py, compare.py; PyTorch through
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
#   - the training recipes (smooth, noisyft, advtrain, overwrite) at their neutral values are ftal
#     bit for bit, and smooth, noisyft, advtrain, flood and overwrite at real values train otherwise; transfer with
#     --freeze 1 changes only fc and answers at most 0.55 of the 10-class test; wshift without noise
#     or training takes 1.5 times the mean filter from each conv weight and moves nothing else;
#   - compare.py tables the file's settings, every one applied outside, and its outside prune's
#     verdict count and p equal pmi's;
#   - shuffle (from compare.py's run) keeps the owner's outputs to 1e-4, moves every tensor but
#     fc.bias (each a permutation of the owner's), and gets the un-attacked p-values and those
#     pmi's own shuffle stored;
#   - the deterministic interface wrappers (label, topk, temperature, rsigmoid, inquant, blur,
#     shift, flip) get the p-values pmi stored for its own evaluation of the same setting (rank-
#     based to 1e-12, Welch's and the margin to 1e-5); round is not compared (pmi verify
#     renormalises a TorchScript model's answers, pmi's round does not); their answers on the
#     key's pool are the definitions computed here: label one-hot, topk the 3 largest
#     renormalised, round multiples of 0.1, temperature, rsigmoid, and the owner's answers on
#     images shifted and mirrored by hand (exactly), blurred and quantised by hand (to 1e-4);
#     innoise and outnoise answer the same on a second call (seeded) and differ from the owner;
#   - attack.py's shuffle keeps the outputs of random mlp, cnn, vgg11 and resnet18 models (BatchNorm,
#     a Flatten after convolutions, ResNet blocks' inner channels) to 1e-4 and moves their tensors;
#   - bad input (an unknown family, a parameter the family does not take, a key given as the
#     owner, a missing test file, topk above the classes) exits 2 naming the culprit.
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
[attack.shuffle]
type = shuffle
[attack.label]
type = label
[attack.topk]
type = topk
k = 3
[attack.round]
type = round
decimals = 1
[attack.temperature]
type = temperature
temperature = 0.5
[attack.rsigmoid]
type = rsigmoid
beta = 0.5
[attack.outnoise]
type = outnoise
sigma = 0.1
[attack.inquant]
type = inquant
bits = 2
[attack.innoise]
type = innoise
sigma = 0.5
[attack.blur]
type = blur
pixels = 1
[attack.shift]
type = shift
pixels = 1
[attack.flip]
type = flip
EOF
R=$tmp/res/own/results.h5; O=p0-s1-owner
"$pmi" run "$tmp/own.ini" --threads 1 >/dev/null 2>"$tmp/log" &&
  "$pmi" export "$R" --job $O -o "$tmp/owner.safetensors" >/dev/null 2>>"$tmp/log" &&
  "$pmi" key export "$R" --job $O -o "$tmp/owner.key.h5" >/dev/null 2>>"$tmp/log"
check $? "a tiny Fashion-MNIST owner (lenet) trains with pmi's prune, quantize, shuffle and interface settings, exports and gives a key"

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
attack wshift0 wshift --lambda 1.5 --sigma 0 --epochs 0
attack ow1 overwrite --samples 10 --repeat 1 $ft
attack ow overwrite --samples 10 --repeat 4 $ft
"$pmi" verify --key "$tmp/owner.key.h5" --weights "$tmp/owner.safetensors" -o "$tmp/weights.v.json" >/dev/null 2>&1
[ $? -le 1 ]; check $? "pmi verify --weights of the owner's export"

# compare.py: the file's settings re-run outside pmi.
timeout 300 $python $adv/compare.py "$R" --pmi "$pmi" --data "$data" --work "$tmp/cmp" >"$tmp/cmp.txt" 2>"$tmp/cmp.err"
ok=$?; [ $ok = 0 ] || sed 's/^/# /' "$tmp/cmp.err" | tail -5
check $ok "compare.py runs on the results file"
settings="none prune quantize shuffle label topk round temperature rsigmoid outnoise inquant innoise blur shift flip"
rows=$(grep -c "^| \($(echo $settings | sed 's/ /\\|/g')\) |" "$tmp/cmp.txt")
[ "$rows" = 15 ] && ! grep -q 'not applied' "$tmp/cmp.txt"
check $? "compare.py prints one row per setting, every one applied outside: $settings ($rows rows)"
grep -q '^| prune | prune (sparsity=0.5) | \([01]\)/1 | \1/1 | [0-9.]* | [0-9.]* | \([0-9.e-]*\) | \2 |$' "$tmp/cmp.txt"
check $? "compare.py: the outside prune's claimed count and verdict p equal pmi's ($(grep '^| prune' "$tmp/cmp.txt"))"

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
         "ftal smooth0 smooth noisy0 noisy adv0 adv flood transfer wshift0 ow1 ow").split()
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
for n in ("smooth0", "noisy0", "adv0", "ow1"):
    ok(same(m[n], m["ftal"]), "%s: at its neutral value the recipe is ftal bit for bit" % n)
for n in ("smooth", "noisy", "adv", "flood", "ow"):
    ok(m[n] is not None and m["ftal"] is not None and not same(m[n], m["ftal"]), "%s: the recipe trains otherwise than ftal" % n)
s = m["transfer"]
ok(s is not None and all(torch.equal(s[k], owner[k]) for k in owner if not k.startswith("fc."))
   and not torch.equal(s["fc.weight"], owner["fc.weight"]) and a["transfer"] is not None and a["transfer"]["test_accuracy"] <= 0.55,
   "transfer --freeze 1: only fc changed, and the 5-class head answers at most 0.55 of the 10-class test (%s)"
   % (a["transfer"] and a["transfer"]["test_accuracy"]))
s = m["wshift0"]
ok(s is not None and all(torch.allclose(s[k], owner[k] - 1.5 * owner[k].mean(0, keepdim=True), atol=1e-6) if owner[k].dim() == 4
                         else torch.equal(s[k], owner[k]) for k in owner),
   "wshift --lambda 1.5 --sigma 0 --epochs 0: each conv weight minus 1.5 times its mean filter, nothing else moved")
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
# shuffle and the interface, from compare.py's work folder: each outside model's pmi verify
# against the p-values pmi stored for its own evaluation of the same setting, and the wrappers'
# answers on the key's pool against the definitions (nn.h) computed here by hand.
sys.path.insert(0, "scripts/adversary")
import common
with h5py.File(results, "r") as f:
    evs = f["jobs/%s/evals" % job]
    stored = {}
    for i in evs:
        at = evs[i].attrs["attack"]
        at = at.decode() if isinstance(at, bytes) else at
        stored[at] = (i, {n: float(evs[i]["loss"].attrs[n]) for n in ("p_perm", "p_rank", "p_mw", "p_welch", "margin")})
cmp = "%s/cmp/%s" % (tmp, job)
cv = {n: rec("cmp/%s/%s-%s.verify.json" % (job, i, n)) for n, (i, _) in stored.items()}
def same_p(got, want):
    """The pool-mean p-values (permutation, rank) to 1e-12 (relative), Welch's p and the margin to
    float rounding of the log-probs, Mann-Whitney's p (ranks of the per-sample scores) to 5%: scores
    equal up to rounding (rsigmoid's clipped answers) may swap ranks between the two code paths
    (seen on an AVX-512 Xeon, where the TorchScript wrapper's rsigmoid rounds differently from
    pmi's own: 0.00965 against 0.00932; bit for bit on an AMD EPYC)."""
    return got is not None and all(abs(got[n] - want[n]) <= 1e-12 * want[n] for n in ("p_perm", "p_rank")) and \
        abs(got["p_mw"] - want["p_mw"]) <= 5e-2 * want["p_mw"] and \
        all(abs(got[n] - want[n]) <= 1e-5 * abs(want[n]) for n in ("p_welch", "margin"))
ps = lambda n: cv[n] and {k: cv[n]["scores"]["loss"][k] for k in stored[n][1]}
key = common.read_key(tmp + "/owner.key.h5")
x = common.normalise(key["samples"], key)
torch.set_grad_enabled(False)
def run(n):
    try:
        with torch.no_grad():
            return torch.jit.load("%s/%s-%s.pt" % (cmp, stored[n][0], n))(x)
    except Exception as e:
        print("# %s: %s" % (n, e)); return None
lp = torch.log_softmax(run("none"), 1)
p = lp.exp()
out = {n: run(n) for n in stored if n not in ("none", "prune", "quantize")}
sh = torch.jit.load("%s/%s-shuffle.pt" % (cmp, stored["shuffle"][0])).state_dict()
moved = sorted(k for k in owner if not torch.equal(sh[k], owner[k]))
perm = all(torch.equal(sh[k].flatten().sort()[0], owner[k].flatten().sort()[0]) for k in owner)
ok(out["shuffle"] is not None and (out["shuffle"] - run("none")).abs().max() <= 1e-4 and moved == sorted(k for k in owner if k != "fc.bias")
   and perm, "shuffle: outputs equal the owner's to 1e-4 (%.2g), every tensor but fc.bias moved (%d), each a permutation of the owner's"
   % ((out["shuffle"] - run("none")).abs().max(), len(moved)))
ok(same_p(ps("shuffle"), ps("none")) and same_p(ps("shuffle"), stored["shuffle"][1]) and cv["shuffle"]["claimed"] == cv["none"]["claimed"],
   "shuffle: pmi verify gives the un-attacked p-values, and those pmi's own shuffle stored (%s)" % ps("shuffle"))
for n in ("label", "topk", "temperature", "rsigmoid", "inquant", "blur", "shift", "flip"):
    ok(same_p(ps(n), stored[n][1]), "%s: pmi verify of the outside wrapper gives the p-values pmi's own %s stored "
       "(permutation and rank to 1e-12, Mann-Whitney to 5%%, Welch and margin to 1e-5: %s)" % (n, n, ps(n)))
floor = math.log(1e-12)
o = out["label"]
ok(o is not None and torch.equal(o.argmax(1), lp.argmax(1)) and bool(((o == 0) | (o == floor)).all()) and bool(((o == 0).sum(1) == 1).all()),
   "label: every answer one-hot (log 1 at the owner's argmax, log 1e-12 elsewhere)")
o = out["topk"]
top = p.topk(3, 1)
want = torch.zeros_like(p).scatter_(1, top[1], top[0] / top[0].sum(1, keepdim=True))
ok(o is not None and bool(((o > floor).sum(1) == 3).all()) and (o.exp() - want).abs().max() <= 1e-6,
   "topk 3: three probabilities kept, the owner's largest, renormalised (to 1e-6)")
o = out["round"]
ok(o is not None and (o.exp() - (p.double() * 10).round().float() / 10).abs().max() <= 1e-6 and
   (o.exp() * 10 - (o.exp() * 10).round()).abs().max() <= 1e-5,
   "round 1: every answer a multiple of 0.1, the owner's probabilities rounded (to 1e-6; not renormalised, as pmi)")
ok(out["temperature"] is not None and (out["temperature"] - torch.log_softmax(lp / 0.5, 1)).abs().max() <= 1e-5,
   "temperature 0.5: log_softmax(log p / T) (to 1e-5)")
pc = p.double().clamp(1e-6, 1 - 1e-6)
r = (p.double() - 0.5 * (torch.sigmoid(0.1 * (pc / (1 - pc)).log()) - 0.5)).clamp(0, 1)
ok(out["rsigmoid"] is not None and (out["rsigmoid"].exp().double() - r / r.sum(1, keepdim=True)).abs().max() <= 1e-4,
   "rsigmoid beta 0.5 gamma 0.1: p - beta (sigmoid(gamma logit p) - 1/2), clipped, renormalised (to 1e-4: the "
   "wrapper's logit is float32's, as pmi's, here in float64)")
owner_lp = lambda xq: torch.log_softmax(torch.jit.load("%s/%s-none.pt" % (cmp, stored["none"][0]))(xq), 1)
xs = torch.full_like(x, 0) + x.flatten(1).min(1)[0].view(-1, 1, 1, 1)
xs[:, :, 1:, 1:] = x[:, :, :-1, :-1]
ok(out["shift"] is not None and torch.equal(out["shift"], owner_lp(xs)), "shift 1: the owner's answers on the images moved by hand, exactly")
ok(out["flip"] is not None and torch.equal(out["flip"], owner_lp(x.flip(3))), "flip: the owner's answers on the mirrored images, exactly")
xd = x.double()
xb = torch.stack([torch.stack([xd[:, 0, max(0, i - 1):i + 2, max(0, j - 1):j + 2].mean((1, 2)) for j in range(28)], 1) for i in range(28)], 1)
ok(out["blur"] is not None and (out["blur"] - owner_lp(xb[:, None].float())).abs().max() <= 1e-4,
   "blur 1: the owner's answers on the 3x3 means inside the image computed by hand (to 1e-4)")
fl = xd.flatten(1)
lo, hi = fl.min(1, keepdim=True)[0], fl.max(1, keepdim=True)[0]
xq = (((fl - lo) / ((hi - lo) / 3)).round() * (hi - lo) / 3 + lo).view_as(x).float()
ok(out["inquant"] is not None and (out["inquant"] - owner_lp(xq)).abs().max() <= 1e-4,
   "inquant 2: the owner's answers on each image quantised by hand to 4 levels between its minimum and maximum (to 1e-4)")
twice = {n: run(n) for n in ("innoise", "outnoise")}
ok(all(out[n] is not None and torch.equal(out[n], twice[n]) and not torch.equal(out[n], lp) for n in twice)
   and (out["outnoise"].exp().sum(1) - 1).abs().max() <= 1e-5,
   "innoise, outnoise: seeded (the same answers on a second call), not the owner's, outnoise's answers distributions")
import attack
for arch, width in (("mlp", 32), ("cnn", 8), ("vgg11", 8), ("resnet18", 8)):
    torch.manual_seed(3)
    net = common.torch_models.build({"arch": arch, "width": str(width), "input_shape": "1,28,28", "classes": "10"}).eval()
    for mod in net.modules():   # BatchNorm statistics and affine parameters away from the identity
        if isinstance(mod, torch.nn.BatchNorm2d):
            for t in (mod.weight, mod.bias, mod.running_mean):
                t.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    xr = torch.randn(16, 1, 28, 28)
    y0 = net(xr)
    attack.shuffle_units(net, 5)
    diff = (net(xr) - y0).abs().max().item()
    moved = sum(not torch.equal(v, before[k]) for k, v in net.state_dict().items())
    ok(diff <= 1e-4 * max(1.0, y0.abs().max().item()) and moved >= 3,
       "shuffle of a random %s (width %d): outputs equal to 1e-4 (%.2g), %d tensors moved" % (arch, width, diff, moved))
EOF

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
bad "--k 11: the owner has 10 classes" "topk above the classes" --owner "$S" --key "$K" --out "$tmp/x.pt" --family topk --k 11
bad "--out $tmp/owner.safetensors is an input" "--out naming the owner" --owner "$S" --key "$K" --out "$S" --family none

#!/bin/sh
# Tests of models out (pmi export), owner keys (pmi key export) and models in (pmi verify), with
# PyTorch on the other side (/usr/bin/python3 with Debian's python3-torch; tests/torch_models.py
# holds the torch.nn equivalents of pmi's architectures and a safetensors reader/writer):
#   - every architecture's exported state loads into its PyTorch module with
#     load_state_dict(strict=True) and gives pmi's per-sample losses within 1e-5;
#   - verifying the owner's own model (safetensors) reproduces the run's stored p-values exactly,
#     as does an attacked model's; PyTorch's re-saved safetensors and its TorchScript give the
#     same verdict and p-values; its logits (CSV, HDF5) the same within 1e-8 (the float32 rounding of
#     the logits, which lira divides by the references' spread: 3e-9 measured);
#   - the owner's run has 3 reference models and the calibrated kinds diff and lira: the key holds
#     the references' scores, and verify reproduces the run's calibrated p-values too, for the
#     owner's model and for the independent one;
#   - independent models (pmi's indep-data model, a PyTorch model never trained) are not claimed;
#   - on Fashion-MNIST, the owner fine-tuned in PyTorch for an epoch on the attacker's samples
#     and scripted is claimed; a model trained from scratch in PyTorch on them is not;
#   - bad inputs (truncated or lying safetensors, wrong shape, dtype or tensor, a file that is not
#     TorchScript, a key of another kind or missing a field, a key whose reference scores have the
#     wrong shape, a schema-1 key listing a calibrated kind, logits of the wrong shape, a key
#     export from a results file without the references' scores, a key listing lnoise) exit 2
#     with a message naming the culprit; a schema-1 key without calibrated kinds still verifies. Exit codes: 0 claimed, 1 not claimed, 2 input error.
# Prints one TAP line per check; run from the repository root (make test).
pmi=${PMI_BIN:-./pmi}
python=${PMI_PYTHON:-/usr/bin/python3}   # another Python with torch and h5py (e.g. on the GPU machine)
py="$python tests/verify_helper.py"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
# expect CODE 'words that stdout or stderr must hold' -- pmi arguments
expect() {
  code=$1; words=$2; shift 3
  timeout 60 "$pmi" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  ok=0
  [ "$rc" = "$code" ] || ok=1
  [ -z "$words" ] || cat "$tmp/out" "$tmp/err" | grep -qF -- "$words" || ok=1
  [ "$ok" = 0 ] || { echo "# pmi $*: exit $rc, stderr:"; sed 's/^/#   /' "$tmp/err"; }
  check $ok "pmi $* -> exit $code${words:+, says '$words'}"
}
if ! $python -c "import torch, h5py" 2>/dev/null; then
  echo "not ok - $python cannot import torch and h5py (make deps installs python3-torch, python3-h5py)"; exit 1
fi

# A small owner that memorises D_k (claimed), an independent model, 3 reference models for the
# calibrated kinds, a pruning attack.
cat >"$tmp/own.ini" <<EOF
[experiment]
name = own
seeds = 1
device = cpu
output = $tmp/res
[data]
dataset = synthetic
n_train = 100
n_attacker = 50
n_test = 50
[pool]
N = 5
m = 20
[model]
arch = mlp
width = 64
[train]
epochs = 30
[pmi]
independent = 1
permutations = 999
references = 3
scores = loss,conf,diff,lira
[store]
save_models = 1
keys = 1
[attack.prune]
type = prune
sparsity = 0.3
EOF
# Every architecture, one epoch (BatchNorm buffers included).
cat >"$tmp/arch.ini" <<EOF
[experiment]
name = arch
seeds = 1
device = cpu
output = $tmp/res
[data]
dataset = synthetic
n_train = 40
n_attacker = 10
n_test = 20
[pool]
N = 2
m = 5
[model]
arch = mlp,lenet,cnn,vgg11,resnet18
width = 4
[train]
epochs = 1
[pmi]
independent = 0
permutations = 99
[store]
save_models = 1
EOF
# One libtorch thread, as pmi verify uses: the same float operations, so the same p-values.
"$pmi" run "$tmp/own.ini" --threads 1 >/dev/null 2>"$tmp/log" && "$pmi" run "$tmp/arch.ini" --threads 1 >/dev/null 2>>"$tmp/log"
check $? "the test experiments run"
R=$tmp/res/own/results.h5; A=$tmp/res/arch/results.h5; O=p0-s1-owner

# ---- models out -----------------------------------------------------------------------
expect 0 "" -- export "$R" --job $O -o "$tmp/owner.safetensors"
expect 0 "keep it private" -- key export "$R" --job $O -o "$tmp/owner.key.h5"
"$pmi" verify --key "$tmp/res/own/keys/$O.key.h5" --weights "$tmp/owner.safetensors" -o "$tmp/r-runkey.json" >/dev/null 2>&1 &&
  "$pmi" verify --key "$tmp/owner.key.h5" --weights "$tmp/owner.safetensors" -o "$tmp/r-exportkey.json" >/dev/null 2>&1 &&
  $py close "$tmp/r-runkey.json" "$tmp/r-exportkey.json" 0
check $? "[store] keys = 1: pmi run wrote keys/$O.key.h5, which verifies as pmi key export's key does"
for p in 0 1 2 3 4; do
  arch=$(sed -n "$((p + 1))p" <<EOF
mlp
lenet
cnn
vgg11
resnet18
EOF
)
  "$pmi" export "$A" --job p$p-s1-owner -o "$tmp/a$p.safetensors" >/dev/null 2>&1 &&
    "$pmi" key export "$A" --job p$p-s1-owner -o "$tmp/a$p.key.h5" >/dev/null 2>&1 &&
    d=$($py load "$A" p$p-s1-owner 0 "$tmp/a$p.key.h5" "$tmp/a$p.safetensors" 2>"$tmp/pyerr")
  ok=$?; [ $ok = 0 ] && ok=$($python -c "print(0 if float('$d') <= 1e-5 else 1)"); [ $ok = 0 ] || sed 's/^/# /' "$tmp/pyerr"
  check $ok "$arch: PyTorch load_state_dict(strict=True) of the export; log p_y on the pool within 1e-5 of pmi's (max diff $d)"
done
expect 0 "" -- export "$R" --job $O --eval 1 -o "$tmp/pruned.safetensors"
d=$($py load "$R" $O 1 "$tmp/owner.key.h5" "$tmp/pruned.safetensors"); ok=$?
[ $ok = 0 ] && ok=$($python -c "print(0 if float('$d') <= 1e-5 else 1)")
check $ok "the attacked (pruned) model of evaluation 1 exports and loads in PyTorch (max diff $d)"

# ---- pmi verify: the owner's model in every form ----------------------------------------
expect 0 "CLAIMED" -- verify --key "$tmp/owner.key.h5" --weights "$tmp/owner.safetensors" -o "$tmp/r-weights.json"
$py compare "$tmp/r-weights.json" "$R" $O 0 && grep -q '"diff"' "$tmp/r-weights.json" && grep -q '"lira"' "$tmp/r-weights.json" &&
  grep -Eq '"references":[[:space:]]*3([^0-9]|$)' "$tmp/r-weights.json"
check $? "verify of the owner's safetensors reproduces every stored p-value, margin and index of the run, diff and lira (3 references in the key) included"
sha=$(sha256sum "$tmp/owner.safetensors" | cut -d' ' -f1)
grep -Eq "\"sha256\":[[:space:]]*\"$sha\"" "$tmp/r-weights.json"
check $? "the record holds the suspect file's SHA-256 (sha256sum agrees)"
"$pmi" verify --key "$tmp/owner.key.h5" --weights "$tmp/pruned.safetensors" -o "$tmp/r-pruned.json" >/dev/null
$py compare "$tmp/r-pruned.json" "$R" $O 1
check $? "verify of the stored pruned model reproduces evaluation 1's stored p-values"
$py resave "$tmp/owner.safetensors" "$tmp/torch.safetensors"
expect 0 "CLAIMED" -- verify --key "$tmp/owner.key.h5" --weights "$tmp/torch.safetensors" -o "$tmp/r-torch.json"
$py close "$tmp/r-weights.json" "$tmp/r-torch.json" 0
check $? "pmi -> safetensors -> PyTorch -> safetensors -> pmi verify: same verdict and p-values"
$py script "$tmp/owner.safetensors" "$tmp/owner.pt"
expect 0 "CLAIMED" -- verify --key "$tmp/owner.key.h5" --model "$tmp/owner.pt" -o "$tmp/r-script.json"
$py close "$tmp/r-weights.json" "$tmp/r-script.json" 0
check $? "torch.jit.script of the owner -> pmi verify --model: same verdict and p-values"
for ext in csv h5; do
  $py logits "$tmp/owner.safetensors" "$tmp/owner.key.h5" "$tmp/logits.$ext"
  expect 0 "CLAIMED" -- verify --key "$tmp/owner.key.h5" --logits "$tmp/logits.$ext" -o "$tmp/r-$ext.json"
  $py close "$tmp/r-weights.json" "$tmp/r-$ext.json" 1e-8
  check $? "PyTorch's logits as $ext -> pmi verify --logits: same verdict, p-values within 1e-8"
done
expect 0 "input standard" -- verify --key "$tmp/owner.key.h5" --model "$tmp/owner.pt" --input standard -o "$tmp/r-std.json"
$py close "$tmp/r-script.json" "$tmp/r-std.json" 0
check $? "--input standard is the key's own normalisation here: same p-values"
"$pmi" verify --key "$tmp/owner.key.h5" --model "$tmp/owner.pt" --input raw -o "$tmp/r-raw.json" >/dev/null 2>&1
grep -Eq '"input":[[:space:]]*"raw"' "$tmp/r-raw.json" && ! $py close "$tmp/r-script.json" "$tmp/r-raw.json" 0 >/dev/null
check $? "--input raw feeds raw pixels: the record says so and the p-values change"

# ---- independent models are not claimed ------------------------------------------------
"$pmi" export "$R" --job p0-s1-indep-data-r0 -o "$tmp/indep.safetensors" >/dev/null
expect 1 "" -- verify --key "$tmp/owner.key.h5" --weights "$tmp/indep.safetensors" -o "$tmp/r-indep.json"
grep -q "NOT CLAIMED" "$tmp/out"; check $? "pmi's indep-data model (disjoint data) is NOT CLAIMED"
$py compare "$tmp/r-indep.json" "$R" p0-s1-indep-data-r0 0
check $? "verify of the indep-data model reproduces the p-values the run stored for it, calibrated kinds included"
$py random "$tmp/owner.safetensors" "$tmp/random.pt" 7
expect 1 "" -- verify --key "$tmp/owner.key.h5" --model "$tmp/random.pt"
grep -q "NOT CLAIMED" "$tmp/out"; check $? "a PyTorch model that never saw the pool is NOT CLAIMED"

# ---- Fashion-MNIST: a model derived in PyTorch is claimed, one trained from scratch is not ----
cat >"$tmp/fm.ini" <<EOF
[experiment]
name = fm
seeds = 1
device = cpu
output = $tmp/res
[data]
dataset = fashion-mnist
n_train = 500
n_attacker = 500
n_test = 200
[pool]
N = 10
m = 40
[model]
arch = mlp
width = 128
[train]
epochs = 30
[pmi]
independent = 0
scores = loss
[store]
save_models = 1
EOF
F=$tmp/res/fm/results.h5; D=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
"$pmi" run "$tmp/fm.ini" --threads 1 >/dev/null 2>>"$tmp/log" &&
  "$pmi" export "$F" --job $O -o "$tmp/fm.safetensors" >/dev/null && "$pmi" key export "$F" --job $O -o "$tmp/fm.key.h5" >/dev/null 2>&1
check $? "a Fashion-MNIST owner (mlp, N=10, m=40) trains, exports and gives a key"
$py derived "$tmp/fm.safetensors" "$F" $O "$tmp/fm.key.h5" "$D" "$tmp/derived.pt"
expect 0 "CLAIMED" -- verify --key "$tmp/fm.key.h5" --model "$tmp/derived.pt"
$py scratch "$tmp/fm.safetensors" "$F" $O "$tmp/fm.key.h5" "$D" "$tmp/scratch.pt"
expect 1 "NOT CLAIMED" -- verify --key "$tmp/fm.key.h5" --model "$tmp/scratch.pt"
# TorchScript saved by PyTorch 2.11 (tests/data/README.md: an untrained MLP, scripted and traced)
# loads in this libtorch (Debian's 1.13 in CI) and gets a verdict: not claimed
for f in tests/data/mlp-scripted-torch2.11.pt tests/data/mlp-traced-torch2.11.pt; do
  expect 1 "NOT CLAIMED" -- verify --key "$tmp/fm.key.h5" --model "$f"
done

# ---- bad input: exit 2, the culprit named ------------------------------------------------
K=$tmp/owner.key.h5
for kind in truncated header shape dtype extra; do $py bad "$tmp/owner.safetensors" $kind "$tmp/bad-$kind.safetensors"; done
expect 2 "not a valid safetensors file" -- verify --key "$K" --weights "$tmp/bad-truncated.safetensors"
expect 2 "header length" -- verify --key "$K" --weights "$tmp/bad-header.safetensors"
expect 2 "tensor 'fc.weight' has shape [64, 10], the architecture expects [10, 64]" -- verify --key "$K" --weights "$tmp/bad-shape.safetensors"
expect 2 "tensor 'fc.bias' is F64, the architecture expects F32" -- verify --key "$K" --weights "$tmp/bad-dtype.safetensors"
expect 2 "tensor 'fc.extra' is not part of architecture mlp" -- verify --key "$K" --weights "$tmp/bad-extra.safetensors"
expect 2 "tensor 'conv1.weight' is missing" -- verify --key "$K" --weights "$tmp/owner.safetensors" --arch cnn
head -c 3000 /dev/urandom >"$tmp/junk.pt"
expect 2 "not a TorchScript archive" -- verify --key "$K" --model "$tmp/junk.pt"
expect 2 "not a pmi owner key" -- verify --key "$R" --weights "$tmp/owner.safetensors"
$py nokey "$K" "$tmp/nok.h5" secret_k
expect 2 "key field secret_k is missing" -- verify --key "$tmp/nok.h5" --weights "$tmp/owner.safetensors"
$py nokey "$K" "$tmp/nov.h5" key_schema_version
expect 2 "key schema version" -- verify --key "$tmp/nov.h5" --weights "$tmp/owner.safetensors"
$py badref "$K" "$tmp/badref.h5" logit
expect 2 "key dataset references/logit (for score kind lira) is missing or not (references, N, m) = (3, 5, 20)" -- verify --key "$tmp/badref.h5" --weights "$tmp/owner.safetensors"
$py v1 "$K" "$tmp/v1cal.h5"
expect 2 "key schema version 1 holds no reference scores, but its score_kinds list the calibrated kind diff" -- verify --key "$tmp/v1cal.h5" --weights "$tmp/owner.safetensors"
$py v1 "$tmp/a0.key.h5" "$tmp/v1.h5"
"$pmi" verify --key "$tmp/a0.key.h5" --weights "$tmp/a0.safetensors" -o "$tmp/r-v2.json" >/dev/null 2>&1
[ $? -le 1 ] && "$pmi" verify --key "$tmp/v1.h5" --weights "$tmp/a0.safetensors" -o "$tmp/r-v1.json" >/dev/null 2>&1
[ $? -le 1 ] && $py close "$tmp/r-v2.json" "$tmp/r-v1.json" 0
check $? "a schema-1 key (no references, raw kinds) still verifies, with the p-values of its schema-2 twin"
$py dropref "$R" "$tmp/noref.h5" p0-s1-reference-r1
expect 2 "no dataset /jobs/p0-s1-reference-r1/reference_scores/loss" -- key export "$tmp/noref.h5" --job $O -o "$tmp/knoref.h5"
grep -qF "run the experiment again" "$tmp/err"; check $? "key export without the references' scores says how to get them"
cut -d, -f1-9 "$tmp/logits.csv" >"$tmp/short.csv"
expect 2 "short.csv:1: 9 values, expected 10" -- verify --key "$K" --logits "$tmp/short.csv"
head -n 99 "$tmp/logits.csv" >"$tmp/rows.csv"
expect 2 "99 rows, expected the key's N*m = 100" -- verify --key "$K" --logits "$tmp/rows.csv"
expect 2 "give exactly one suspect" -- verify --key "$K" --weights "$tmp/owner.safetensors" --model "$tmp/owner.pt"
expect 2 "--input 'bogus'" -- verify --key "$K" --model "$tmp/owner.pt" --input bogus
expect 2 "cannot open" -- verify --key "$tmp/none.h5" --model "$tmp/owner.pt"
expect 4 "cannot create" -- verify --key "$K" --model "$tmp/owner.pt" -o "$tmp/no-such-dir/r.json"
expect 2 "no job 'p9-s1-owner'" -- key export "$R" --job p9-s1-owner -o "$tmp/k9.h5"
expect 2 "no evaluation /jobs/p0-s1-owner/evals/9" -- export "$R" --job $O --eval 9 -o "$tmp/x.safetensors"
sed 's/save_models = 1/save_models = 0/; s/name = own/name = nosave/' "$tmp/own.ini" >"$tmp/nosave.ini"
"$pmi" run "$tmp/nosave.ini" -s train.epochs=1 -s pmi.independent=0 --threads 1 >/dev/null 2>&1
expect 2 "save_models = 1" -- export "$tmp/res/nosave/results.h5" --job $O -o "$tmp/x.safetensors"
# The label-only kind lnoise through the runner (pool and dataset evidence): its pool scores
# are multiples of 1/K in [0, 1], its dataset gap a multiple of 1/(K n), both with p-values; a key that lists it is refused by verify (the key
# does not record the query noise), naming the kind.
sed 's/name = own/name = lnoise/; s/^references = 3/references = 0\nholdout = 10\nlnoise_queries = 4/; s/^n_train = 100/n_train = 150/; s/^scores = .*/scores = loss,lnoise/' \
  "$tmp/own.ini" >"$tmp/lnoise.ini"
"$pmi" run "$tmp/lnoise.ini" -s train.epochs=3 -s pmi.independent=0 --threads 1 >/dev/null 2>&1 &&
$python - "$tmp/res/lnoise/results.h5" "$O" <<'PY'
import sys, h5py, numpy as np
g = h5py.File(sys.argv[1], "r")["jobs/" + sys.argv[2] + "/evals/0/lnoise"]
s, n = g["sample_scores"][:].ravel(), g.attrs["data_n"]
assert np.all((s >= 0) & (s <= 1)) and np.all(s * 4 == np.round(s * 4)), s
gap = g.attrs["data_gap"] * 4 * n   # a difference of two means of n multiples of 1/4
assert np.isfinite(g.attrs["data_p"]) and np.isfinite(g.attrs["p_perm"]) and abs(gap - round(gap)) < 1e-9
PY
check $? "pmi run with pmi.scores = loss,lnoise: lnoise scores in multiples of 1/4, pool and dataset evidence tested"
"$pmi" key export "$tmp/res/lnoise/results.h5" --job $O -o "$tmp/lnoise.key.h5" >/dev/null 2>&1
expect 2 "the key's score kind lnoise needs noisy queries" -- verify --key "$tmp/lnoise.key.h5" --weights "$tmp/owner.safetensors"

#!/bin/sh
# Dataset evidence (pmi.holdout, DESIGN.md 3c) end to end on a tiny CPU run where the pool alone
# fails after distillation: Fashion-MNIST, LeNet, 1500 owner samples, N = 10 pools of m = 20, a
# held-out set of 300 (480 samples per side), a student distilled for 30 epochs (T = 4) on 1500
# attacker samples, seed 2. Checks, read back with h5py:
#   - after distillation the owner's pool evidence is not significant (p_perm > 0.05) while its
#     dataset evidence is (data_p < 0.01), so the combined verdict claims it (p_combined < 0.01 and
#     = min(1, 2 min(p_perm, data_p)));
#   - the indep-data model, which never saw S or H, is not claimed by either evidence (data_p >
#     0.05 before and after the attack), while models trained on the owner's data (clean,
#     indep-seed) are claimed by the dataset evidence and carry owner_data = 1;
#   - the split stores H, disjoint from the owner's training set and the pool;
#   - a holdout whose side does not fit data.n_train is refused before anything runs (exit 2);
#   - the owner key carries the dataset evidence: `pmi verify` of the distilled student (exported
#     as safetensors) claims it with the run's own data_p and p_combined, and does not claim the
#     indep-data model (exit 1);
#   - REPORT.md has every score kind's verdict (loss and logit): the owner claimed by both un-attacked.
# One TAP line per check; run from the repository root (make test). About 40 s on 2 cores.
pmi=${PMI_BIN:-./pmi}
python=${PMI_PYTHON:-/usr/bin/python3}
tmp=${KEEP_TMP:-$(mktemp -d)}; [ -n "${KEEP_TMP:-}" ] || trap 'rm -rf "$tmp"' EXIT
check() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
cat >"$tmp/de.ini" <<INI
include = $PWD/configs/fashion-mnist.ini
include = $PWD/configs/lenet-adam.ini
[experiment]
name = de
seed = 2
seeds = 1
output = $tmp/out
[data]
n_train = 1500
n_attacker = 1500
n_test = 500
[train]
epochs = 20
[pool]
N = 10
m = 20
[pmi]
independent = 1
holdout = 300
scores = loss, logit
permutations = 999
data_permutations = 999
[attack.distill]
type = distill
temperature = 4
alpha = 0.9
epochs = 30
lr = 0.01
optimizer = sgd
momentum = 0.9
[store]
save_models = 1
INI
timeout 600 "$pmi" run "$tmp/de.ini" --jobs 2 >"$tmp/log" 2>&1
check $? "pmi run of the dataset-evidence config"
$python - "$tmp/out/de/results.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
rows = {(r['role'].decode(), r['attack'].decode()): r for r in f['summary'][:] if r['score'] == b'loss'}
def ok(c, what): print(('ok - ' if c else 'not ok - ') + what)
o = rows[('owner', 'distill')]
ok(o['p_perm'] > 0.05 and o['data_p'] < 0.01,
   'owner after distillation: pool p_perm %.3g > 0.05, dataset data_p %.3g < 0.01' % (o['p_perm'], o['data_p']))
ok(abs(o['p_combined'] - min(1, 2 * min(o['p_perm'], o['data_p']))) < 1e-15 and o['p_combined'] < 0.01,
   'combined verdict = Bonferroni of both and claims the distilled owner (%.3g)' % o['p_combined'])
ind = [rows[('indep-data', a)] for a in ('none', 'distill')]
ok(all(r['data_p'] > 0.05 and r['owner_data'] == 0 for r in ind),
   'indep-data (never saw S or H) not claimed by the dataset evidence: %s' % [round(float(r['data_p']), 3) for r in ind])
own = [rows[(role, 'none')] for role in ('clean', 'indep-seed')]
ok(all(r['data_p'] < 0.01 and r['owner_data'] == 1 for r in own),
   'models trained on the owner data (clean, indep-seed) claimed by the dataset evidence, owner_data = 1')
sp = f['jobs/p0-s2-owner/split']
h, tr, pool = sp['holdout'][:], sp['train'][:], sp['pool'][:].ravel()
ok(len(h) == 300 and not (set(h) & set(tr)) and not (set(h) & set(pool)), 'split/holdout: 300 samples, disjoint from train and pool')
g = f['jobs/p0-s2-owner']
ok(g.attrs['holdout'] == 300 and g.attrs['data_side'] == 300 + 9 * 20, 'job attributes holdout = 300, data_side = 480')
PY
sed 's/holdout = 300/holdout = 1400/' "$tmp/de.ini" >"$tmp/big.ini"
timeout 60 "$pmi" plan "$tmp/big.ini" >"$tmp/out2" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q "pmi.holdout = 1400" "$tmp/out2"; check $? "pmi.holdout too large for data.n_train -> exit 2 naming the key"
r=$tmp/out/de/results.h5
"$pmi" key export "$r" --job p0-s2-owner -o "$tmp/owner.key.h5" >/dev/null 2>"$tmp/key.err"
check $? "pmi key export of an owner with dataset evidence"
grep -q "dataset evidence: 480 + 480 samples" "$tmp/key.err"; check $? "key export states the dataset evidence's size"
"$pmi" export "$r" --job p0-s2-owner --eval 1 -o "$tmp/student.safetensors" >/dev/null 2>&1 &&
  "$pmi" export "$r" --job p0-s2-indep-data-r0 --eval 0 -o "$tmp/indep.safetensors" >/dev/null 2>&1
check $? "pmi export of the distilled student and the indep-data model"
"$pmi" verify --key "$tmp/owner.key.h5" --weights "$tmp/student.safetensors" -o "$tmp/student.json" >"$tmp/v1" 2>&1
check $? "pmi verify claims the distilled student (exit 0)"
"$pmi" verify --key "$tmp/owner.key.h5" --weights "$tmp/indep.safetensors" -o "$tmp/indep.json" >"$tmp/v2" 2>&1
[ $? = 1 ]; check $? "pmi verify does not claim the indep-data model (exit 1)"
$python - "$r" "$tmp/student.json" <<'PY'
import sys, json, h5py
rows = {(r['role'].decode(), r['attack'].decode()): r for r in h5py.File(sys.argv[1], 'r')['summary'][:] if r['score'] == b'loss'}
o = rows[('owner', 'distill')]
rec = json.load(open(sys.argv[2]))
d = rec['scores']['loss']
same = d['p_data'] == float(o['data_p']) and rec['p_combined'] == float(o['p_combined']) and abs(d['z_data'] - float(o['data_z'])) < 1e-9
print(('ok - ' if same else 'not ok - ') + 'verify reproduces the run: p_data %s = %s, p_combined %s = %s' % (d['p_data'], o['data_p'], rec['p_combined'], o['p_combined']))
PY
"$pmi" report --markdown-report "$tmp/REPORT.md" "$r" >/dev/null 2>&1 &&
  grep -q "### de: every score kind's verdict" "$tmp/REPORT.md" && grep -q "^| - | none | 1/1 | 1/1 |$" "$tmp/REPORT.md"
check $? "REPORT.md: every score kind's verdict, the un-attacked owner claimed on loss and logit"

#!/bin/sh
# Test of `make install`: a staged install (DESTDIR, PREFIX=/usr) holds the binary, the plot
# templates and the docs, and the installed pmi, run from another folder, runs a tiny synthetic
# experiment and draws its figures from the installed templates (found through
# ../share/pmi-lab/plots beside the binary, since /usr/share/pmi-lab is not where the stage
# is). Run from the repository root by scripts/run-tests.sh (make test); prints TAP lines.
root=$(pwd -P)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
stage="$tmp/stage"
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$root" $PMI_MAKEARGS "$@"; }
check() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }

mk install DESTDIR="$stage" PREFIX=/usr >"$tmp/install.log" 2>&1
rc=$?; check $rc "make install DESTDIR=... PREFIX=/usr"
[ $rc = 0 ] || cat "$tmp/install.log"
[ -x "$stage/usr/bin/pmi" ]; check $? "installs usr/bin/pmi"
n=$(ls "$stage/usr/share/pmi-lab/plots/"*.gp 2>/dev/null | wc -l)
[ "$n" -gt 0 ] && [ "$n" = "$(ls "$root"/plots/*.gp | wc -l)" ]; check $? "installs the $n plot templates to usr/share/pmi-lab/plots"
[ -f "$stage/usr/share/doc/pmi-lab/README.md" ] && [ -f "$stage/usr/share/doc/pmi-lab/results-schema.md" ]
check $? "installs the docs to usr/share/doc/pmi-lab"
comp="$stage/usr/share/bash-completion/completions/pmi"
bash -n "$comp" 2>/dev/null && grep -q -- '--shard' "$comp"; check $? "installs the bash completion to usr/share/bash-completion/completions/pmi"

# The installed binary on its own: another folder, no ./plots, no PMI_PLOTS_DIR.
work="$tmp/elsewhere"; mkdir "$work"; cd "$work" || exit 1
unset PMI_PLOTS_DIR
cat > tiny.ini <<'INI'
[experiment]
name = tiny
seeds = 1
device = cpu
output = results
[data]
dataset = synthetic
n_train = 200
n_attacker = 100
n_test = 100
normalize = unit
[pool]
N = 5
m = 10
[model]
arch = mlp
width = 32
[train]
optimizer = adam
lr = 0.002
epochs = 2
batch_size = 32
[pmi]
permutations = 99
independent = 1
INI
"$stage/usr/bin/pmi" run tiny.ini >run.log 2>&1 && [ -f results/tiny/results.h5 ]
rc=$?; check $rc "the installed pmi runs a tiny experiment"
[ $rc = 0 ] || cat run.log
"$stage/usr/bin/pmi" plot results/tiny/results.h5 -o figs >plot.log 2>&1
rc=$?
[ $rc = 0 ] && [ -s figs/scores.png ]; check $? "the installed pmi plot draws figs/scores.png from the installed templates"
[ $rc = 0 ] || cat plot.log

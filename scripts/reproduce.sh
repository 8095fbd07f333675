#!/bin/sh
# Runs every experiment of experiments/ at a scale (configs/scale-<scale>.ini overlays each
# experiment, then configs/<experiment>-<scale>.ini where one exists: a grid that differs by
# scale, as ablation-power's; the run stores its tables in the results file, /report), then
# prints each experiment's tables with `pmi report` and renders its figures with `pmi plot`
# (PNG under plots/<scale>/<experiment>/, SVG in its svg/ folder); last,
# results/<scale>/REPORT.md: a verdict per claim of the paper, the tables and the figures
# (`pmi report --markdown-report`). Used by `make reproduce [SCALE=small|paper]`. Each experiment's
# seconds (run; report and figures) go to stderr as "reproduce: <experiment> run ..." lines
# (scripts/bench/bench-gpu.sh collects them). EXPERIMENTS="fingerprint robustness" runs only those (a
# reproduction split over machines or time limits; the REPORT.md then covers only them). PMI: the
# binary (default ./pmi; tests/test_reproduce.sh puts a stand-in there).
#
# On a machine of 8 cores or more an experiment's tables and figures are made while the next
# experiment runs (on one H100 machine they took 1-5 s an experiment, docs/performance.md); its
# tables are printed, in the experiments' order, once that run ends. With fewer cores they are
# made before the next run starts, as their three processes would take the cores from its
# training (the small scale on the 2-core CI VM took 116 s with them beside in one fresh-clone
# run, 104 and 112 s with them before the next run in the next two: no gain seen there).
# REPRODUCE_BESIDE=1 or =0 overrides. A failed run, report or
# plot stops the script with its status and no REPORT.md, after the figures already started
# have ended.
set -e
pmi=${PMI:-./pmi}
scale=${1:-small}
overlay=configs/scale-$scale.ini
[ -f "$overlay" ] || { echo "reproduce: no $overlay (scales: $(ls configs/scale-*.ini | sed 's/.*scale-//;s/\.ini//' | tr '\n' ' '))" >&2; exit 2; }
start=$(date +%s)
beside=${REPRODUCE_BESIDE:-$([ "$(nproc 2>/dev/null || echo 1)" -ge 8 ] && echo 1 || echo 0)}
tmp=$(mktemp -d)
pending=""   # the experiment whose tables and figures are being made, and its process
trap 'if [ -n "$pending" ]; then wait "${pending#* }" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT

# The tables (into $tmp/NAME.tables) and both sets of figures of experiment NAME (results file
# OUT) at once, three processes (on 2 cores the small robustness experiment's took 6.0-7.1 s
# against 9.0-10.9 s one after the other, 3 runs each); the PNG run's messages into
# $tmp/NAME.plot, the seconds into $tmp/NAME.secs; the status is the first failure's.
figures() {
  t0=$(date +%s)
  "$pmi" plot "$2" -o "plots/$scale/$1" 2>"$tmp/$1.plot" & png=$!
  "$pmi" plot "$2" -o "plots/$scale/$1/svg" --format svg 2>/dev/null & svg=$!
  rc=0
  "$pmi" report "$2" >"$tmp/$1.tables" || rc=$?   # the figures end before this does
  wait $png || { r=$?; [ "$rc" != 0 ] || rc=$r; }
  wait $svg || { r=$?; [ "$rc" != 0 ] || rc=$r; }
  echo $(( $(date +%s) - t0 )) >"$tmp/$1.secs"
  return "$rc"
}

# Waits for the pending experiment's tables and figures, prints them and its seconds; stops
# the script with their status when they failed.
finish() {   # its variables f_*: the loop's own (name, out) must stay
  [ -n "$pending" ] || return 0
  f_name=${pending% *}; f_pid=${pending#* }
  f_rc=0; wait "$f_pid" || f_rc=$?
  pending=""
  cat "$tmp/$f_name.tables"
  cat "$tmp/$f_name.plot" >&2
  [ "$f_rc" = 0 ] || exit "$f_rc"
  echo "reproduce: $f_name run $(cat "$tmp/$f_name.run") s, report and figures $(cat "$tmp/$f_name.secs") s" >&2
}

files=""
for exp in experiments/*.ini; do
  name=$(basename "$exp" .ini)
  if [ -n "${EXPERIMENTS:-}" ]; then case " $EXPERIMENTS " in *" $name "*) ;; *) continue ;; esac; fi
  echo "== $exp (scale $scale)" >&2
  extra=configs/$name-$scale.ini
  [ -f "$extra" ] || extra=
  t0=$(date +%s)
  out=$("$pmi" run "$exp" "$overlay" $extra)
  echo $(( $(date +%s) - t0 )) >"$tmp/$name.run"
  finish
  : >"$tmp/$name.plot"
  figures "$name" "$out" & pending="$name $!"
  [ "$beside" = 1 ] || finish
  files="$files $out"
done
finish
report=results/$scale/REPORT.md
# shellcheck disable=SC2086  # the results paths have no spaces (experiment names are checked)
"$pmi" report --markdown-report "$report" --plots "plots/$scale" $files
echo "reproduce: scale $scale done in $(( $(date +%s) - start )) s" >&2

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
set -e
pmi=${PMI:-./pmi}
scale=${1:-small}
overlay=configs/scale-$scale.ini
[ -f "$overlay" ] || { echo "reproduce: no $overlay (scales: $(ls configs/scale-*.ini | sed 's/.*scale-//;s/\.ini//' | tr '\n' ' '))" >&2; exit 2; }
start=$(date +%s)
plotlog=$(mktemp); trap 'rm -f "$plotlog"' EXIT
files=""
for exp in experiments/*.ini; do
  name=$(basename "$exp" .ini)
  if [ -n "${EXPERIMENTS:-}" ]; then case " $EXPERIMENTS " in *" $name "*) ;; *) continue ;; esac; fi
  echo "== $exp (scale $scale)" >&2
  extra=configs/$name-$scale.ini
  [ -f "$extra" ] || extra=
  t0=$(date +%s)
  out=$("$pmi" run "$exp" "$overlay" $extra)
  t1=$(date +%s)
  # the tables and both sets of figures at once (three processes; on 2 cores the small
  # robustness experiment's took 6.0-7.1 s against 9.0-10.9 s one after the other, 3 runs each);
  # the PNG run's messages follow the tables, and a failed plot stops the script with its status
  "$pmi" plot "$out" -o "plots/$scale/$name" 2>"$plotlog" & png=$!
  "$pmi" plot "$out" -o "plots/$scale/$name/svg" --format svg 2>/dev/null & svg=$!
  "$pmi" report "$out" || { rc=$?; wait; exit "$rc"; }   # the figures end before the script does
  files="$files $out"
  rc=0; wait $png || rc=$?
  cat "$plotlog" >&2
  [ "$rc" = 0 ] || exit "$rc"
  wait $svg
  echo "reproduce: $name run $((t1 - t0)) s, report and figures $(( $(date +%s) - t1 )) s" >&2
done
report=results/$scale/REPORT.md
# shellcheck disable=SC2086  # the results paths have no spaces (experiment names are checked)
"$pmi" report --markdown-report "$report" --plots "plots/$scale" $files
echo "reproduce: scale $scale done in $(( $(date +%s) - start )) s" >&2

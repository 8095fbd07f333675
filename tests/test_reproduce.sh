#!/bin/sh
# scripts/reproduce.sh's control flow, with a stand-in for pmi (PMI=...: a shell script that
# logs its calls and fails where told), so that it costs no training: each experiment's run,
# then its tables while both sets of figures render, the PNG run's messages after the tables,
# REPORT.md last; a failed plot (PNG or SVG) or run stops the script with a non-zero status and
# no REPORT.md; a failed report waits for its figures first. PARALLEL=1: every run starts at once,
# their messages prefixed, tables in the same order; a failed run stops it once the others ended. Run from the repository root by scripts/run-tests.sh; TAP lines.
check() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/pmi" <<'SH'
#!/bin/sh
# the stand-in: FAIL=run|report|png|svg fails that step with status 3, FAIL=run-<experiment> that run only
echo "$*" >>"$LOG"
case "$1" in
  run) exp=$(basename "$2" .ini); echo "training $exp" >&2
       [ "$FAIL" = run ] || [ "$FAIL" = "run-$exp" ] && exit 3
       sleep 0.3; echo "run ended $exp" >>"$LOG"; echo "results/fake/$exp/results.h5";;
  report) [ "$2" = --markdown-report ] && { echo REPORT >>"$LOG"; exit 0; }; [ "$FAIL" = report ] && exit 3
          sleep 0.3; echo "tables of $2";;
  plot) sleep 0.5; case "$*" in *svg*) [ "$FAIL" = svg ] && exit 3;; *) [ "$FAIL" = png ] && { echo "png failed" >&2; exit 3; };; esac
        echo "wrote figures of $2" >&2; echo "plot ended" >>"$LOG";;
esac
SH
chmod +x "$tmp/pmi"
for fail in none run report png svg; do
  LOG="$tmp/log-$fail" FAIL=$fail PMI="$tmp/pmi" EXPERIMENTS="fingerprint robustness" sh scripts/reproduce.sh small >"$tmp/out-$fail" 2>&1
  eval "rc_$fail=$?"
  [ "$fail" = report ] && ended=$(grep -c '^plot ended' "$tmp/log-report")   # right at its exit
done
[ "$rc_none" = 0 ] && [ "$(grep -c '^run experiments/' "$tmp/log-none")" = 2 ] && [ "$(grep -c '^plot .* --format svg' "$tmp/log-none")" = 2 ] &&
  [ "$(tail -1 "$tmp/log-none")" = REPORT ] &&
  [ "$(grep -n 'tables of results/fake/robustness' "$tmp/out-none" | cut -d: -f1)" -lt "$(grep -n 'wrote figures of results/fake/robustness' "$tmp/out-none" | cut -d: -f1)" ] &&
  grep -q '^reproduce: scale small done' "$tmp/out-none"
check $? "reproduce.sh runs each experiment, its tables and both figure sets, the PNG messages after the tables, REPORT.md last (exit $rc_none)"
for fail in run report png svg; do
  eval "rc=\$rc_$fail"
  [ "$rc" != 0 ] && ! grep -q '^REPORT$' "$tmp/log-$fail" && ! grep -q 'done in' "$tmp/out-$fail"
  check $? "a failed $fail stops reproduce.sh: exit $rc, no REPORT.md"
done
grep -q 'png failed' "$tmp/out-png"; check $? "the failed PNG plot's message is shown"
[ "$ended" = 2 ]; check $? "a failed report waits for the figures already started before it stops ($ended of 2 ended at its exit)"
LOG="$tmp/log-par" FAIL=none PARALLEL=1 PMI="$tmp/pmi" EXPERIMENTS="fingerprint robustness" sh scripts/reproduce.sh small >"$tmp/out-par" 2>&1
rc=$?
[ "$rc" = 0 ] && head -2 "$tmp/log-par" | grep -c '^run experiments/' | grep -qx 2 && [ "$(tail -1 "$tmp/log-par")" = REPORT ] &&
  [ "$(grep -n 'tables of results/fake/fingerprint' "$tmp/out-par" | cut -d: -f1)" -lt "$(grep -n 'tables of results/fake/robustness' "$tmp/out-par" | cut -d: -f1)" ] &&
  grep -q '^\[robustness\] training robustness$' "$tmp/out-par" && grep -q '^reproduce: scale small done' "$tmp/out-par"
check $? "PARALLEL=1 starts both runs before either ends, prefixes their messages, prints the tables in order, REPORT.md last (exit $rc)"
LOG="$tmp/log-parfail" FAIL=run-fingerprint PARALLEL=1 PMI="$tmp/pmi" EXPERIMENTS="fingerprint robustness" sh scripts/reproduce.sh small >"$tmp/out-parfail" 2>&1
rc=$?
[ "$rc" = 3 ] && grep -q '^run ended robustness' "$tmp/log-parfail" && ! grep -q '^REPORT$' "$tmp/log-parfail" && grep -q "fingerprint's run failed" "$tmp/out-parfail"
check $? "PARALLEL=1: a failed run stops the script (exit $rc) after the other run has ended, no REPORT.md"

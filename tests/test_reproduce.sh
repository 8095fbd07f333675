#!/bin/sh
# scripts/reproduce.sh's control flow, with a stand-in for pmi (PMI=...: a shell script that
# logs its calls and fails where told), so that it costs no training: each experiment's run,
# then its tables while both sets of figures render, beside the next experiment's run; the PNG
# run's messages after the tables, REPORT.md last; a failed plot (PNG or SVG) or run stops the
# script with a non-zero status and no REPORT.md; a failed report waits for its figures first. Run from the repository root by scripts/run-tests.sh; TAP lines.
check() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/pmi" <<'SH'
#!/bin/sh
# the stand-in: FAIL=run|report|png|svg fails that step with status 3
echo "$*" >>"$LOG"
case "$1" in
  run) [ "$FAIL" = run ] && exit 3; echo "results/fake/$(basename "$2" .ini)/results.h5";;
  report) [ "$2" = --markdown-report ] && { echo REPORT >>"$LOG"; exit 0; }; [ "$FAIL" = report ] && exit 3
          sleep 0.3; echo "tables of $2";;
  plot) sleep 0.5; case "$*" in *svg*) [ "$FAIL" = svg ] && exit 3;; *) [ "$FAIL" = png ] && { echo "png failed" >&2; exit 3; };; esac
        echo "wrote figures of $2" >&2; echo "plot ended" >>"$LOG";;
esac
SH
chmod +x "$tmp/pmi"
for fail in none run report png svg; do
  REPRODUCE_BESIDE=1 LOG="$tmp/log-$fail" FAIL=$fail PMI="$tmp/pmi" EXPERIMENTS="fingerprint robustness" sh scripts/reproduce.sh small >"$tmp/out-$fail" 2>&1
  eval "rc_$fail=$?"
  [ "$fail" = report ] && ended=$(grep -c '^plot ended' "$tmp/log-report")   # right at its exit
done
[ "$rc_none" = 0 ] && [ "$(grep -c '^run ' "$tmp/log-none")" = 2 ] && [ "$(grep -c '^plot .* --format svg' "$tmp/log-none")" = 2 ] &&
  [ "$(tail -1 "$tmp/log-none")" = REPORT ] &&
  [ "$(grep -n 'tables of results/fake/robustness' "$tmp/out-none" | cut -d: -f1)" -lt "$(grep -n 'wrote figures of results/fake/robustness' "$tmp/out-none" | cut -d: -f1)" ] &&
  grep -q '^reproduce: scale small done' "$tmp/out-none"
check $? "reproduce.sh runs each experiment, its tables and both figure sets, the PNG messages after the tables, REPORT.md last (exit $rc_none)"
[ "$(grep -n '^run experiments/robustness' "$tmp/log-none" | cut -d: -f1)" -lt "$(grep -n '^plot ended' "$tmp/log-none" | head -1 | cut -d: -f1)" ]
check $? "the next experiment runs while the figures of the one before render"
REPRODUCE_BESIDE=0 LOG="$tmp/log-apart" FAIL=none PMI="$tmp/pmi" EXPERIMENTS="fingerprint robustness" sh scripts/reproduce.sh small >"$tmp/out-apart" 2>&1
[ "$?" = 0 ] && [ "$(grep -n '^run experiments/robustness' "$tmp/log-apart" | cut -d: -f1)" -gt "$(grep -n '^plot ended' "$tmp/log-apart" | sed -n 2p | cut -d: -f1)" ] &&
  [ "$(tail -1 "$tmp/log-apart")" = REPORT ]
check $? "REPRODUCE_BESIDE=0 (the default below 8 cores): the figures end before the next experiment runs"
for e in fingerprint robustness; do
  grep -q "^plot results/fake/$e/results.h5 -o plots/small/$e\$" "$tmp/log-none" &&
    grep -q "^plot results/fake/$e/results.h5 -o plots/small/$e/svg --format svg\$" "$tmp/log-none" &&
    grep -q "^report results/fake/$e/results.h5\$" "$tmp/log-none" && grep -q "^reproduce: $e run " "$tmp/out-none"
  check $? "$e: its own tables, figures (plots/small/$e) and seconds line"
done
for fail in run report png svg; do
  eval "rc=\$rc_$fail"
  [ "$rc" != 0 ] && ! grep -q '^REPORT$' "$tmp/log-$fail" && ! grep -q 'done in' "$tmp/out-$fail"
  check $? "a failed $fail stops reproduce.sh: exit $rc, no REPORT.md"
done
grep -q 'png failed' "$tmp/out-png"; check $? "the failed PNG plot's message is shown"
[ "$ended" = 2 ]; check $? "a failed report waits for the figures already started before it stops ($ended of 2 ended at its exit)"

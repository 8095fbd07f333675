#!/bin/sh
# Runs every cmocka test binary in $1 (default build/tests), then every shell test
# tests/test_*.sh, and prints one summary line, "tests: N passed, N failed", summed over all.
# Exit 1 if any failed or crashed. Shell tests print one TAP line per check ("ok - what" or
# "not ok - what"). Tests that exec pmi take it from $PMI_BIN (make test sets it to the binary
# of the build under test: ./pmi, or build-san/pmi with SAN=1); run from the repository root.
dir=${1:-build/tests}
export PMI_BIN=${PMI_BIN:-./pmi}
pass=0; fail=0; log=$(mktemp)
# Counts the results of one test program from its output in $log and its exit status $1.
count() {
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  p=$((p + $(grep -c '^ok ' "$log"))); f=$((f + $(grep -c '^not ok ' "$log")))
  if [ "$1" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "test $t exited with $1 without reporting failures (crash?)"; f=1
  fi
  pass=$((pass + p)); fail=$((fail + f))
}
for t in "$dir"/test_* tests/test_*.sh; do
  case "$t" in
    *.d|*.o) continue;;
    *.sh) [ -f "$t" ] || continue; sh "$t" >"$log" 2>&1;;
    *) [ -x "$t" ] || continue; "$t" >"$log" 2>&1;;
  esac
  rc=$?
  cat "$log"
  count "$rc"
done
rm -f "$log"
echo
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]

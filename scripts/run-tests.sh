#!/bin/sh
# Runs every cmocka test binary in $1 (default build/tests) and prints one summary line,
# "tests: N passed, N failed", summed over all binaries. Exit 1 if any failed or crashed.
dir=${1:-build/tests}
pass=0; fail=0; log=$(mktemp)
for t in "$dir"/test_*; do
  [ -x "$t" ] || continue
  case "$t" in *.d|*.o) continue;; esac
  "$t" >"$log" 2>&1; rc=$?
  cat "$log"
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "test binary $t exited with $rc without reporting failures (crash?)"; f=1
  fi
  pass=$((pass + p)); fail=$((fail + f))
done
rm -f "$log"
echo
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]

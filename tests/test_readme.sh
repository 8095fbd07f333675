#!/bin/sh
# Tests of what a newcomer reads first (README.md): its first lines are the two set-up
# commands, every command it shows is one that runs from a fresh clone (./pmi, not a bare pmi
# that is not on PATH), every docs/ link points to a file, and its claims table is the one
# scripts/readme-claims.sh makes from the reproduced results/small/REPORT.md (checked when
# `make reproduce` has written it), and its timings are the lines scripts/readme-timings.sh
# makes from docs/performance.md's "Current timings" table. Run from the repository root by scripts/run-tests.sh;
# prints one TAP line per check.
check() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
[ "$(sed -n 3p README.md)" = '    make reproduce        # set-up + every experiment at small scale, tables and figures (Debian 12)' ] &&
  [ "$(sed -n 4p README.md)" = '    make test             # set-up + the test suite; last line: "tests: N passed, N failed"' ]
check $? "README.md opens with the two commands, make reproduce and make test"
bare=$(grep -nE '^    pmi |`pmi (run|plan|report|plot|verify|export|key|merge) ' README.md)
[ -z "$bare" ]; check $? "README.md calls ./pmi, never a bare pmi that is not on PATH${bare:+: $bare}"
missing=""
for f in $(grep -o '](docs/[^)#]*' README.md | sed 's/^](//' | sort -u); do [ -f "$f" ] || missing="$missing $f"; done
[ -z "$missing" ]; check $? "every docs/ link of README.md is a file${missing:+; missing:$missing}"
[ "$(wc -l <README.md)" -le 150 ]; check $? "README.md stays short enough to read in ten minutes ($(wc -l <README.md) lines, at most 150)"
if [ -f results/small/REPORT.md ]; then
  out=$(scripts/readme-claims.sh --check 2>&1); rc=$?
  if [ "$rc" = 3 ]; then
    echo "ok - README.md's claims table: # SKIP $out"
  else
    [ "$rc" = 0 ]; check $? "README.md's claims table is results/small/REPORT.md's (scripts/readme-claims.sh)${out:+: $out}"
  fi
else
  echo "ok - README.md's claims table: no results/small/REPORT.md to compare with (make reproduce writes it) # SKIP"
fi
out=$(scripts/readme-timings.sh --check 2>&1); rc=$?
[ "$rc" = 0 ]; check $? "README.md's timings are docs/performance.md's current-timings table (scripts/readme-timings.sh)${out:+: $out}"
# the generator: a report with another verdict makes --check fail
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '# p\n\n## Current timings\n\n| what | machine | time | measured |\n|---|---|---|---|\n| a run | a VM | 9 s | today, one run |\n| b | c | 1 s | d |\n\n## Next\n\n| what | machine | time | measured |\n|---|---|---|---|\n| not this | x | 2 s | y |\n' >"$tmp/P.md"
printf 'x\n<!-- timings: begin -->\n- old: **5 s** on a VM (then)\n<!-- timings: end -->\ny\n' >"$tmp/READMEt.md"
! scripts/readme-timings.sh --check "$tmp/P.md" "$tmp/READMEt.md" 2>/dev/null &&
  scripts/readme-timings.sh "$tmp/P.md" "$tmp/READMEt.md" >/dev/null && scripts/readme-timings.sh --check "$tmp/P.md" "$tmp/READMEt.md" &&
  [ "$(sed -n 3p "$tmp/READMEt.md")" = '- a run: **9 s** on a VM (today, one run)' ] && [ "$(sed -n 4p "$tmp/READMEt.md")" = '- b: **1 s** on c (d)' ] &&
  [ "$(wc -l <"$tmp/READMEt.md")" = 6 ] && [ "$(tail -1 "$tmp/READMEt.md")" = y ]
check $? "scripts/readme-timings.sh: --check fails on a stale line, then writes one line per row of the current-timings table only"
printf '# p\n' >"$tmp/P0.md"
scripts/readme-timings.sh "$tmp/P0.md" "$tmp/READMEt.md" 2>"$tmp/err"; rc=$?
[ "$rc" = 2 ] && grep -q "no table with what, machine, time and measured columns under '## Current timings'" "$tmp/err"
check $? "scripts/readme-timings.sh without the table: exit 2, says what it looked for ($rc)"
machine() { printf '# r\n\n## Machine and runs\n\n| experiment | device | host | commit |\n|---|---|---|---|\n| e | cpu | %s | c |\n\n' "$1"; }
{ machine 'vm, CPU A, 2 cores'; printf '## Claims\n\n| claim | measured | value | verdict |\n|---|---|---|---|\n| C1 lossless | gap 0.1 | 0.1 | **holds** |\n\n## Tables\n'; } >"$tmp/R.md"
printf 'x\n<!-- claims: begin -->\n| old |\n<!-- claims: end -->\ny\n' >"$tmp/README.md"
! scripts/readme-claims.sh --check "$tmp/R.md" "$tmp/README.md" 2>/dev/null &&
  scripts/readme-claims.sh "$tmp/R.md" "$tmp/README.md" >/dev/null && scripts/readme-claims.sh --check "$tmp/R.md" "$tmp/README.md" &&
  grep -qxF '| C1 lossless | gap 0.1 | **holds** |' "$tmp/README.md" && [ "$(head -1 "$tmp/README.md")" = x ] && [ "$(tail -1 "$tmp/README.md")" = y ] &&
  grep -qxF 'From one run on: vm, CPU A, 2 cores.' "$tmp/README.md"
check $? "scripts/readme-claims.sh: --check fails on a stale table, then writes the report's host and its claim, measured and verdict columns"
{ machine 'vm, CPU B, 2 cores'; printf '## Claims\n\n| claim | measured | value | verdict |\n|---|---|---|---|\n| C1 lossless | gap 0.3 | 0.3 | **partial** |\n\n## Tables\n'; } >"$tmp/RB.md"
cp "$tmp/README.md" "$tmp/README.before"
scripts/readme-claims.sh --check "$tmp/RB.md" "$tmp/README.md" 2>"$tmp/err"; rc=$?
[ "$rc" = 3 ] && grep -q "from a run on 'vm, CPU A, 2 cores'.*from one on 'vm, CPU B, 2 cores': not compared" "$tmp/err" && cmp -s "$tmp/README.md" "$tmp/README.before"
check $? "scripts/readme-claims.sh --check of a report made on another CPU: exit 3 ($rc), names both, compares and changes nothing"
# C4 rows of one verdict shared by more than 3 families fold into one row naming them; rarer
# verdicts keep their rows
{ machine 'vm, CPU A, 2 cores'; printf '## Claims\n\n| claim | measured | value | verdict |\n|---|---|---|---|\n| C1 lossless | gap 0.1 | 0.1 | **holds** |\n'
  for f in a b c d; do printf '| C4 robust: %s | least claimed: %d/10 at alpha 0.01 after x | 1 | **holds** |\n' $f $((6 + ${#f} * 0)); done
  printf '| C4 robust: e | least claimed: 9/10 at alpha 0.01 after y | 1 | **holds** |\n'
  printf '| C4 robust: z | least claimed: 0/10 at alpha 0.01 after w | 0 | **does not hold at this scale** |\n'
  printf '| C5 pool size | least 1 | 1 | **holds** |\n\n## Tables\n'; } >"$tmp/R4.md"
printf 'x\n<!-- claims: begin -->\n<!-- claims: end -->\ny\n' >"$tmp/README4.md"
scripts/readme-claims.sh "$tmp/R4.md" "$tmp/README4.md" >/dev/null &&
  grep -qxF '| C4 robust: a, b, c, d, e (5 attack families) | each family'"'"'s least-claimed setting: 6/10 to 9/10 owner models claimed (REPORT.md has each) | **holds** |' "$tmp/README4.md" &&
  grep -qxF '| C4 robust: z | least claimed: 0/10 at alpha 0.01 after w | **does not hold at this scale** |' "$tmp/README4.md" &&
  [ "$(grep -c '^| C' "$tmp/README4.md")" = 4 ] && grep -n '^| C' "$tmp/README4.md" | tail -1 | grep -q 'C5 pool size'
check $? "scripts/readme-claims.sh folds the C4 families of a common verdict into one row, keeps the rest and the order"

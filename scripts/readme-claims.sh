#!/bin/sh
# The README's claims table, generated from a reproduction report instead of typed:
#   scripts/readme-claims.sh [--check] [REPORT.md] [README.md]
# takes the columns claim, measured and verdict of the "## Claims" table of REPORT.md (default
# results/small/REPORT.md, written by `make reproduce`) and puts them in README.md (default
# README.md) between the lines "<!-- claims: begin ... -->" and "<!-- claims: end -->". With
# --check it changes nothing and exits 1 (with a diff) when the README's table differs from the
# report's. Exit 2: a file or the markers are missing.
set -e
check=0
[ "${1:-}" = --check ] && { check=1; shift; }
report=${1:-results/small/REPORT.md}
readme=${2:-README.md}
[ -f "$report" ] || { echo "readme-claims: no $report (make reproduce writes it)" >&2; exit 2; }
grep -q '^<!-- claims: begin' "$readme" && grep -q '^<!-- claims: end -->' "$readme" ||
  { echo "readme-claims: $readme has no '<!-- claims: begin' / '<!-- claims: end -->' lines" >&2; exit 2; }
table=$(mktemp); new=$(mktemp); trap 'rm -f "$table" "$new"' EXIT
# the columns named claim, measured and verdict of the first table after "## Claims"
awk -F'|' '
  /^## Claims/ { inside = 1; next }
  inside && /^\| *claim *\|/ {
    for (i = 2; i < NF; i++) { h = $i; gsub(/^ +| +$/, "", h); col[h] = i }
    if (!col["claim"] || !col["measured"] || !col["verdict"]) { print "no claim, measured and verdict columns" > "/dev/stderr"; exit 3 }
    print "| claim | measured | verdict |"; print "|---|---|---|"; rows = 1; next
  }
  rows && /^\|---/ { next }
  rows && /^\|/ { print "|" $col["claim"] "|" $col["measured"] "|" $col["verdict"] "|"; next }
  rows { exit }
' "$report" >"$table"
[ -s "$table" ] || { echo "readme-claims: no claims table in $report" >&2; exit 2; }
awk -v t="$table" '
  /^<!-- claims: begin/ { print; while ((getline l < t) > 0) print l; skip = 1; next }
  /^<!-- claims: end -->/ { skip = 0 }
  !skip { print }
' "$readme" >"$new"
if [ "$check" = 1 ]; then
  cmp -s "$readme" "$new" && exit 0
  echo "readme-claims: the claims table of $readme differs from $report (scripts/readme-claims.sh updates it):" >&2
  diff "$readme" "$new" >&2 || true
  exit 1
fi
cat "$new" >"$readme"
echo "readme-claims: $readme's claims table from $report"

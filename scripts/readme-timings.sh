#!/bin/sh
# The README's timings, generated from docs/performance.md instead of typed:
#   scripts/readme-timings.sh [--check] [performance.md] [README.md]
# takes the rows of the table under "## Current timings" of docs/performance.md (columns what,
# machine, time, measured) and writes one line per row into README.md between the lines
# "<!-- timings: begin ... -->" and "<!-- timings: end -->":
#   - <what>: **<time>** on <machine> (<measured>)
# A re-measurement replaces its row there (the old number moves to docs/history.md), and this
# script carries it to the README. With --check it changes nothing and exits 1 (with a diff)
# when the README's lines differ from the table's. Exit 2: a file, the table or the markers
# are missing.
set -e
check=0
[ "${1:-}" = --check ] && { check=1; shift; }
perf=${1:-docs/performance.md}
readme=${2:-README.md}
[ -f "$perf" ] || { echo "readme-timings: no $perf" >&2; exit 2; }
grep -q '^<!-- timings: begin' "$readme" && grep -q '^<!-- timings: end -->' "$readme" ||
  { echo "readme-timings: $readme has no '<!-- timings: begin' / '<!-- timings: end -->' lines" >&2; exit 2; }
lines=$(mktemp); new=$(mktemp); trap 'rm -f "$lines" "$new"' EXIT
awk -F'|' '
  function trim(s) { gsub(/^ +| +$/, "", s); return s }
  /^## Current timings/ { inside = 1; next }
  inside && /^## / { exit }
  inside && /^\| *what *\|/ {
    for (i = 2; i < NF; i++) col[trim($i)] = i
    if (!col["what"] || !col["machine"] || !col["time"] || !col["measured"]) { print "no what, machine, time and measured columns" > "/dev/stderr"; exit 3 }
    rows = 1; next
  }
  rows && /^\|---/ { next }
  rows && /^\|/ { printf "- %s: **%s** on %s (%s)\n", trim($col["what"]), trim($col["time"]), trim($col["machine"]), trim($col["measured"]); next }
  rows { exit }
' "$perf" >"$lines"
[ -s "$lines" ] || { echo "readme-timings: no table with what, machine, time and measured columns under '## Current timings' in $perf" >&2; exit 2; }
awk -v t="$lines" '
  /^<!-- timings: begin/ { print; while ((getline l < t) > 0) print l; skip = 1; next }
  /^<!-- timings: end -->/ { skip = 0 }
  !skip { print }
' "$readme" >"$new"
if [ "$check" = 1 ]; then
  cmp -s "$readme" "$new" && exit 0
  echo "readme-timings: the timings of $readme differ from $perf (scripts/readme-timings.sh updates them):" >&2
  diff "$readme" "$new" >&2 || true
  exit 1
fi
cat "$new" >"$readme"
echo "readme-timings: $readme's timings from $perf"

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
. "$(dirname "$0")/readme-block.sh"
check=0
[ "${1:-}" = --check ] && { check=1; shift; }
perf=${1:-docs/performance.md}
readme=${2:-README.md}
[ -f "$perf" ] || { echo "readme-timings: no $perf" >&2; exit 2; }
lines=$(mktemp); trap 'rm -f "$lines"' EXIT
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
readme_block "$check" timings "$lines" "$readme" "timings" "$perf"

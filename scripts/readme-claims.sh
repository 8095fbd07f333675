#!/bin/sh
# The README's claims table, generated from a reproduction report instead of typed:
#   scripts/readme-claims.sh [--check] [REPORT.md] [README.md]
# takes the columns claim, measured and verdict of the "## Claims" table of REPORT.md (default
# results/small/REPORT.md, written by `make reproduce`) and puts them in README.md (default
# README.md) between the lines "<!-- claims: begin ... -->" and "<!-- claims: end -->". With
# --check it changes nothing and exits 1 (with a diff) when the README's table differs from the
# report's. Exit 2: a file or the markers are missing. The block opens with the line "From one
# run on: <host>." (the report's host column); --check exits 3 without comparing when the
# report's host is another (another kind of CPU rounds differently, see the README). The C4 rows (one per attack family) of a
# verdict shared by more than 3 families fold into one row that names them and the range of
# their least-claimed counts; the others stay as they are (REPORT.md has every row).
set -e
. "$(dirname "$0")/readme-block.sh"
check=0
[ "${1:-}" = --check ] && { check=1; shift; }
report=${1:-results/small/REPORT.md}
readme=${2:-README.md}
[ -f "$report" ] || { echo "readme-claims: no $report (make reproduce writes it)" >&2; exit 2; }
table=$(mktemp); trap 'rm -f "$table"' EXIT
# the columns named claim, measured and verdict of the first table after "## Claims"
awk -F'|' '
  /^## Claims/ { inside = 1; next }
  inside && /^\| *claim *\|/ {
    for (i = 2; i < NF; i++) { h = $i; gsub(/^ +| +$/, "", h); col[h] = i }
    if (!col["claim"] || !col["measured"] || !col["verdict"]) { print "no claim, measured and verdict columns" > "/dev/stderr"; exit 3 }
    print "| claim | measured | verdict |"; print "|---|---|---|"; rows = 1; next
  }
  rows && /^\|---/ { next }
  rows && /^\|/ {
    c = $col["claim"]; m = $col["measured"]; v = $col["verdict"]
    if (c ~ /^ *C4 robust: /) {   # held back until the C4 rows end
      if (!(v in nv)) order[++nvs] = v
      f = c; sub(/^ *C4 robust: /, "", f); sub(/ +$/, "", f)
      nv[v]++; fam[v, nv[v]] = f; line[v, nv[v]] = "|" c "|" m "|" v "|"
      if (match(m, /least claimed: [0-9]+\/[0-9]+/)) {
        k = substr(m, RSTART + 15, RLENGTH - 15); split(k, kn, "/")
        if (!((v, "lo") in r) || kn[1] + 0 < r[v, "lo"] + 0) r[v, "lo"] = kn[1]
        if (!((v, "hi") in r) || kn[1] + 0 > r[v, "hi"] + 0) r[v, "hi"] = kn[1]
        r[v, "n"] = kn[2]
      }
      next
    }
    flush(); print "|" c "|" m "|" v "|"; next
  }
  rows { flush(); exit }
  END { flush() }
  function flush(   i, j, v, names) {
    for (i = 1; i <= nvs; i++) {
      v = order[i]
      if (nv[v] <= 3) { for (j = 1; j <= nv[v]; j++) print line[v, j]; continue }
      names = fam[v, 1]; for (j = 2; j <= nv[v]; j++) names = names ", " fam[v, j]
      printf "| C4 robust: %s (%d attack families) | each family'"'"'s least-claimed setting: %s/%s to %s/%s owner models claimed (REPORT.md has each) |%s|\n", names, nv[v], r[v, "lo"], r[v, "n"], r[v, "hi"], r[v, "n"], v
    }
    delete nv; delete order; nvs = 0
  }
' "$report" >"$table"
[ -s "$table" ] || { echo "readme-claims: no claims table in $report" >&2; exit 2; }
# the machine of the report's first run (its "Machine and runs" table, column host): another kind
# of CPU rounds differently (its vector kernels), which at two seeds moves numbers and verdicts
host=$(awk -F'|' '
  /^## Machine and runs/ { m = 1; next }
  m && /^\| *experiment *\|/ { for (i = 2; i < NF; i++) { h = $i; gsub(/^ +| +$/, "", h); if (h == "host") c = i } next }
  m && /^\|---/ { next }
  m && c && /^\|/ { h = $c; gsub(/^ +| +$/, "", h); print h; exit }
' "$report")
[ -n "$host" ] || { echo "readme-claims: no host in the Machine and runs table of $report" >&2; exit 2; }
was=$(sed -n 's/^From one run on: \(.*\)\.$/\1/p' "$readme" | head -1)
if [ "$check" = 1 ] && [ -n "$was" ] && [ "$was" != "$host" ]; then
  echo "readme-claims: $readme's table is from a run on '$was', $report from one on '$host': not compared (another kind of CPU rounds differently)" >&2
  exit 3
fi
{ echo "From one run on: $host."; echo; cat "$table"; } >"$table.new" && mv "$table.new" "$table"
readme_block "$check" claims "$table" "$readme" "claims table rows" "$report"

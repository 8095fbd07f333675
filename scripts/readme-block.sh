# Sourced by scripts/readme-claims.sh and scripts/readme-timings.sh: the README block they
# generate. readme_block CHECK NAME LINES README WHAT SOURCE puts the file LINES into README
# between the lines "<!-- NAME: begin ..." and "<!-- NAME: end -->" and says so; with CHECK = 1
# it changes nothing and exits 1 (with a diff) when the block differs. Exit 2: no such lines.
readme_block() {
  grep -q "^<!-- $2: begin" "$4" && grep -q "^<!-- $2: end -->" "$4" ||
    { echo "readme-$2: $4 has no '<!-- $2: begin' / '<!-- $2: end -->' lines" >&2; exit 2; }
  block_new=$(mktemp)
  awk -v t="$3" -v b="^<!-- $2: begin" -v e="^<!-- $2: end -->" '
    $0 ~ b { print; while ((getline l < t) > 0) print l; skip = 1; next }
    $0 ~ e { skip = 0 }
    !skip { print }
  ' "$4" >"$block_new"
  if [ "$1" = 1 ]; then
    cmp -s "$4" "$block_new" && { rm -f "$block_new"; exit 0; }
    echo "readme-$2: the $5 of $4 differ from $6 (scripts/readme-$2.sh updates them):" >&2
    diff "$4" "$block_new" >&2 || true
    rm -f "$block_new"
    exit 1
  fi
  cat "$block_new" >"$4"; rm -f "$block_new"
  echo "readme-$2: $4's $5 from $6"
}

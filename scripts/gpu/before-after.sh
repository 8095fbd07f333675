#!/bin/bash
# Before and after in one call on the GPU machine (docs/performance.md's before/after rows):
#   scripts/gpu/before-after.sh <before-dir> <label> <command ...>
# builds pmi (make -j16 TORCH_DIR=$TORCH_DIR pmi) in this tree and in <before-dir>, an earlier
# commit's tree (made here with `git archive <commit> | tar -x -C .device/before` and carried),
# then runs the command in the earlier tree and then in this one, each bounded by TIMEOUT
# seconds (default 280; SIGKILL 20 s after SIGTERM), and prints "<label> before|after: exit <rc>
# in <s> s" for each. The command sees SIDE=before|after (to name its outputs). Source
# .device/setup.sh first.
set -u
before=${1:?usage: before-after.sh <before-dir> <label> <command ...>}
label=${2:?usage: before-after.sh <before-dir> <label> <command ...>}
shift 2
here=$(pwd)
( cd "$before" && make -j16 TORCH_DIR="$TORCH_DIR" pmi >/tmp/build-before.log 2>&1 ) &
make -j16 TORCH_DIR="$TORCH_DIR" pmi >/tmp/build-after.log 2>&1 || { tail -20 /tmp/build-after.log; exit 1; }
wait $! || { tail -20 /tmp/build-before.log; exit 1; }
for side in before after; do
  dir=$here; [ "$side" = before ] && dir=$before
  t0=$(date +%s.%N)
  ( cd "$dir" && SIDE=$side timeout -k 20 "${TIMEOUT:-280}" "$@" )
  rc=$?
  awk -v l="$label" -v s="$side" -v r="$rc" -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%s %s: exit %d in %.1f s\n", l, s, r, t1 - t0 }'
done

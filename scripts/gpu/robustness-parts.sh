#!/bin/bash
# The paper-scale robustness experiment (`make reproduce SCALE=paper`'s: experiments/robustness.ini,
# configs/scale-paper.ini, configs/robustness-paper.ini) in parts that each fit one device call:
#   scripts/gpu/robustness-parts.sh weights|recipes|interface|all|sec1,sec2,... [seconds] [-s key=val ...]
# (a list of sections is named PART_NAME, default "sections") runs only that part's attack sections of configs/attacks.ini (the others get `enabled = 0`;
# owners, clean and independent models are trained in every part), bounded by `seconds` (default
# 480; the models train in batches of BATCH (default 10, two seeds) so that a stopped run keeps
# its finished batches through `pmi merge --partial`; SIGKILL 30 s after SIGTERM), then writes
# evidence-summary.py's tables and `pmi report --markdown-report` of the results file into OUT
# (default /tmp/robustness-parts) as summary-<part>.txt and REPORT-<part>.md, with the run's log.
# SCALE=small runs the small scale instead (a check on the CPU: PMI_RUN_ARGS= leaves out
# `--gpus all`). Run after `make TORCH_DIR=... pmi` (the GPU machine: ../shared/device/README.md); needs python3
# with h5py (PYTHON names another interpreter).
set -u
part=${1:?usage: robustness-parts.sh weights|recipes|interface|all [seconds] [-s key=val ...]}
secs=${2:-480}
shift; [ $# -gt 0 ] && shift
case $part in
  weights)   keep="ftll ftal rtll rtal prune prune-ft fineprune shuffle wshift distill distill-mlp extract quantize noise prune-then-ftal" ;;
  recipes)   keep="smooth flood noisyft advtrain transfer" ;;
  interface) keep="label topk round temperature rsigmoid outnoise inquant innoise blur shift flip" ;;
  all)       keep="" ;;
  *,*|[a-z]*) keep=$(echo "$part" | tr ',' ' '); part=${PART_NAME:-sections} ;;
  *) echo "robustness-parts: unknown part '$part' (weights, recipes, interface, all, or sections a,b,...)" >&2; exit 2 ;;
esac
out=${OUT:-/tmp/robustness-parts}
res=${RESULTS:-/tmp/robustness-results}
mkdir -p "$out" "$res"
overlay=$res/parts-$part.ini
: >"$overlay"
if [ -n "$keep" ]; then
  for sec in $(sed -n 's/^\[attack\.\(.*\)\]$/\1/p' configs/attacks.ini); do
    case " $keep prune50 ft3 " in *" $sec "*) ;; *) printf '[attack.%s]\nenabled = 0\n' "$sec" >>"$overlay" ;; esac
  done
fi
name=robustness-$part
scale=${SCALE:-paper}
set -- experiments/robustness.ini "configs/scale-$scale.ini" $( [ -f "configs/robustness-$scale.ini" ] && echo "configs/robustness-$scale.ini") \
  $( [ -s "$overlay" ] && echo "$overlay") -s experiment.output="$res" -s experiment.name="$name" "$@"
t0=$(date +%s)
timeout -k 30 "$secs" ./pmi run "$@" ${PMI_RUN_ARGS---gpus all --batch ${BATCH:-10}} >"$out/$name.log" 2>&1
rc=$?
echo "$name: exit $rc in $(( $(date +%s) - t0 )) s"
if [ ! -f "$res/$name/results.h5" ]; then
  ./pmi merge "$@" --partial >>"$out/$name.log" 2>&1 || { echo "$name: nothing to merge"; exit 1; }
fi
"${PYTHON:-python3}" scripts/analysis/evidence-summary.py "$res/$name/results.h5" 0.01 0.05 >"$out/summary-$part.txt" 2>&1
./pmi report --markdown-report "$out/REPORT-$part.md" "$res/$name/results.h5" >/dev/null 2>>"$out/$name.log"
tail -n 40 "$out/summary-$part.txt"

#!/bin/bash
# Submits a pmi experiment to Slurm: a job array whose task i runs `pmi run --shard i/K`
# (pmi-array.sbatch), and a merge job (pmi-merge.sbatch) that runs when every task has
# ended well (--dependency=afterok on the array). Run it from the folder that holds ./pmi
# (or set PMI_BIN) and the configs, on a login node whose file system the compute nodes share.
#
# usage: scripts/slurm/submit.sh [options] <config.ini> [overlay.ini ...] [-s sec.key=val ...]
#   --tasks K          array tasks (default: one per group of jobs, i.e. sweep points x seeds)
#   --gpus-per-task G  GPUs per task, as --gres=gpu:G (default 1; 0 for CPU-only tasks)
#   --cpus-per-task C  CPUs per task (default: Slurm's); on CPU, pmi runs C workers
#   --time T           time limit per task (sbatch --time)
#   --partition P      partition (sbatch --partition)
#   --sbatch ARG       any other sbatch argument, passed to both jobs (repeatable)
#   --dry-run          print the two sbatch commands, submit nothing
# Prints "array <id> merge <id>" on stdout. Re-running the same command after a failed task
# trains only the missing jobs (finished shards are skipped) and merges again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pmi=${PMI_BIN:-./pmi}
tasks=""; gpus=1; common=(); dry=0
usage() { sed -n '7,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --tasks) tasks=${2:?}; shift 2 ;;
    --gpus-per-task) gpus=${2:?}; shift 2 ;;
    --cpus-per-task) common+=(--cpus-per-task="${2:?}"); shift 2 ;;
    --time) common+=(--time="${2:?}"); shift 2 ;;
    --partition) common+=(--partition="${2:?}"); shift 2 ;;
    --sbatch) common+=("${2:?}"); shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "submit.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "submit.sh: expected a config file" >&2; usage; }
case $gpus in ''|*[!0-9]*) echo "submit.sh: --gpus-per-task '$gpus': expected a number" >&2; exit 2 ;; esac
# The plan (and a config error, exit 2) before anything is submitted.
plan=$("$pmi" plan "$@") || exit 2
groups=$(printf '%s\n' "$plan" | awk -F'\t' '!/^#/ && NF >= 3 { g[$2 "/" $3] = 1 } END { print length(g) }')
[ -n "$tasks" ] || tasks=$groups
case $tasks in ''|*[!0-9]*|0) echo "submit.sh: --tasks '$tasks': expected a number >= 1" >&2; exit 2 ;; esac
[ "$tasks" -le "$groups" ] || echo "submit.sh: $tasks tasks for $groups groups of jobs: $((tasks - groups)) will have nothing to do" >&2
gres=(); [ "$gpus" = 0 ] || gres=(--gres="gpu:$gpus")
array_cmd=(sbatch --parsable --array="0-$((tasks - 1))" "${gres[@]}" "${common[@]}" "$here/pmi-array.sbatch" "$tasks" "$@")
merge_cmd=(sbatch --parsable --dependency=afterok:ARRAY "${common[@]}" "$here/pmi-merge.sbatch" "$@")
if [ "$dry" = 1 ]; then
  printf '%q ' "${array_cmd[@]}"; echo
  printf '%q ' "${merge_cmd[@]}"; echo
  exit 0
fi
array=$("${array_cmd[@]}"); array=${array%%;*}
merge_cmd[2]=--dependency=afterok:$array
merge=$("${merge_cmd[@]}"); merge=${merge%%;*}
echo "submit.sh: job array $array ($tasks tasks over $groups groups) and merge job $merge (after every task ends well)" >&2
echo "array $array merge $merge"

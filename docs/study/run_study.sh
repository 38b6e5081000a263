#!/usr/bin/env bash
# The reproduction study (docs/reproduction.md), run back to back from a git worktree pinned
# to commit 6f07b25 (git worktree add --detach /work/study_wt 6f07b25), so that later changes
# of main cannot change a run between its start and its resumption; the run folders are
# outside the repository (/work/study_runs). Rerunning this script continues the unfinished
# run (train.py's restart guarantee) and skips the finished ones. Each finished run's small
# files are then copied to docs/study/<run>/ (flags.json, holdout_ids.txt,
# training_log.csv, result.json, evaluation/validation/{per_image.csv,summary.json}).
set -uo pipefail
cd /work/study_wt
. /work/venv/bin/activate
RUNS=/work/study_runs
COMMON="--data_dir=../shared/isic2017_256 --batch_size=32 --learning_rate=1e-3 --holdout_seed=0 --cache=memory"
run() {  # name, flags...
  local name=$1; shift
  if [ ! -f "$RUNS/$name/result.json" ]; then
    echo "$(date -u +%FT%TZ) start $name" >> "$RUNS/queue.log"
    python train.py $COMMON --model_dir="$RUNS/$name" "$@" >> "$RUNS/$name.out" 2>&1 || {
      echo "$(date -u +%FT%TZ) FAILED $name" >> "$RUNS/queue.log"; return 1; }
  fi
  if [ ! -f "$RUNS/$name/evaluation/validation/summary.json" ]; then
    python evaluate.py --data_dir=../shared/isic2017_256 --split=validation \
      --saved_model="$RUNS/$name/export" >> "$RUNS/$name.out" 2>&1
    echo "$(date -u +%FT%TZ) done $name" >> "$RUNS/queue.log"
  fi
}
run shipped_recipe_seed1 --image_size=64 --lr_schedule=cosine --max_epochs=50 --patience=20 --seed=1 || exit 1
run shipped_recipe_seed2 --image_size=64 --lr_schedule=cosine --max_epochs=50 --patience=20 --seed=2 || exit 1
run size64_cosine30 --image_size=64 --lr_schedule=cosine --max_epochs=30 --patience=20 --seed=0 || exit 1
run size128_cosine30 --image_size=128 --lr_schedule=cosine --max_epochs=30 --patience=20 --seed=0 || exit 1
run paper_rule_64 --image_size=64 --lr_schedule=constant --max_epochs=100 --patience=20 --seed=0 || exit 1
echo "$(date -u +%FT%TZ) all done" >> "$RUNS/queue.log"

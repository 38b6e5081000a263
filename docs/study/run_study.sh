#!/usr/bin/env bash
# The reproduction study's runs (docs/reproduction.md), one group at a time, back to back.
#
#   docs/study/run_study.sh GROUP DATA_DIR RUNS_DIR WORKTREE [DOCS_DIR]
#
#   GROUP     which runs: size_pair (2026-11), size256, context (needs --context), bfloat16,
#             beyond_baseline, beyond_round1, beyond_round2, beyond_round3, beyond_final, size448
#   DATA_DIR  the ISIC 2017 Task 1 data in the official layout (the study used 256x256 copies)
#   RUNS_DIR  where the run folders go, outside the repository
#   WORKTREE  a git worktree pinned to one commit (git worktree add --detach DIR COMMIT), so
#             that later changes of main cannot change a run between its start and its
#             resumption; the scripts are run from there, with the `python` on PATH
#   DOCS_DIR  where each finished run's small files are collected (python -m tools.study
#             --collect: <DOCS_DIR>/<run>/, paths of this machine taken out), e.g. the main
#             checkout's docs/study; omitted: nothing is collected
#
# The commit of each group is recorded in RUNS_DIR/<group>.commit at its first start, and the
# script refuses to continue the group from a worktree at another commit. Rerunning the same
# command continues the unfinished run (train.py's restart guarantee) and skips finished ones,
# and ones without a run folder that DOCS_DIR holds collected (their folders left with a machine).
# Each run is scored blind on the validation split, and on its 180 held-out training pairs at
# the photographs' resolution through the export (comparable across input sizes, unlike the
# held-out Jaccard of training, which is computed at each run's own input size).
set -uo pipefail
if [ $# -lt 4 ] || [ $# -gt 5 ]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
GROUP=$1 DATA=$(realpath "$2") RUNS=$(realpath -m "$3") WORKTREE=$(realpath "$4")
DOCS=${5:+$(realpath "$5")}
# RUN_STUDY_DRY_RUN=1: print each run of the group as "name train.py-flags..." and run nothing
# (tests/test_study.py checks every group's flags so).
DRY=${RUN_STUDY_DRY_RUN:-}
[ -d "$DATA" ] || { echo "run_study.sh: no data folder $DATA" >&2; exit 2; }
if [ -z "$DRY" ]; then
  mkdir -p "$RUNS"
  commit=$(git -C "$WORKTREE" rev-parse HEAD) || exit 2
  if [ -n "$(git -C "$WORKTREE" status --porcelain --untracked-files=no)" ]; then
    echo "run_study.sh: $WORKTREE has uncommitted changes" >&2; exit 2
  fi
  if [ -f "$RUNS/$GROUP.commit" ] && [ "$(cat "$RUNS/$GROUP.commit")" != "$commit" ]; then
    echo "run_study.sh: group $GROUP started at $(cat "$RUNS/$GROUP.commit"), worktree is at $commit" >&2
    exit 2
  fi
  echo "$commit" > "$RUNS/$GROUP.commit"
fi
cd "$WORKTREE" || exit 2
COMMON="--data_dir=$DATA --batch_size=32 --learning_rate=1e-3 --holdout_seed=0 --cache=memory"
# "Beyond the paper" (docs/reproduction.md): every arm at 64x64, float32, cosine over 50 epochs.
BEYOND="--image_size=64 --lr_schedule=cosine --max_epochs=50 --patience=20 --mixed_precision=none"
log() { echo "$(date -u +%FT%TZ) $*" >> "$RUNS/queue.log"; }
run() {  # name, train.py flags...
  local name=$1; shift
  local dir="$RUNS/$name"
  if [ -n "$DRY" ]; then echo "$name $COMMON --model_dir=$dir $*"; return 0; fi
  # Finished and collected on a machine whose run folders are gone: not trained again.
  if [ ! -e "$dir" ] && [ -n "$DOCS" ] && [ -f "$DOCS/$name/result.json" ]; then
    log "skip $name: collected in $DOCS/$name, no run folder in $RUNS"; return 0
  fi
  if [ ! -f "$dir/result.json" ]; then
    log "start $name ($GROUP, $commit)"
    python train.py $COMMON --model_dir="$dir" "$@" >> "$RUNS/$name.out" 2>&1 || {
      log "FAILED $name"; return 1; }
  fi
  if [ ! -f "$dir/evaluation/validation/summary.json" ]; then
    python evaluate.py --data_dir="$DATA" --split=validation --model="$dir/export" \
      --output_dir="$dir/evaluation/validation" >> "$RUNS/$name.out" 2>&1 || return 1
  fi
  # A final run (--select_on=none) holds no pairs out: it has no held-out report.
  if [ -f "$dir/holdout_ids.txt" ] && [ ! -f "$dir/evaluation/holdout/summary.json" ]; then
    python evaluate.py --data_dir="$DATA" --split=training --ids_file="$dir/holdout_ids.txt" \
      --model="$dir/export" --output_dir="$dir/evaluation/holdout" \
      >> "$RUNS/$name.out" 2>&1 || return 1
  fi
  log "done $name"
  if [ -n "$DOCS" ]; then
    python -m tools.study --collect="$dir" --study_dir="$DOCS" --data_dir="$DATA" || return 1
  fi
}
members_from() {  # name, run, run...: a --members run folder whose networks are finished runs,
  # copied in as member_0, member_1, ... (without their image cache); train.py --members then
  # checks that each records its network's settings and only writes the ensemble
  local name=$1; shift
  [ -n "$DRY" ] || [ -d "$RUNS/$name" ] && return 0
  local staging="$RUNS/.partial-$name" k=0
  rm -rf "$staging"; mkdir -p "$staging" || return 1
  for source in "$@"; do
    [ -f "$RUNS/$source/result.json" ] || { echo "run_study.sh: $source is not finished" >&2; return 1; }
    cp -a "$RUNS/$source" "$staging/member_$k" && rm -rf "$staging/member_$k/cache" || return 1
    k=$((k + 1))
  done
  mv "$staging" "$RUNS/$name" && log "assembled $name from $*"
}
case $GROUP in
  size_pair)  # 2026-11, from commit 6f07b25
    run shipped_recipe_seed1 --image_size=64 --lr_schedule=cosine --max_epochs=50 --patience=20 --seed=1 || exit 1
    run shipped_recipe_seed2 --image_size=64 --lr_schedule=cosine --max_epochs=50 --patience=20 --seed=2 || exit 1
    run size64_cosine30 --image_size=64 --lr_schedule=cosine --max_epochs=30 --patience=20 --seed=0 || exit 1
    run size128_cosine30 --image_size=128 --lr_schedule=cosine --max_epochs=30 --patience=20 --seed=0 || exit 1
    run paper_rule_64 --image_size=64 --lr_schedule=constant --max_epochs=100 --patience=20 --seed=0 || exit 1
    ;;
  size256)
    run size256_cosine50 --image_size=256 --lr_schedule=cosine --max_epochs=50 --patience=20 --seed=0 || exit 1
    ;;
  context)
    run context64_cosine50 --image_size=64 --context=image_pooling --lr_schedule=cosine --max_epochs=50 --patience=20 --seed=0 || exit 1
    run size128_cosine50 --image_size=128 --lr_schedule=cosine --max_epochs=50 --patience=20 --seed=0 || exit 1
    run context128_cosine50 --image_size=128 --context=image_pooling --lr_schedule=cosine --max_epochs=50 --patience=20 --seed=0 || exit 1
    ;;
  bfloat16)
    run shipped_recipe_bfloat16 --image_size=64 --mixed_precision=bfloat16 --lr_schedule=cosine --max_epochs=50 --patience=20 --seed=0 || exit 1
    ;;
  beyond_baseline)  # docs/reproduction.md, "Beyond the paper": the baseline with today's code
    for seed in 0 1; do
      run baseline64_seed$seed $BEYOND --seed=$seed || exit 1
    done
    ;;
  beyond_round1)  # the first training options, each against the baseline, seed 0 then seed 1
    for seed in 0 1; do
      run jaccard64_seed$seed $BEYOND --loss=soft_jaccard --seed=$seed || exit 1
      run color64_seed$seed $BEYOND --color_augment --seed=$seed || exit 1
      run scale64_seed$seed $BEYOND --scale_augment --seed=$seed || exit 1
    done
    for seed in 0 1; do
      run cedice64_seed$seed $BEYOND --loss=cross_entropy_dice --seed=$seed || exit 1
    done
    ;;
  beyond_round2)  # input size 96 (the receptive field covers 80% of it), without and with context
    for seed in 0 1; do
      run size96_seed$seed ${BEYOND/--image_size=64/--image_size=96} --seed=$seed || exit 1
      run context96_seed$seed ${BEYOND/--image_size=64/--image_size=96} --context=image_pooling --seed=$seed || exit 1
    done
    ;;
  beyond_round3)  # rule 6: the cross-entropy-plus-Dice loss (kept by rule 5) onto the best recipe
    # so far, an ensemble of two networks. The first draw of each arm is its two finished seeds
    # (networks 0 and 1) as one --members=2 run folder; it gained +0.0043 (-0.0022 to +0.0115),
    # so each arm gets a second draw: networks 2 and 3, trained as one --members=2 run
    members_from ensemble64_seeds01 baseline64_seed0 baseline64_seed1 || exit 1
    run ensemble64_seeds01 $BEYOND --members=2 --seed=0 || exit 1
    members_from cedice_ensemble64_seeds01 cedice64_seed0 cedice64_seed1 || exit 1
    run cedice_ensemble64_seeds01 $BEYOND --members=2 --loss=cross_entropy_dice --seed=0 || exit 1
    run ensemble64_seeds23 $BEYOND --members=2 --seed=2 || exit 1
    run cedice_ensemble64_seeds23 $BEYOND --members=2 --loss=cross_entropy_dice --seed=2 || exit 1
    ;;
  beyond_final)  # rule 8: the settled recipe, --recipe=dice_ensemble (config.RECIPES): first the
    # model shipped, trained on all 1800 training pairs for the 50 epochs of its cosine schedule
    # (--select_on=none: no pairs held out, no choice of epoch), then the recipe's third draw on the
    # 1620 pairs (networks 4 and 5; its first two are beyond_round3's)
    run dice_ensemble_all64_seed0 --recipe=dice_ensemble --select_on=none --seed=0 --mixed_precision=none || exit 1
    run cedice_ensemble64_seeds45 --recipe=dice_ensemble --seed=4 --mixed_precision=none || exit 1
    ;;
  size448)  # the paper's input size (section 3.2) on the 256x256 copies, resized on the fly;
    # bfloat16, as the machine that starts it has the units (AVX512_BF16 or AMX); a resumed
    # run keeps it on any machine (train.py refuses other run settings)
    run size448_cosine50 --image_size=448 --mixed_precision=bfloat16 --lr_schedule=cosine --max_epochs=50 --patience=20 --seed=0 || exit 1
    ;;
  *) echo "run_study.sh: unknown group $GROUP" >&2; exit 2 ;;
esac
[ -n "$DRY" ] || log "group $GROUP done"

#!/usr/bin/env bash
# Fine-tuning measured (docs/datasets.md): the shipped model fine-tuned on N of the 180 ISIC 2017
# training pairs it held out (data it never trained on), with train.py's documented command, then
# scored with the start on the rest of those pairs and on the validation split.
#
#   docs/fine_tuning/run_fine_tuning.sh DATA_DIR RUNS_DIR N SEED NAME [train.py flags...]
#
#   DATA_DIR  the ISIC 2017 Task 1 data in the official layout (isic2017_256 was used)
#   RUNS_DIR  where the clinic folders, runs and reports go, outside the repository
#   N SEED    how many held-out pairs make the "clinic" folder, drawn from SEED
#   NAME      the run's name; flags after it are added to the documented command
#
# Writes RUNS_DIR/clinic<N>_s<SEED>/ (images/ + masks/ links, rest_ids.txt), the start's reports
# RUNS_DIR/start_<N>_s<SEED>_{rest,validation}/ and the run's RUNS_DIR/<NAME>/evaluation/{rest,
# validation}/. Rerunning skips what is done.
set -euo pipefail
if [ $# -lt 5 ]; then sed -n '2,16p' "$0" >&2; exit 2; fi
DATA=$(realpath "$1") RUNS=$(realpath -m "$2") N=$3 SEED=$4 NAME=$5; shift 5
START=pretrained/lesionseg_isic2017
cd "$(dirname "$0")/../.."
CLINIC=$RUNS/clinic${N}_s$SEED
if [ ! -f "$CLINIC/rest_ids.txt" ]; then
  mkdir -p "$CLINIC/images" "$CLINIC/masks"
  python - "$START/holdout_ids.txt" "$N" "$SEED" "$CLINIC" <<'PY'
import random, sys
ids = [line.strip() for line in open(sys.argv[1]) if line.strip()]
random.Random(int(sys.argv[3])).shuffle(ids)
count, clinic = int(sys.argv[2]), sys.argv[4]
open(f"{clinic}/clinic_ids.txt", "w").write("".join(i + "\n" for i in sorted(ids[:count])))
open(f"{clinic}/rest_ids.txt", "w").write("".join(i + "\n" for i in sorted(ids[count:])))
PY
  while read -r id; do
    ln -sf "$DATA/ISIC-2017_Training_Data/$id.jpg" "$CLINIC/images/$id.jpg"
    ln -sf "$DATA/ISIC-2017_Training_Part1_GroundTruth/${id}_segmentation.png" "$CLINIC/masks/$id.png"
  done < "$CLINIC/clinic_ids.txt"
fi
score() {  # export, report folder, split flags...
  local model=$1 out=$2; shift 2
  mkdir -p "$(dirname "$out")"
  [ -f "$out/summary.json" ] || python evaluate.py --model="$model" --data_dir="$DATA" \
    --output_dir="$out" "$@" > "$out.log" 2>&1
}
score $START/export "$RUNS/start_${N}_s${SEED}_rest" --split=training --ids_file="$CLINIC/rest_ids.txt"
score $START/export "$RUNS/start_validation" --split=validation
RUN=$RUNS/$NAME
if [ ! -f "$RUN/result.json" ]; then
  python train.py --data_dir="$CLINIC" --init_from=$START --model_dir="$RUN" "$@" \
    > "$RUN.out" 2>&1
fi
score "$RUN/export" "$RUN/evaluation/rest" --split=training --ids_file="$CLINIC/rest_ids.txt"
score "$RUN/export" "$RUN/evaluation/validation" --split=validation
for split in rest validation; do
  start=$RUNS/start_${N}_s${SEED}_rest; [ $split = validation ] && start=$RUNS/start_validation
  echo "== $NAME, $split: fine-tuned minus start"
  python -m tools.compare "$RUN/evaluation/$split/per_image.csv" "$start/per_image.csv" | sed -n 2,3p
done

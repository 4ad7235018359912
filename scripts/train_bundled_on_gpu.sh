#!/usr/bin/env bash
# The bundled model's time-boxed GPU run, with the training-MFU benchmark, in one go (docs/model-card.md).
#
#   OUT=gpu-out DEADLINE=520 SCENES=100000 scripts/train_bundled_on_gpu.sh
#
# Renders the synthetic world on all cores while the GPU runs benchmarks/train_mfu.py, then trains
# configs/train/small-synth.yaml with a time box (max_minutes; the schedule follows the time, so the run ends
# annealed) sized so that everything ends DEADLINE seconds after the start: the data preparation is given PREPARE
# seconds and packing 30 (MINUTES, if set, is the time box instead). Should preparation run over, the run is stopped
# at the deadline and its last checkpoint packed. It writes to $OUT five files, small enough to bring back from a
# lent machine: the final model and up to three earlier checkpoints in bfloat16, one tar each (run-final.tar,
# run-checkpoint-N.tar, about 10 MB), and records.tar (log.jsonl, the run's config.json and summary.json, mfu.json,
# machine.txt). The data and full checkpoints stay in $WORK. Needs the repository's Python dependencies (src/ is put
# on PYTHONPATH, nothing is installed); TRAIN_OVERRIDES adds key=value overrides.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${OUT:-gpu-out}" && cd "${OUT:-gpu-out}" && pwd)
WORK=${WORK:-/tmp/allseeing-gpu}
SCENES=${SCENES:-100000}
DEADLINE=${DEADLINE:-520}
PREPARE=${PREPARE:-120}
WORKERS=${WORKERS:-$(($(nproc) - 2))}
SAVE_EVERY=${SAVE_EVERY:-1000}
export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
  HF_HUB_DISABLE_PROGRESS_BARS=1
mkdir -p "$WORK/records"
cd "$WORK"

source "$REPO/scripts/gpu_lib.sh"
machine_record records/machine.txt

# The bf16 model folders of the final weights and of earlier checkpoints, one tar each; runs however the script ends.
pack() {
  set +e
  [ -f run/log.jsonl ] && cp run/log.jsonl run/config.json records/
  tar -cf "$OUT/records.tar" records
  local folders=() checkpoints
  mapfile -t checkpoints < <(ls -d run/checkpoint-* 2>/dev/null | grep -v partial | sort -t- -k2 -n)
  local n=${#checkpoints[@]}
  for i in $((n / 4)) $((n / 2)) $((3 * n / 4)); do
    [ "$i" -gt 0 ] && [ "$i" -lt "$n" ] && folders+=("${checkpoints[$((i - 1))]}")
  done
  if [ -d run/final ]; then
    folders+=(run/final)
  elif [ "$n" -gt 0 ]; then  # stopped at the deadline: the last checkpoint is the result
    folders+=("${checkpoints[$((n - 1))]}")
  fi
  mapfile -t folders < <(printf '%s\n' "${folders[@]}" | sort -u)
  [ -n "${folders[0]}" ] || return  # nothing to pack (printf wrote one empty line)
  pack_bf16 "$OUT" "${folders[@]}"
  ls -la "$OUT"
}
trap pack EXIT

(timeout 180 python "$REPO/benchmarks/train_mfu.py" >records/mfu.json 2>mfu.err || tail -5 mfu.err) &
bench=$!
start=$SECONDS
python -m allseeing synth --out synth --n "$SCENES" --test 0 --seed 0 --workers "$(($(nproc) - 1))" >synth.json
echo "synth: $SCENES scenes in $((SECONDS - start)) s"
wait "$bench"
cat records/mfu.json

start=$SECONDS
left=$((DEADLINE - SECONDS - 30))
minutes=${MINUTES:-$(awk "BEGIN {print ($left - $PREPARE) / 60}")}
if awk "BEGIN {exit !($minutes <= 0)}"; then
  echo "train: no time left before the deadline ($left s for preparation and training; PREPARE=$PREPARE)" >&2
  exit 1
fi
echo "train: time box $minutes min, stopped in any case after $left s"
timeout "$left" python -m allseeing train "$REPO/configs/train/small-synth.yaml" output_dir=run max_minutes="$minutes" \
  num_workers="$WORKERS" save_every="$SAVE_EVERY" keep_checkpoints=100 ${TRAIN_OVERRIDES:-} >records/summary.json ||
  echo "train: stopped by the deadline (exit $?)"
echo "train: $((SECONDS - start)) s (data preparation included)"
tail -n 2 run/log.jsonl
cat records/summary.json

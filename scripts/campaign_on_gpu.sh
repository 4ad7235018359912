#!/usr/bin/env bash
# The campaign's language-model stages on a lent GPU, from carried weights, in one time-boxed call (docs/model-card.md).
#
#   OUT=gpu-out START=.gpu/start MINUTES=8.2 scripts/campaign_on_gpu.sh [PLAN]
#
# Copies START (a model folder: the CPU campaign's newest weights) to $WORK/start and runs the plan (default
# configs/campaign/small-gpu.yaml: render the synthetic world, then stages ground and mix) with
# `scripts/campaign.py run --minutes MINUTES`, which stops whatever runs at that limit. Then, however the run ended,
# it writes to $OUT what a lent machine can bring back (at most 8 files of 16 MB): up to three checkpoints of each
# stage (evenly spaced, the last or final one included) as bfloat16 model folders, one tar each (about 10 MB), and
# records.tar (campaign.log, each stage's log.jsonl, config.json and summary, machine.txt). Data and full
# checkpoints stay in $WORK. Needs the repository's Python dependencies (src/ is put on PYTHONPATH, nothing is
# installed).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PLAN=$(realpath "${1:-$REPO/configs/campaign/small-gpu.yaml}")
OUT=$(mkdir -p "${OUT:-gpu-out}" && cd "${OUT:-gpu-out}" && pwd)
START=$(realpath "${START:?START must name the model folder the first stage starts from}")
WORK=${WORK:-/tmp/allseeing-campaign}
MINUTES=${MINUTES:-8.2}
PER_STAGE=${PER_STAGE:-3}
export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
  HF_HUB_DISABLE_PROGRESS_BARS=1
mkdir -p "$WORK/records"
cd "$WORK"
rm -rf start && cp -r "$START" start  # a later call on the same machine may carry another START

source "$REPO/scripts/gpu_lib.sh"
machine_record records/machine.txt

# Checkpoints as bfloat16 model folders, one tar each, and the records; runs however the script ends, and makes it
# fail when anything could not be packed.
pack() {
  local rc=$? failed=0 stages folders=()
  set +e
  mapfile -t stages < <(python -c "import sys, yaml; [print(s['name']) for s in yaml.safe_load(open(sys.argv[1]))['stages']]" "$PLAN")
  [ ${#stages[@]} -gt 0 ] || { echo "pack: no stages read from $PLAN" >&2; failed=1; }
  for stage in "${stages[@]}"; do
    [ -d "$stage" ] || continue
    mkdir -p "records/$stage"
    cp "$stage"/log.jsonl "$stage"/config.json "records/$stage/" 2>/dev/null
    cp "$stage.summary.json" records/ 2>/dev/null
    local saved
    mapfile -t saved < <(ls -d "$stage"/checkpoint-* 2>/dev/null | grep -v partial | sort -V)
    if [ -d "$stage/final" ]; then  # the same weights as the last checkpoint (a run's last step always saves one)
      [ ${#saved[@]} -gt 0 ] && unset 'saved[-1]'
      saved+=("$stage/final")
    fi
    local n=${#saved[@]} i
    for ((i = 1; i <= PER_STAGE && i <= n; i++)); do  # evenly spaced, the last included
      folders+=("${saved[$(((i * n) / (PER_STAGE < n ? PER_STAGE : n) - 1))]}")
    done
  done
  cp campaign.log records/ 2>/dev/null
  tar -cf "$OUT/records.tar" records || failed=1
  if [ ${#folders[@]} -gt 0 ]; then
    mapfile -t folders < <(printf '%s\n' "${folders[@]}" | sort -u)
    pack_bf16 "$OUT" "${folders[@]}" || failed=1
  fi
  ls -la "$OUT"
  exit $((rc ? rc : failed))
}
trap pack EXIT

python "$REPO/scripts/campaign.py" run "$PLAN" --root "$WORK" --minutes "$MINUTES"
python "$REPO/scripts/campaign.py" status "$PLAN" --root "$WORK" | tee records/status.json

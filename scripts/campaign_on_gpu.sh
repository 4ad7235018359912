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
[ -e start ] || cp -r "$START" start

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__)"
  echo "cores $(nproc)"
} >records/machine.txt 2>&1
cat records/machine.txt

# Checkpoints as bfloat16 model folders, one tar each, and the records; runs however the script ends.
pack() {
  set +e
  local stages folders=()
  mapfile -t stages < <(python -c "import sys, yaml; [print(s['name']) for s in yaml.safe_load(open(sys.argv[1]))['stages']]" "$PLAN")
  for stage in "${stages[@]}"; do
    [ -d "$stage" ] || continue
    mkdir -p "records/$stage"
    cp "$stage"/log.jsonl "$stage"/config.json "records/$stage/" 2>/dev/null
    cp "$stage.summary.json" records/ 2>/dev/null
    local saved
    mapfile -t saved < <(ls -d "$stage"/checkpoint-* 2>/dev/null | grep -v partial | sort -t- -k2 -n)
    if [ -d "$stage/final" ]; then  # the final weights stand for the last checkpoint (at most save_every steps on)
      [ ${#saved[@]} -gt 0 ] && unset 'saved[-1]'
      saved+=("$stage/final")
    fi
    local n=${#saved[@]} i
    for ((i = 1; i <= PER_STAGE && i <= n; i++)); do  # evenly spaced, the last included
      folders+=("${saved[$(((i * n) / (PER_STAGE < n ? PER_STAGE : n) - 1))]}")
    done
  done
  cp campaign.log records/ 2>/dev/null
  tar -cf "$OUT/records.tar" records
  [ ${#folders[@]} -gt 0 ] || return
  mapfile -t folders < <(printf '%s\n' "${folders[@]}" | sort -u)
  python - "${folders[@]}" <<'EOF'  # one process for all: torch and transformers load once
import sys
from pathlib import Path

import torch

from allseeing.model.build import load, save

for folder in sys.argv[1:]:
    model, processor = load(folder)
    save(model.to(torch.bfloat16), processor, Path("bf16") / folder.replace("/", "-"))
EOF
  for folder in "${folders[@]}"; do
    name=${folder//\//-}
    tar -C bf16 -cf "$OUT/$name.tar" "$name"
  done
  ls -la "$OUT"
}
trap pack EXIT

python "$REPO/scripts/campaign.py" run "$PLAN" --root "$WORK" --minutes "$MINUTES"
python "$REPO/scripts/campaign.py" status "$PLAN" --root "$WORK" | tee records/status.json

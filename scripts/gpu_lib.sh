# Shared by the scripts that run on a lent GPU machine (campaign_on_gpu.sh, train_bundled_on_gpu.sh); sourced, with
# the repository's src/ on PYTHONPATH.

# machine_record FILE: the date, the GPU, the Python, torch and transformers versions, the cores and /dev/shm's size,
# written to FILE and shown.
machine_record() {
  {
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    python -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__)"
    echo "cores $(nproc); /dev/shm $(df -h /dev/shm | awk 'NR==2 {print $2}')"
  } >"$1" 2>&1
  cat "$1"
}

# pack_bf16 OUT FOLDER...: each model folder saved in bfloat16 under ./bf16 and tarred alone as OUT/NAME.tar, NAME
# being the folder's path with / turned into - (about 10 MB each: what a lent machine can bring back). Packs every
# folder it can and returns 1 when any could not be packed.
pack_bf16() {
  local out=$1 failed=0 folder name
  shift
  [ $# -gt 0 ] || return 0
  for folder in "$@"; do [ -n "$folder" ] || { echo "pack: an empty folder name" >&2; return 1; }; done
  # a folder left by an earlier call must not be tarred in place of one this call could not save
  for folder in "$@"; do rm -rf "bf16/${folder//\//-}"; done
  # one process for all: torch and transformers load once
  python - "$@" <<'PY' || failed=1
import shutil
import sys
from pathlib import Path

import torch

from allseeing.model.build import load, save

failed = 0
for folder in sys.argv[1:]:
    target = Path("bf16") / folder.replace("/", "-")
    try:
        model, processor = load(folder)
        save(model.to(torch.bfloat16), processor, target)
    except Exception as error:  # pack the others all the same, never a half-written copy
        print(f"pack: {folder}: {error}", file=sys.stderr)
        shutil.rmtree(target, ignore_errors=True)
        failed = 1
sys.exit(failed)
PY
  for folder in "$@"; do
    name=${folder//\//-}
    [ -d "bf16/$name" ] && { tar -C bf16 -cf "$out/$name.tar" "$name" || failed=1; }
  done
  return $failed
}

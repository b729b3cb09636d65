#!/usr/bin/env bash
# Several slices at once on one card, each its own process (issue #21). A packed sweep of small
# models leaves the card idle part of the time (Python, world rendering, compiling, DFR refits on
# the CPU cores), so two slices in one call may finish sooner than one after the other.
#
#   FFR_COMMIT=$(git rev-parse HEAD) bash scripts/device_slices.sh "PROFILE DATASET RATIO [MODE ...]" "..."
#   e.g. ... "paper shapes-binary 0.99 none usb asb ffr" "paper-labelfree shapes-binary 0.999"
#
# Each slice is scripts/device_slice.sh with its arguments, into $OUT/slice1, $OUT/slice2, ...
# Slices of one call must write different stores (profiles): each sends its store's records.
# After all end, each sweep.log gets the call's line: "call: N slices in S s, card share C s"
# (C = S x this slice's wall / the sum of the slices' walls), which slices.tsv keeps, so that the
# grids' measured GPU time adds up shares, not overlapping walls.
# Here, afterwards: bash scripts/import_slice.sh <files_at>/sliceI PROFILE, for each slice.
set -u
: "${FFR_COMMIT:?set FFR_COMMIT to the commit being run}"
: "${OUT:?run this on the device machine, where \$OUT is the output folder}"
if [ $# -lt 1 ]; then sed -n 6,7p "$0"; exit 2; fi
here=$(cd "$(dirname "$0")" && pwd)
declare -A profiles=()
for spec in "$@"; do
    read -r -a words <<< "$spec"
    if [ "${#words[@]}" -lt 3 ]; then echo "device_slices: '$spec': need PROFILE DATASET RATIO [MODE ...]" >&2; exit 2; fi
    if [ -n "${profiles[${words[0]}]:-}" ]; then
        echo "device_slices: profile ${words[0]} twice: slices of one call must write different stores" >&2; exit 2
    fi
    profiles[${words[0]}]=1
done
start=$(date +%s)
i=0
for spec in "$@"; do
    i=$((i + 1))
    read -r -a words <<< "$spec"
    mkdir -p "$OUT/slice$i"
    OUT="$OUT/slice$i" bash "$here/device_slice.sh" "${words[@]}" > "$OUT/slice$i.txt" 2>&1 &
done
wait
call=$(( $(date +%s) - start ))
total=0
walls=()
for j in $(seq 1 "$i"); do
    w=$(sed -n 's/^sweep exit [0-9]* after \([0-9]*\) s: .*/\1/p' "$OUT/slice$j/sweep.log" 2>/dev/null | tail -n 1)
    walls+=("${w:-0}")
    total=$(( total + ${w:-0} ))
done
for j in $(seq 1 "$i"); do
    w=${walls[$((j - 1))]}
    share=$(( total > 0 ? call * w / total : 0 ))
    echo "call: $i slices in $call s, card share $share s" >> "$OUT/slice$j/sweep.log"
    echo "slice$j: $(tail -n 2 "$OUT/slice$j/sweep.log" | head -n 1)"
done

#!/usr/bin/env bash
# The working tree a GPU call sends, slimmed for the composite calls (issue #23; docs/performance.md
# "The device's 64 MiB"): a call sends the tracked tree and what it carries, 64 MiB in all, and the
# composite calls carry wheels (26-44 MB) beside the composite generator's checkpoints. Folders no
# GPU call reads leave the working tree through git's sparse checkout, so git status stays clean
# and no commit can delete them, and come back after:
#   bash scripts/device_tree.sh slim [PATH ...]   # before the calls: figures/, the world's diffusion models,
#                                          # notebook 05's checkpoints (CPU and paper), and PATHs (e.g. the composite models for sweeps)
#   bash scripts/device_tree.sh full     # after them
#   bash scripts/device_tree.sh size     # what a call would send now, in MB (with .whl/, if there)
set -eu
away=(figures models/diffusion-binary models/diffusion-animals results/quick/checkpoints results/paper/checkpoints)
mb() { awk '{s += $1} END {printf "%.1f", s / 1e6}'; }
case "${1:-}" in
    slim)
        shift
        away+=("$@")
        patterns=('/*')
        for p in "${away[@]}"; do patterns+=("!/${p%/}/"); done
        git sparse-checkout set --no-cone "${patterns[@]}"
        echo "slim: ${away[*]} out of the working tree until 'bash scripts/device_tree.sh full'" ;;
    full)
        git sparse-checkout disable
        echo "full: every tracked file back" ;;
    size)
        tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null | mb)
        whl=$( { [ -d .whl ] && find .whl -type f -printf '%s\n'; } | mb)
        echo "tree ${tree} MB, .whl ${whl} MB; a call sends at most 67.1 MB (64 MiB)" ;;
    *) sed -n 7,10p "$0"; exit 2 ;;
esac

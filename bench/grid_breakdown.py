"""Where a packed sweep's training time went, from its run records alone (no GPU needed).

    python bench/grid_breakdown.py results/paper --ratio 0.999
    python bench/grid_breakdown.py bench/results/records_r0.999_compose_ahead_h200.tgz

Reads the records of a store (`<store>/runs/*.json`, or a .tgz of such files), keeps those
trained in packs (`--ratio`, `--dataset` narrow them down), and groups them into their packs: the
records of one pack share their `pack_seconds` (data, start, train). Per kind of pack (dataset,
mode, stage order, frozen BN) and in total it prints: packs, runs, image-steps (each run's
training-set size x its epochs), the packs' data / start / training seconds, the steady part of
training (20 x each pack's median epoch, for 20 epochs), what the first epochs cost above it
(cuDNN autotuning, graph captures, compilations), and image-steps per second over the training
and over its steady epochs. An epoch of a pack lasts as long as its slowest run's
(`history[e]['seconds']`). Writes bench/results/grid_breakdown_<name>.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tarfile
from collections import defaultdict
from pathlib import Path

from _common import RESULTS, machine_info, table, write_json

from ffr_lib.results import ResultStore


def load_records(source: Path) -> list[dict]:
    """Run records from a store folder (ResultStore: its runs/*.json) or a .tgz/.tar.gz of record files."""
    if source.is_dir():
        return ResultStore(source).records()
    if source.name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(source) as tar:
            return [json.load(tar.extractfile(m)) for m in tar.getmembers()
                    if m.isfile() and m.name.endswith(".json")]
    raise FileNotFoundError(f"{source}: neither a results folder nor a .tgz of run records")


def packs_of(records: list[dict]) -> list[list[dict]]:
    """The packed records grouped by pack (equal `pack_seconds`), each pack's records in a list."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        seconds = r.get("pack_seconds")
        if seconds and r.get("history") and r.get("train_counts"):
            groups[(seconds["data"], seconds["start"], seconds["train"])].append(r)
    return list(groups.values())


def pack_row(pack: list[dict]) -> dict:
    """One pack's seconds and image-steps; `steady_s`: epochs x its median epoch."""
    first = pack[0]
    epochs = min(len(r["history"]) for r in pack)
    wall = [max(r["history"][e]["seconds"] for r in pack) for e in range(epochs)]
    median = statistics.median(wall)
    c = first["config"]
    return {
        "kind": f"{c['dataset']} {c['mode']} {c['order']}{' frozen-bn' if c.get('freeze_bn') else ''}",
        "packs": 1,
        "runs": len(pack),
        "image_steps": sum(sum(r["train_counts"].values()) * len(r["history"]) for r in pack),
        "data_s": first["pack_seconds"]["data"],
        "start_s": first["pack_seconds"]["start"],
        "train_s": first["pack_seconds"]["train"],
        "steady_s": epochs * median,
        "first_epochs_excess_s": sum(wall) - epochs * median,
    }


def summed(rows: list[dict], kind: str) -> dict:
    keys = ("packs", "runs", "image_steps", "data_s", "start_s", "train_s", "steady_s", "first_epochs_excess_s")
    out = {"kind": kind, **{k: sum(r[k] for r in rows) for k in keys}}
    out["steps_per_s"] = out["image_steps"] / out["train_s"] if out["train_s"] else 0.0
    out["steady_steps_per_s"] = out["image_steps"] / out["steady_s"] if out["steady_s"] else 0.0
    return out


def breakdown(records: list[dict], ratios: list[float] | None = None, datasets: list[str] | None = None) -> list[dict]:
    """Rows per pack kind (sorted) and a last row 'all'."""
    kept = [r for r in records if (not ratios or r["config"]["ratio"] in ratios)
            and (not datasets or r["config"]["dataset"] in datasets)]
    rows = [pack_row(p) for p in packs_of(kept)]
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    return [summed(by_kind[k], k) for k in sorted(by_kind)] + [summed(rows, "all")]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("source", type=Path, help="a results folder or a .tgz of run records")
    p.add_argument("--ratio", type=float, nargs="+")
    p.add_argument("--dataset", nargs="+")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    rows = breakdown(load_records(args.source), args.ratio, args.dataset)
    text = table(rows, [("kind", "packs of"), ("packs", "packs"), ("runs", "runs"), ("image_steps", "image-steps"),
                        ("data_s", "data s"), ("start_s", "start s"), ("train_s", "train s"),
                        ("steady_s", "steady s"), ("first_epochs_excess_s", "first epochs +s"),
                        ("steps_per_s", "image-steps/s"), ("steady_steps_per_s", "steady image-steps/s")])
    name = args.source.name.removesuffix(".tgz").removesuffix(".tar.gz")
    if args.ratio:
        name += "_r" + "_".join(f"{r:g}" for r in args.ratio)
    payload = {"machine": machine_info("cpu"), "source": str(args.source), "ratios": args.ratio, "datasets": args.dataset, "rows": rows,
               "table": text}
    write_json(args.out or RESULTS / f"grid_breakdown_{name}.json", payload)
    return payload


if __name__ == "__main__":
    main()

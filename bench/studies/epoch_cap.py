"""What training fewer epochs would change in a grid's results, from its run records alone (no GPU).

    python bench/studies/epoch_cap.py results/paper --caps 5 8 10 12 15 20

The loop has no schedule (constant lr, one seeded generator a run), so a run trained for E
epochs is exactly the first E epochs of the same run trained longer, and it keeps the epoch
with the best validation WA among them. A record's result is therefore **the same** under a cap
of E epochs when its own best epoch is at most E and nothing it builds on changed (its stage-1
or stage-2 prefix, or the ERM model a DFR refit uses); it is **changed** when its own best epoch
is later and its inputs are the same, and then the validation WA it would select is known from
its history (the best of the first E epochs); it is **unknown** when something it builds on
changed. Image-steps: each trained record's training-set size x min(E, its epochs): the grid's
work with reuse, each trained node once. `--rate R` adds the minutes of steady training at R
image-steps/s. Prints one table and writes bench/results/epoch_cap_<name>.json (or --out).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import _bench  # noqa: F401 - bench/ on sys.path
from _common import RESULTS, machine_info, table, write_json
from grid_breakdown import load_records


def parents(record: dict) -> list[str]:
    """Hashes of the records this one builds on: its prefix stage and, for DFR, its ERM base."""
    return [h for h in (record.get("prefix"), record.get("base")) if h]


def best_val_wa(history: list[dict], cap: int) -> tuple[int, float]:
    """(1-based epoch, validation WA) of the first best epoch among the first `cap` (the loop's rule)."""
    best_epoch, best = 0, -1.0
    for row in history[:cap]:
        if row["val_wa"] > best:
            best_epoch, best = row["epoch"], row["val_wa"]
    return best_epoch, best


def outcomes(records: list[dict], cap: int) -> dict[str, dict]:
    """Per record hash: {'status': 'same' | 'changed' | 'unknown', 'val_wa_drop': float | None}.

    Raises KeyError naming the record whose prefix or base is missing from `records`."""
    by_hash = {r["hash"]: r for r in records}
    out: dict[str, dict] = {}

    def visit(h: str) -> dict:
        if h in out:
            return out[h]
        r = by_hash[h]
        for p in parents(r):
            if p not in by_hash:
                raise KeyError(f"record {h} ({r.get('label', '')}) builds on {p}, which is not among the records")
        upstream = [visit(p)["status"] for p in parents(r)]
        history = r.get("history") or []
        own_changed = bool(history) and r["best_epoch"] > cap
        if any(s != "same" for s in upstream):
            out[h] = {"status": "unknown", "val_wa_drop": None}
        elif own_changed:
            full = best_val_wa(history, len(history))[1]
            out[h] = {"status": "changed", "val_wa_drop": full - best_val_wa(history, cap)[1]}
        else:
            out[h] = {"status": "same", "val_wa_drop": 0.0}
        return out[h]

    for h in by_hash:
        visit(h)
    return out


def image_steps(records: list[dict], cap: int) -> int:
    """Images a grid trains with every stage cut to at most `cap` epochs (each trained record once)."""
    return sum(sum(r["train_counts"].values()) * min(cap, len(r["history"]))
               for r in records if r.get("history") and r.get("train_counts"))


def cap_rows(records: list[dict], caps: list[int], rate: float | None = None) -> list[dict]:
    """One row per cap: image-steps (and their share of the uncapped grid), records the same /
    changed / unknown, and the changed records' mean and largest drop of selected validation WA."""
    full = image_steps(records, max(len(r.get("history") or []) for r in records))
    rows = []
    for cap in caps:
        result = outcomes(records, cap)
        counts = Counter(o["status"] for o in result.values())
        drops = [o["val_wa_drop"] for o in result.values() if o["status"] == "changed"]
        steps = image_steps(records, cap)
        row = {"cap": cap, "image_steps": steps, "share": steps / full, "records": len(result),
               "same": counts["same"], "changed": counts["changed"], "unknown": counts["unknown"],
               "same_share": counts["same"] / len(result),
               "mean_drop": sum(drops) / len(drops) if drops else 0.0, "max_drop": max(drops, default=0.0)}
        if rate:
            row["steady_min"] = steps / rate / 60
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("source", type=Path, help="a results folder or a .tgz of run records")
    p.add_argument("--caps", type=int, nargs="+", default=[5, 8, 10, 12, 15, 20])
    p.add_argument("--rate", type=float, help="steady image-steps/s, to print minutes of steady training")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    records = [r for r in load_records(args.source) if r.get("status", "ok") == "ok"]
    rows = cap_rows(records, args.caps, args.rate)
    columns = [("cap", "epochs at most"), ("image_steps", "image-steps"), ("share", "share"),
               ("same", "records same"), ("changed", "changed"), ("unknown", "unknown"),
               ("mean_drop", "changed: mean val WA drop"), ("max_drop", "max drop")]
    if args.rate:
        columns.append(("steady_min", f"steady min at {args.rate:,.0f}/s"))
    text = table(rows, columns)
    name = args.source.name.removesuffix(".tgz").removesuffix(".tar.gz")
    payload = {"machine": machine_info("cpu"), "source": str(args.source), "rate": args.rate, "rows": rows,
               "table": text}
    write_json(args.out or RESULTS / f"epoch_cap_{name}.json", payload)
    return payload


if __name__ == "__main__":
    main()

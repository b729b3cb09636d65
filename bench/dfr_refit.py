"""DFR's refit (27 L1 liblinear fits) serially against a pool of processes (training/linear_fits.py),
on shortcut-like features at the size of shapes-animals' validation set (16 groups of 50, 256-d
features): seconds each, the ratio, and that the fits are equal.

    python bench/dfr_refit.py                       # processes: 2 and spare_cores() where more
    python bench/dfr_refit.py --processes 2 8 --repeats 3

The features are made, not a model's: a background direction 10x stronger than the class one
(what a model that learnt the shortcut gives, the case where liblinear converges slowly; the
H100 machine's sweep took a median 6.8 s a refit for shapes-animals' None, docs/performance.md).
The pool's processes are spawned once and kept; its first call is left out (--repeats after it).
Writes bench/results/dfr_refit_<cores>_cores.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import RESULTS, machine_info, table, write_json

from ffr_lib.training.linear_fits import spare_cores
from ffr_lib.training.methods.dfr import fit_dfr


def features(per_group: int = 50, dim: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), 4 * per_group)
    b = np.tile(np.repeat(np.arange(4), per_group), 4)
    x = rng.normal(size=(4, dim))[b] * 3 + rng.normal(size=(4, dim))[y] * 0.3 + rng.normal(size=(len(y), dim))
    return np.maximum(x, 0), y, y * 4 + b


def timed(x, y, g, processes: int, repeats: int) -> tuple[float, object]:
    fit_dfr(x, y, g, seed=0, processes=processes)  # warm: spawns the pool
    times, fit = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        fit = fit_dfr(x, y, g, seed=0, processes=processes)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=sorted({2, max(2, spare_cores())}))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    x, y, g = features()
    serial_s, serial = timed(x, y, g, 0, args.repeats)
    rows = [{"processes": 0, "seconds": serial_s, "ratio": 1.0, "equal": True}]
    for n in args.processes:
        s, fit = timed(x, y, g, n, args.repeats)
        equal = all(np.array_equal(getattr(fit, f), getattr(serial, f)) for f in ("coef", "intercept", "mean", "scale"))
        rows.append({"processes": n, "seconds": s, "ratio": serial_s / s, "equal": equal})
    table([{**r, "seconds": f"{r['seconds']:.2f}", "ratio": f"{r['ratio']:.2f}x", "equal": "yes" if r["equal"] else "NO"}
           for r in rows],
          [("processes", "processes (0: serial)"), ("seconds", "s a refit (median)"), ("ratio", "serial / this"),
           ("equal", "same fit")])
    info = machine_info("cpu")
    out = args.out or RESULTS / f"dfr_refit_{info['cpu_count']}_cores.json"
    write_json(out, {"benchmark": "dfr_refit", "shape": list(x.shape), "repeats": args.repeats, "rows": rows,
                     "machine": info})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

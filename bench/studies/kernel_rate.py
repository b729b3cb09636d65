"""How many small kernels a second the GPU runs when S streams each replay a CUDA graph of them.

    python bench/studies/kernel_rate.py --streams 1 9 27 --elements 1 1048576

A packed sweep replays, on each run's stream, one graph of ~260 kernels a step (128 images).
At the H200's plateau of ~415,000 image-steps/s that is ~840,000 kernels a second. This script
measures the ceiling of that kind of work with nothing but kernels: each stream's graph holds
`--kernels` in-place additions on its own bf16 tensor of `--elements` elements (1: launch and
scheduling only; 2^20, 2 MiB: about one batch-norm pass over a 128-image 16x16x32 activation).
If the plateau were the GPU's rate of starting kernels, the tiny kernels would level off near it.
"""

from __future__ import annotations

import argparse
import time

import _bench  # noqa: F401 - bench/ on sys.path
import torch
from _common import RESULTS, machine_info, table, write_json


def kernels_per_second(streams: int, elements: int, kernels: int, rounds: int) -> float:
    """Kernels/s of `streams` graphs (each `kernels` additions on (elements,) bf16) replayed `rounds` times."""
    tensors = [torch.zeros(elements, device="cuda", dtype=torch.bfloat16) for _ in range(streams)]
    side = [torch.cuda.Stream() for _ in range(streams)]
    graphs = []
    for x, s in zip(tensors, side):
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):  # warm-up outside capture
                x.add_(1)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, stream=s):
                for _ in range(kernels):
                    x.add_(1)
        graphs.append(g)
    torch.cuda.synchronize()

    def replay(n: int) -> None:
        main = torch.cuda.current_stream()
        for s in side:
            s.wait_stream(main)
        for _ in range(n):
            for g, s in zip(graphs, side):
                with torch.cuda.stream(s):
                    g.replay()
        for s in side:
            main.wait_stream(s)
        torch.cuda.synchronize()

    replay(2)
    start = time.perf_counter()
    replay(rounds)
    seconds = time.perf_counter() - start
    return streams * kernels * rounds / seconds


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--streams", type=int, nargs="+", default=[1, 9, 27])
    p.add_argument("--elements", type=int, nargs="+", default=[1, 2**20])
    p.add_argument("--kernels", type=int, default=260, help="kernels in each stream's graph (a run's step: ~260)")
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("kernel_rate.py measures a GPU: no CUDA device is visible")
    rows = []
    for elements in args.elements:
        for streams in args.streams:
            rate = kernels_per_second(streams, elements, args.kernels, args.rounds)
            rows.append({"elements": elements, "streams": streams, "kernels_per_s": rate})
            print(rows[-1], flush=True)
    print()
    text = table(rows, [("elements", "elements a kernel"), ("streams", "streams"), ("kernels_per_s", "kernels/s")])
    payload = {"machine": machine_info("cuda"), "kernels_a_graph": args.kernels, "rounds": args.rounds, "rows": rows,
               "table": text}
    write_json(args.out or RESULTS / "kernel_rate_cuda.json", payload)
    return payload


if __name__ == "__main__":
    main()

"""Kernel rate of K small runs trained at once: one K-group network against K ordinary networks
on parallel CUDA streams (and mixes: S streams, each a grouped pack of K/S runs), in one CUDA graph.

    python bench/studies/pack_streams.py --device cuda --runs 32 --layouts 1x32 4x8 32x1 --steps 60

A layout "SxP" is S streams, each training P runs widened into one P-group network (`grouped`
below, the packing ffr_lib used until 2026-11-25; P = 1 is an ordinary network,
whose convolutions have one group). ffr_lib.training.packing now trains a pack as Kx1. Every run has its own batch of 128 (index
batches from one uint8 world set on the device), bf16 autocast, channels_last, fused capturable
Adam; the whole step of all S streams is captured as one CUDA graph whose S branches the GPU may
run concurrently. images/s = K * 128 * steps / seconds of the replays (the step's kernels only:
no validation, no per-run lr rescale). `--freeze-bn` trains with batch norm in eval mode (FFR
stage 2's frozen-BN option).
"""

from __future__ import annotations

import argparse
import copy
import time

import _bench  # noqa: F401 - bench/ on sys.path
import torch
import torch.nn.functional as F
from _common import (
    RESULTS,
    default_device,
    machine_info,
    peak_memory_bytes,
    reset_peak_memory,
    table,
    write_json,
)

from ffr_lib.data.world import WorldConfig, world_split
from ffr_lib.training.models import Classifier, build_model

BATCH = 128


class GroupedLinear(torch.nn.Module):
    """P independent linear maps: (N, P*D) -> (N, P, C)."""

    def __init__(self, p: int, d: int, c: int) -> None:
        super().__init__()
        self.p = p
        self.weight = torch.nn.Parameter(torch.randn(p, c, d) / d**0.5)
        self.bias = torch.nn.Parameter(torch.zeros(p, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("npd,pcd->npc", x.view(x.shape[0], self.p, -1), self.weight) + self.bias


def grouped(model: Classifier, p: int) -> Classifier:
    """P runs of `model`'s architecture as one network: every convolution with P groups, every
    batch norm P times wider, P heads. Input (B, P*3, H, W), output (B, P, C)."""
    net = copy.deepcopy(model)
    for module in list(net.backbone.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.Conv2d):
                setattr(module, name, torch.nn.Conv2d(p * child.in_channels, p * child.out_channels, child.kernel_size,
                                                      child.stride, child.padding, groups=p * child.groups, bias=False))
            elif isinstance(child, torch.nn.BatchNorm2d):
                setattr(module, name, torch.nn.BatchNorm2d(p * child.num_features))
    net.head = GroupedLinear(p, model.head.in_features, model.head.out_features)
    net.mean, net.std = model.mean.repeat(1, p, 1, 1), model.std.repeat(1, p, 1, 1)
    return net


def stack_inputs(images: torch.Tensor) -> torch.Tensor:
    """uint8 (P, B, 3, H, W) -> (B, P*3, H, W), channels_last."""
    p, b, c, h, w = images.shape
    return images.transpose(0, 1).reshape(b, p * c, h, w).contiguous(memory_format=torch.channels_last)


class FrozenAffineBN(torch.nn.Module):
    """Eval-mode batch norm as one elementwise affine map from the running statistics (the
    weight and bias still train): y = x * scale + shift, scale = w / sqrt(var + eps)."""

    def __init__(self, bn: torch.nn.BatchNorm2d) -> None:
        super().__init__()
        self.bn = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        return torch.addcmul(shift.to(x.dtype).view(1, -1, 1, 1), x, scale.to(x.dtype).view(1, -1, 1, 1))


def affine_frozen(net: torch.nn.Module) -> torch.nn.Module:
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.BatchNorm2d):
                setattr(module, name, FrozenAffineBN(child))
    return net


def make_units(streams: int, per: int, device: str, freeze_bn: bool, compile_: bool = False,
               affine: bool = False) -> list[tuple]:
    units = []
    for s in range(streams):
        torch.manual_seed(s)
        net = grouped(build_model("resnet-small", 2, width=32), per).to(device)
        net = net.to(memory_format=torch.channels_last).train(not freeze_bn)
        if affine:
            net = affine_frozen(net)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5, fused=True, capturable=True)
        units.append((torch.compile(net) if compile_ else net, opt, torch.cuda.Stream(device)))
    return units


def rate(images: torch.Tensor, labels: torch.Tensor, streams: int, per: int, steps: int, freeze_bn: bool,
         compile_: bool = False, affine: bool = False) -> dict:
    device = images.device
    t_build = time.perf_counter()
    units = make_units(streams, per, str(device), freeze_bn, compile_, affine)
    k = streams * per
    gen = torch.Generator(device=device).manual_seed(0)
    idx = torch.randint(0, len(images), (k, BATCH), device=device, generator=gen)
    loss_out = torch.zeros(streams, device=device)

    def step() -> None:
        main = torch.cuda.current_stream()
        for s, (net, opt, stream) in enumerate(units):
            stream.wait_stream(main)
            with torch.cuda.stream(stream):
                rows = idx[s * per:(s + 1) * per]  # (P, B)
                opt.zero_grad(set_to_none=False)
                with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
                    logits = net(stack_inputs(images[rows]))  # (B, P, C)
                loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels[rows].T.reshape(-1))
                loss.backward()
                opt.step()
                loss_out[s].copy_(loss.detach())
        for _, _, stream in units:
            main.wait_stream(stream)

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    setup_s = time.perf_counter() - t_build
    reset_peak_memory(str(device))
    for _ in range(5):
        graph.replay()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        graph.replay()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    assert torch.isfinite(loss_out).all()
    return {"layout": f"{streams}x{per}" + ("+compile" if compile_ else "") + ("+affine" if affine else ""), "setup_s": setup_s, "streams": streams, "runs_per_stream": per, "runs": k,
            "freeze_bn": freeze_bn, "images_per_s": k * BATCH * steps / seconds,
            "ms_per_step": 1000 * seconds / steps, "peak_mib": peak_memory_bytes(str(device)) / 2**20}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default=default_device())
    p.add_argument("--layouts", nargs="+", default=["1x32", "2x16", "4x8", "8x4", "16x2", "32x1", "1x1", "8x1", "16x1"])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--freeze-bn", action="store_true")
    p.add_argument("--affine", nargs="*", default=[], help="layouts to run again with frozen BN as an affine map")
    p.add_argument("--compile", nargs="*", default=[], help="layouts to run again with torch.compile on each pack")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if not args.device.startswith("cuda"):
        raise SystemExit("pack_streams: needs a CUDA device (streams and graphs)")
    torch.backends.cudnn.benchmark = True
    data = world_split(WorldConfig(layout="binary", size=32), "train", progress=False)
    images, labels = data.images[:10000].to(args.device), data.y[:10000].to(args.device)
    rows = []
    for layout in args.layouts:
        s, per = (int(v) for v in layout.split("x"))
        rows.append(rate(images, labels, s, per, args.steps, args.freeze_bn))
        print(rows[-1], flush=True)
    for layout in args.affine:
        s, per = (int(v) for v in layout.split("x"))
        rows.append(rate(images, labels, s, per, args.steps, True, affine=True))
        print(rows[-1], flush=True)
    for layout in args.compile:
        s, per = (int(v) for v in layout.split("x"))
        rows.append(rate(images, labels, s, per, args.steps, args.freeze_bn, compile_=True))
        print(rows[-1], flush=True)
    base = next((r["images_per_s"] for r in rows if r["streams"] == 1 and r["runs_per_stream"] == max(
        x["runs"] for x in rows)), rows[0]["images_per_s"])
    for r in rows:
        r["x_grouped"] = r["images_per_s"] / base
    text = table(rows, [("layout", "streams x runs"), ("runs", "runs"), ("images_per_s", "images/s"),
                        ("x_grouped", "x one grouped pack"), ("ms_per_step", "ms/step"), ("setup_s", "setup s"), ("peak_mib", "peak MiB")])
    print(text)
    payload = {"machine": machine_info(args.device), "freeze_bn": args.freeze_bn, "steps": args.steps, "rows": rows,
               "table": text}
    write_json(args.out or RESULTS / f"pack_streams_cuda{'_frozen_bn' if args.freeze_bn else ''}.json", payload)
    return payload


if __name__ == "__main__":
    main()

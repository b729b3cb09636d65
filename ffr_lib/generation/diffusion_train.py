"""Training the small conditional diffusion model (generation/diffusion.py) on a benchmark's web
corpus, and `evaluate`: sanity numbers from its own samples (does it obey the scene token; how
much do class-only samples lean to each class's majority scene). `scripts/train_diffusion.py`
is the command."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.world import WorldConfig
from ..io import atomic_write_text, git_commit
from .diffusion import LOG_FILE, ConditionalDiffusion, DiffusionConfig, TrainConfig, scenes_of, web_split
from .diffusion_scenes import majority_share


def evaluate(
    model: ConditionalDiffusion, per_group: int = 64, per_class: int = 256, seed: int = 0, steps: int = 25,
    batch: int = 64, guidance: float = 1.0,
) -> dict:
    """Sanity numbers of a trained model, from its own samples: how often the scene read back
    (`classify_background`) from (y, b) requests equals the requested b (does it obey the scene
    token?), and the share of class-only samples on each class's majority scene (the web
    corpus has `web_majority`)."""
    spec = model.world.spec
    groups = spec.groups()
    y = np.repeat([g[0] for g in groups], per_group)
    b = np.repeat([g[1] for g in groups], per_group)
    asked = model.sample(y, b, seed, steps=steps, batch=batch, guidance=guidance)
    read = scenes_of(asked.images, model.world, y)
    yc = np.repeat(np.arange(len(spec.class_names)), per_class)
    free = model.sample(yc, None, seed + 1, steps=steps, batch=batch, start=len(y))
    per_group_agreement = {
        f"{spec.class_names[yi]}/{spec.bias_names[bi]}": float((read[(y == yi) & (b == bi)] == bi).mean())
        for yi, bi in groups
    }
    return {
        "scene_agreement": float((read == b).mean()),
        "scene_agreement_per_group": per_group_agreement,
        "class_only_majority_share": majority_share(free),
        "class_only_majority_share_per_class": {
            spec.class_names[k]: majority_share(free.subset(free.y == k)) for k in range(len(spec.class_names))
        },
        "web_majority": model.world.web_majority,
        "per_group": per_group,
        "per_class": per_class,
        "seed": seed,
        "steps": steps,
    }


def train(
    world: WorldConfig,
    config: DiffusionConfig,
    run: TrainConfig,
    out: str | Path,
    device: str = "cpu",
    progress: bool = True,
) -> ConditionalDiffusion:
    """Train on the world's web corpus (held on `device` as uint8); write the EMA model and a
    CSV log (step, loss, lr, images/s, elapsed) to `out`. bf16 autocast on CUDA."""
    out = Path(out)
    torch.manual_seed(run.seed)
    dev = torch.device(device)
    t_render = time.perf_counter()
    web = web_split(world, progress=progress)
    images, y, b = web.images.to(dev), web.y.to(dev), web.b.to(dev)
    t_render = time.perf_counter() - t_render
    model = ConditionalDiffusion(world, config).to(dev)
    steps_before = 0
    if run.init is not None:  # continue: the earlier run's (EMA) weights, a fresh optimiser
        earlier = ConditionalDiffusion.load(run.init, dev)
        model.unet.load_state_dict(earlier.unet.state_dict())
        steps_before = int(earlier.meta.get("steps_before", 0)) + int(earlier.meta.get("steps_done", 0))
    ema = copy.deepcopy(model.unet).requires_grad_(False)
    params = [p for p in model.unet.parameters() if p.requires_grad]
    ema_params = list(ema.parameters())
    opt = torch.optim.AdamW(params, lr=run.lr, weight_decay=run.weight_decay)
    ddpm = model.scheduler("ddpm")
    ddpm.alphas_cumprod = ddpm.alphas_cumprod.to(dev)
    gen = torch.Generator(dev).manual_seed(run.seed)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv algorithms once
    n_params = sum(p.numel() for p in params)
    hyper = {
        "train": asdict(run),
        "steps_before": steps_before,  # optimiser steps of the runs this one continues (--init)
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "n_params": n_params,
        "web_counts": web.count_array().tolist(),
        "commit": git_commit(),
        "torch": torch.__version__,
        "diffusers": __import__("diffusers").__version__,
    }
    rows = ["step,loss,lr,images_per_s,elapsed_s"]
    t0 = last_t = time.perf_counter()
    acc, acc_n, step = torch.zeros((), device=dev), 0, 0

    def checkpoint(done: int, stopped: str) -> None:
        saved = ConditionalDiffusion(world, config)
        saved.unet.load_state_dict(ema.state_dict())
        elapsed = time.perf_counter() - t0
        saved.save(out, {**hyper, "steps_done": done, "stopped": stopped, "train_seconds": round(elapsed, 1),
                         "render_seconds": round(t_render, 1), "log": LOG_FILE})
        atomic_write_text(out / LOG_FILE, "\n".join(rows) + "\n")

    bar = tqdm(range(run.steps), desc=f"train diffusion {world.layout}", disable=not progress)
    stopped = "steps"
    for step in bar:
        lr = run.lr * min(1.0, (step + 1) / max(run.warmup, 1))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, len(images), (run.batch,), generator=gen, device=dev)
        x = images[idx]
        if run.flip:
            flip = torch.rand(run.batch, generator=gen, device=dev) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = model.loss(x, y[idx], b[idx], ddpm, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, run.grad_clip)
        opt.step()
        decay = min(run.ema_decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1.0 - decay)
        acc += loss.detach()
        acc_n += 1
        done = step + 1
        if done % run.log_every == 0 or done == run.steps:
            now = time.perf_counter()
            mean = float(acc) / acc_n
            rows.append(f"{done},{mean:.6f},{lr:.3g},{acc_n * run.batch / (now - last_t):.1f},{now - t0:.1f}")
            bar.set_postfix(loss=f"{mean:.4f}")
            acc.zero_()
            acc_n, last_t = 0, now
            if not math.isfinite(mean):
                raise FloatingPointError(f"training loss is {mean} at step {done}; see {out / LOG_FILE}")
            if run.max_minutes is not None and now - t0 > 60 * run.max_minutes:
                stopped = f"max_minutes={run.max_minutes}"
                break
        if run.save_every and done % run.save_every == 0 and done < run.steps:
            checkpoint(done, "running")
    bar.close()
    checkpoint(done, stopped)
    return ConditionalDiffusion.load(out, dev)

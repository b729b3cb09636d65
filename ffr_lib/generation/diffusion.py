"""The embedded world's second generator: a small class- and bias-conditional diffusion model.

A diffusers `UNet2DModel` learns the world's "web" corpus (mildly biased, 70 / 30 within each
class) with DDPM; DDIM samples it. One class embedding per (class, scene) pair plus one
"no bias" token per class: label = y * (n_biases + 1) + b, or y * (n_biases + 1) + n_biases for
a class-only request. Training swaps the scene for "no bias" with probability `p_uncond_bias`,
so one model answers both `A photo of {bias} {class}` and `A photo of {class}`; class-only
samples then inherit the corpus's lean toward each class's majority scene, the way Stable
Diffusion's class-only prompts inherit the web's imbalances. Its artifacts and infidelities are
real ones, not designed (contrast `procedural.py`).

Class-only samples get their scene b from `classify_background` (colour statistics of the
border ring against the world's scene colours), since the model does not say which it drew.
Sampling is seeded per image (noise from (seed, index)) and every pass is padded to a fixed
batch, so a set made in pieces, or resumed, has the same bytes as one made at once (CPU).
Optional classifier-free guidance over the scene token (`guidance`, default 1 = off).
The composite benchmark (a CompositeConfig as `world`) is modelled the same way: its web corpus
(objects the real pools never use) trains it, and its texture classifier reads the scenes.
A checkpoint is a folder: `config.json` (world, layout names, model and training settings)
naming a `model-<sha>.safetensors` (EMA weights), each written atomically, config last.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.composite import CompositeConfig, composite_split
from ..data.grouped import SYNTHETIC, GroupedImages
from ..data.world import WorldConfig, world_split
from ..io import atomic_write_bytes, atomic_write_text
from .diffusion_scenes import classify_background

CONFIG_FILE = "config.json"
LOG_FILE = "train_log.csv"
FORMAT = "ffr-conditional-diffusion/1"
NO_BIAS = -1  # b of a class-only request (as synthetic_set.UNKNOWN_BIAS)
BENCHMARKS = {"shapes": WorldConfig, "composite": CompositeConfig}  # what a checkpoint's "world" is


def benchmark_of(world: WorldConfig | CompositeConfig) -> str:
    """'shapes' (the embedded world) or 'composite' (the composite benchmark)."""
    return "composite" if isinstance(world, CompositeConfig) else "shapes"


def dataset_of(world: WorldConfig | CompositeConfig) -> str:
    """The dataset name a checkpoint models: shapes-<layout> or composite-<layout>."""
    return f"{benchmark_of(world)}-{world.layout}"


def web_split(world: WorldConfig | CompositeConfig, progress: bool = False) -> GroupedImages:
    """The benchmark's web corpus (the generator's training data)."""
    if isinstance(world, CompositeConfig):
        return composite_split(world, "web")
    return world_split(world, "web", progress=progress)


def scenes_of(images: torch.Tensor, world: WorldConfig | CompositeConfig, y: np.ndarray | None = None) -> np.ndarray:
    """int64 (n,) scene of generated images: the world's by border colour (`classify_background`),
    the composite benchmark's by its texture classifier (generation.composite.scene_classifier)."""
    if isinstance(world, CompositeConfig):
        from .composite import scene_classifier

        return scene_classifier(world).predict(images, y)
    return classify_background(images, world, y)


@dataclass(frozen=True)
class DiffusionConfig:
    """The network and the noise process. The default is sized for CPU sampling: 1.1 M
    parameters (4.5 MB fp32), 0.5 GFLOP per image and DDIM step at 32 px."""

    block_out_channels: tuple[int, ...] = (32, 64, 64)  # channels per resolution level (32, 16, 8 px)
    layers_per_block: int = 1  # resnets per level (down path; the up path has one more)
    attention_levels: tuple[bool, ...] = (False, False, True)  # self-attention at these levels
    norm_num_groups: int = 16  # GroupNorm groups (divides every channel count)
    attention_head_dim: int = 32  # channels per attention head
    num_train_timesteps: int = 1000  # DDPM steps
    beta_schedule: str = "squaredcos_cap_v2"  # DDPM noise schedule
    prediction_type: str = "v_prediction"  # what the UNet predicts (epsilon is ill-posed at the zero terminal SNR)
    p_uncond_bias: float = 0.2  # training: share of labels whose scene becomes "no bias"

    def __post_init__(self) -> None:
        if len(self.attention_levels) != len(self.block_out_channels):
            raise ValueError(
                f"attention_levels has {len(self.attention_levels)} entries but block_out_channels "
                f"{len(self.block_out_channels)}"
            )
        if not 0.0 <= self.p_uncond_bias <= 1.0:
            raise ValueError(f"p_uncond_bias must be in [0, 1], got {self.p_uncond_bias}")


@dataclass(frozen=True)
class TrainConfig:
    """One training run on the web corpus."""

    steps: int = 20000  # optimiser steps
    batch: int = 256  # images per step
    lr: float = 2e-4  # AdamW learning rate, constant after warm-up
    warmup: int = 500  # linear warm-up steps
    weight_decay: float = 0.0  # AdamW weight decay
    ema_decay: float = 0.999  # EMA of the weights (the saved model)
    grad_clip: float = 1.0  # max global gradient norm
    flip: bool = True  # random horizontal flips (the world is mirror-symmetric in law)
    seed: int = 0  # batches, noise, timesteps, label drop-out
    log_every: int = 100  # steps between log rows
    save_every: int = 5000  # steps between checkpoints (0 = only at the end)
    max_minutes: float | None = None  # stop early (and save) after this wall time
    init: str | None = None  # start from this checkpoint's weights (continue a training run)

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")


def _unet(world: WorldConfig, config: DiffusionConfig):
    from diffusers import UNet2DModel

    spec = world.spec
    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in config.attention_levels)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.attention_levels))
    return UNet2DModel(
        sample_size=world.size,
        in_channels=3,
        out_channels=3,
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=config.norm_num_groups,
        attention_head_dim=config.attention_head_dim,
        num_class_embeds=len(spec.class_names) * (len(spec.bias_names) + 1),
    )


def noise_for(seed: int, index: np.ndarray, size: int) -> torch.Tensor:
    """float32 (n, 3, size, size) starting noise; image i's from its own generator seeded by
    (seed, index[i]), so any image of a set can be regenerated alone or a set resumed."""
    out = torch.empty((len(index), 3, size, size))
    for k, i in enumerate(np.asarray(index, dtype=np.int64)):
        state = np.random.SeedSequence([int(seed), 0xD1FF, int(i)]).generate_state(2, np.uint32)
        gen = torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))
        out[k] = torch.randn((3, size, size), generator=gen)
    return out


def _pad(x: torch.Tensor, n: int) -> torch.Tensor:
    """x with n zero rows appended (first axis)."""
    return torch.cat([x, x.new_zeros((n, *x.shape[1:]))]) if n else x


class ConditionalDiffusion(nn.Module):
    """UNet2DModel conditioned on (class, scene or "no bias"), with its world and settings."""

    def __init__(self, world: WorldConfig, config: DiffusionConfig = DiffusionConfig(), meta: dict | None = None):
        super().__init__()
        self.world = world
        self.config = config
        self.meta = dict(meta or {})  # training settings, log summary, provenance
        self.unet = _unet(world, config)

    # -- labels ------------------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return len(self.world.spec.class_names)

    @property
    def n_biases(self) -> int:
        return len(self.world.spec.bias_names)

    def labels(self, y: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        """int64 (n,) class-embedding index of (y, b); b None (all) or -1 (that row) = "no bias"."""
        y = torch.as_tensor(y, dtype=torch.int64)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
            raise ValueError(f"y must be in [0, {self.n_classes}), got values {int(y.min())}..{int(y.max())}")
        b = torch.full_like(y, NO_BIAS) if b is None else torch.as_tensor(b, dtype=torch.int64, device=y.device)
        if b.shape != y.shape:
            raise ValueError(f"b has shape {tuple(b.shape)} but y {tuple(y.shape)}")
        if b.numel() and (int(b.min()) < NO_BIAS or int(b.max()) >= self.n_biases):
            raise ValueError(f"b must be in [0, {self.n_biases}) or {NO_BIAS} (no bias), got values {int(b.min())}..{int(b.max())}")
        return y * (self.n_biases + 1) + torch.where(b == NO_BIAS, self.n_biases, b)

    # -- training ----------------------------------------------------------------------------
    def scheduler(self, kind: str = "ddpm"):
        from diffusers import DDIMScheduler, DDPMScheduler

        kw = dict(
            num_train_timesteps=self.config.num_train_timesteps,
            beta_schedule=self.config.beta_schedule,
            prediction_type=self.config.prediction_type,
            clip_sample=True,
        )
        if kind == "ddpm":
            return DDPMScheduler(**kw)
        return DDIMScheduler(**kw, timestep_spacing="trailing", set_alpha_to_one=True)

    def loss(self, images: torch.Tensor, y: torch.Tensor, b: torch.Tensor, ddpm, gen: torch.Generator) -> torch.Tensor:
        """DDPM loss of a batch: images uint8 (n, 3, H, W) on the model's device; scenes dropped
        to "no bias" with probability p_uncond_bias; random draws from `gen`."""
        n, dev = images.shape[0], images.device
        x0 = images.float() / 127.5 - 1.0
        noise = torch.randn(x0.shape, generator=gen, device=dev)
        t = torch.randint(0, self.config.num_train_timesteps, (n,), generator=gen, device=dev)
        drop = torch.rand(n, generator=gen, device=dev) < self.config.p_uncond_bias
        labels = y * (self.n_biases + 1) + torch.where(drop, torch.full_like(b, self.n_biases), b)
        xt = ddpm.add_noise(x0, noise, t)
        target = noise if self.config.prediction_type == "epsilon" else ddpm.get_velocity(x0, noise, t)
        pred = self.unet(xt, t, class_labels=labels).sample
        return torch.nn.functional.mse_loss(pred.float(), target)

    # -- sampling ----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        y: np.ndarray,
        b: np.ndarray | None,
        seed: int,
        steps: int = 25,
        batch: int = 64,
        start: int = 0,
        guidance: float = 1.0,
        index: np.ndarray | None = None,
        progress: bool = False,
    ) -> GroupedImages:
        """DDIM samples (eta 0) for classes y (n,) and scenes b (n,) (None, or -1 in a row:
        class-only, the "no bias" token).

        Image k starts from `noise_for(seed, index[k])` (index default: start, start + 1, ...)
        and every pass is padded to `batch` rows, so on one machine its bytes depend on (model,
        y_k, b_k, seed, index[k], steps, batch, guidance) only: a set made in pieces or resumed
        equals one made at once. With guidance w != 1, scene requests use classifier-free
        guidance over the scene token: eps = eps(y, none) + w * (eps(y, b) - eps(y, none)) (twice
        the cost). Class-only rows get b from `classify_background`. Returns GroupedImages,
        g = synthetic, uint8 (n, 3, H, W) images.
        """
        self.unet.eval()
        dev = next(self.unet.parameters()).device
        y = np.asarray(y, dtype=np.int64)
        asked = np.full(len(y), NO_BIAS, dtype=np.int64) if b is None else np.asarray(b, dtype=np.int64)
        index = start + np.arange(len(y)) if index is None else np.asarray(index, dtype=np.int64)
        if index.shape != y.shape:
            raise ValueError(f"index has shape {index.shape} but y {y.shape}")
        labels = self.labels(torch.from_numpy(y), torch.from_numpy(asked))
        plain = self.labels(torch.from_numpy(y), None)
        ddim = self.scheduler("ddim")
        ddim.set_timesteps(steps)
        s = self.world.size
        images = torch.empty((len(y), 3, s, s), dtype=torch.uint8)
        guided = guidance != 1.0 and bool((asked != NO_BIAS).any())
        bar = tqdm(total=len(y), desc="diffusion sample", disable=not progress, leave=False)
        for lo in range(0, len(y), batch):
            hi = min(lo + batch, len(y))
            pad = batch - (hi - lo)  # every pass has `batch` rows, so bytes never depend on the split
            x = _pad(noise_for(seed, index[lo:hi], s), pad).to(dev)
            lab, unc = _pad(labels[lo:hi], pad).to(dev), _pad(plain[lo:hi], pad).to(dev)
            for t in ddim.timesteps:
                if guided:
                    eps_c, eps_u = self.unet(torch.cat([x, x]), t, class_labels=torch.cat([lab, unc])).sample.chunk(2)
                    eps = eps_u + guidance * (eps_c - eps_u)
                else:
                    eps = self.unet(x, t, class_labels=lab).sample
                x = ddim.step(eps, t, x, eta=0.0).prev_sample
            images[lo:hi] = ((x[: hi - lo].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
            bar.update(hi - lo)
        bar.close()
        spec = self.world.spec
        class_only = asked == NO_BIAS
        b_out = asked.copy()
        if class_only.any():
            b_out[class_only] = scenes_of(images[torch.from_numpy(class_only)], self.world, y[class_only])
        info = {
            "generator": "diffusion",
            "seed": seed,
            "start": int(index[0]) if len(index) else start,
            "steps": steps,
            "batch": batch,
            "guidance": guidance,
            "bias": "classified" if class_only.all() else "requested" if not class_only.any() else "mixed",
            "model": self.meta.get("path", ""),
        }
        return GroupedImages.from_arrays(images, y, b_out, spec.class_names, spec.bias_names, g=SYNTHETIC, info=info)

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        """Write the checkpoint folder: weights under a content name, then config.json naming
        them (both atomic), then remove stale weights; a killed save leaves the old one whole."""
        from safetensors.torch import save

        path = Path(path)
        state = {k: v.detach().cpu().contiguous() for k, v in self.unet.state_dict().items()}
        blob = save(state)
        name = f"model-{hashlib.sha256(blob).hexdigest()[:12]}.safetensors"
        atomic_write_bytes(path / name, blob)
        spec = self.world.spec
        doc = {
            "format": FORMAT,
            "weights": name,
            "benchmark": benchmark_of(self.world),
            "world": asdict(self.world),
            "layout": spec.name,
            "class_names": list(spec.class_names),
            "bias_names": list(spec.bias_names),
            "support": [list(s) for s in spec.support],
            "label_rule": "y * (n_biases + 1) + (b, or n_biases for no bias)",
            "model": asdict(self.config),
            "unet": dict(self.unet.config),
            "meta": {**self.meta, **(meta or {})},
        }
        atomic_write_text(path / CONFIG_FILE, json.dumps(doc, indent=2, default=str) + "\n")
        for old in path.glob("model-*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> ConditionalDiffusion:
        """Read a checkpoint folder written by `save`."""
        from safetensors.torch import load_file

        path = Path(path)
        cfg_path = path / CONFIG_FILE
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{cfg_path} not found: not a diffusion checkpoint folder")
        doc = json.loads(cfg_path.read_text())
        if doc.get("format") != FORMAT:
            raise ValueError(f"{cfg_path}: field 'format' is {doc.get('format')!r}, expected {FORMAT!r}")
        kind = doc.get("benchmark", "shapes")  # checkpoints from before the composite benchmark: the world
        if kind not in BENCHMARKS:
            raise ValueError(f"{cfg_path}: field 'benchmark' is {kind!r}, expected one of {', '.join(BENCHMARKS)}")
        world = BENCHMARKS[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in doc["world"].items()})
        model_cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in doc["model"].items()}
        model = cls(world, DiffusionConfig(**model_cfg), meta={**doc.get("meta", {}), "path": str(path)})
        weights = path / doc["weights"]
        if not weights.is_file():
            raise FileNotFoundError(f"{cfg_path} names weights {doc['weights']!r}, missing from {path}")
        model.unet.load_state_dict(load_file(str(weights)))
        return model.to(device).eval()


# -- the generator interface ---------------------------------------------------------------------
@dataclass
class DiffusionGenerator:
    """A trained checkpoint behind ProceduralGenerator's `generate` interface."""

    path: str | Path
    device: str = "cpu"
    steps: int = 25  # DDIM steps
    batch: int = 64  # images per forward pass (fixes the bytes: keep it for a resumed set)
    guidance: float = 1.0  # classifier-free guidance over the scene token (1 = none)
    model: ConditionalDiffusion = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.model = ConditionalDiffusion.load(self.path, self.device)

    @property
    def world(self) -> WorldConfig | CompositeConfig:
        return self.model.world

    def generate(
        self, y: np.ndarray, b: np.ndarray | None, seed: int, start: int = 0, progress: bool = False
    ) -> GroupedImages:
        """Images for labels y and scenes b (None = class-only); image i is a function of
        (checkpoint, settings, seed, start + i, its labels) on one machine (see `sample`)."""
        out = self.model.sample(
            y, b, seed, steps=self.steps, batch=self.batch, start=start, guidance=self.guidance, progress=progress
        )
        out.info["model"] = str(self.path)
        return out

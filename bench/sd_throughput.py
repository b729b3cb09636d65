"""Stable Diffusion v1.4 generation throughput: the real architecture with random weights.

Speed does not depend on weight values, so the pipeline is built here from the published v1.4
configs (UNet, VAE, CLIP text encoder, PNDM scheduler) with random initialisation: no download,
any machine. Measured: images/s at 512 px, fp16 on CUDA (fp32 on CPU), guidance 7.5,
output_type="np", attention through diffusers' default processor on torch 2
(AttnProcessor2_0 = torch's scaled_dot_product_attention; recorded in the JSON), for

- ours:         PNDM (the model's default) through ffr's StableDiffusionSource.run (one CPU
                generator per image), every --steps x --batches;
- ours-dpm++:   the same with DPM-Solver++ (SDConfig.scheduler='dpm++'), --dpm-steps x --batches;
- authors:      PNDM, 10 prompts per call, no per-image seeds, as the official code called it
                (OFFICIAL_CODE.md): 50 steps for animals, 25 for faces (one row per --steps).

Each row is compared with the authors' row of the same steps (PNDM rows) or with their
longest-step row, 50 by default (DPM-Solver++ rows: the substitute it is offered for).

Image QUALITY is not measured here (random weights). The case for DPM-Solver++ at 20-25 steps is
diffusers' documentation: "Empirically, DPMSolver sampling with only 20 steps can generate
high-quality samples" (QUALITY_CLAIM below; bench/SD_NOTES.md says more).

    python bench/sd_throughput.py --device cuda --batches 1 8 32 --steps 50 25 --repeats 3
    python bench/sd_throughput.py --tiny --device cpu --batches 1 2 --steps 2 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from _common import machine_info, peak_memory_bytes, reset_peak_memory, synchronize, table, write_json

# Published configs of CompVis/stable-diffusion-v1-4 (Hugging Face model card; unet/config.json,
# vae/config.json, text_encoder/config.json = openai/clip-vit-large-patch14's text tower,
# scheduler/scheduler_config.json). Only architecture fields; the rest are diffusers' defaults.
UNET_V1_4 = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-05,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
VAE_V1_4 = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
TEXT_ENCODER_V1_4 = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-05,
    "projection_dim": 768,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
SCHEDULER_V1_4 = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}
# --tiny: the same block types, drastically narrower, at 64 px (8x8 latents): seconds on a CPU.
TINY = {
    "unet": {"block_out_channels": [16, 16, 32, 32], "layers_per_block": 1, "norm_num_groups": 8,
             "cross_attention_dim": 32, "attention_head_dim": 2, "sample_size": 8},
    "vae": {"block_out_channels": [8, 8, 16, 16], "layers_per_block": 1, "norm_num_groups": 8, "sample_size": 64},
    "text_encoder": {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "projection_dim": 32},
}  # fmt: skip
QUALITY_CLAIM = (
    "Image quality is NOT measured by this benchmark (random weights). diffusers' docs: 'Empirically, "
    "DPMSolver sampling with only 20 steps can generate high-quality samples, and it can generate quite good "
    "samples even in 10 steps.' https://huggingface.co/docs/diffusers/api/schedulers/multistep_dpm_solver"
)
GUIDANCE = 7.5
AUTHORS_BATCH = 10  # prompts per call in the official code (--authors-batch changes it, e.g. for a CPU check)
AUTHORS_TASK = {50: "animals", 25: "faces"}  # their steps per dataset family
PROMPTS = [
    "a photo of golden retriever in park",
    "a photo of chihuahua in living room",
    "a photo of mallard in lake",
    "a photo of sparrow in grass",
    "a headshot of Female celebrity Smiling",
    "a headshot of a human Male baby",
]


@dataclass(frozen=True)
class Setting:
    """One timed configuration; `reference` names the authors' row it is compared with."""

    name: str  # 'ours', 'ours-dpm++', 'authors-animals', 'authors-faces', 'authors-<steps>'
    scheduler: str  # SDConfig.scheduler value: a diffusers class name or 'dpm++'
    steps: int
    batch: int
    per_image_seeds: bool  # True: StableDiffusionSource.run (ours); False: a plain pipeline call
    reference: str  # name of an authors' setting


def authors_name(steps: int) -> str:
    return f"authors-{AUTHORS_TASK.get(steps, steps)}"


def plan(
    batches: Sequence[int], steps: Sequence[int], dpm_steps: Sequence[int], authors_batch: int = AUTHORS_BATCH
) -> list[Setting]:
    """Authors' rows first (one per `steps`), then ours (PNDM) and ours with DPM-Solver++."""
    longest = authors_name(max(steps))
    rows = [Setting(authors_name(s), "PNDMScheduler", s, authors_batch, False, authors_name(s)) for s in steps]
    rows += [Setting("ours", "PNDMScheduler", s, b, True, authors_name(s)) for s in steps for b in batches]
    rows += [Setting("ours-dpm++", "dpm++", s, b, True, longest) for s in dpm_steps for b in batches]
    return rows


def tokenizer(folder: Path, vocab_size: int):
    """A CLIP tokenizer over single letters (valid ids < vocab_size). Built from files in a folder:
    transformers 5 ignores vocab_file/merges_file given to the CLIPTokenizer constructor."""
    import transformers

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for ch in "abcdefghijklmnopqrstuvwxyz":
            vocab[ch + suffix] = len(vocab)
    assert len(vocab) <= vocab_size
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77}))
    return transformers.CLIPTokenizer.from_pretrained(folder)


def configs(tiny: bool) -> dict[str, dict]:
    """The component configs: v1.4's, or the tiny ones derived from them."""
    full = {"unet": UNET_V1_4, "vae": VAE_V1_4, "text_encoder": TEXT_ENCODER_V1_4}
    return {k: {**v, **(TINY[k] if tiny else {})} for k, v in full.items()} | {"scheduler": dict(SCHEDULER_V1_4)}


def build_pipeline(tiny: bool, device: str, dtype: torch.dtype):
    """StableDiffusionPipeline with v1.4's architecture (or the tiny one), random weights, on `device`."""
    import diffusers
    import transformers

    cfg = configs(tiny)
    torch.manual_seed(0)

    def place(module):  # models are built in float32; a float32 .to(dtype) only makes diffusers warn
        module = module.to(device)
        return module if dtype == torch.float32 else module.to(dtype)

    unet = place(diffusers.UNet2DConditionModel(**cfg["unet"]))
    vae = place(diffusers.AutoencoderKL(**cfg["vae"]))
    text = place(transformers.CLIPTextModel(transformers.CLIPTextConfig(**cfg["text_encoder"])))
    with tempfile.TemporaryDirectory() as tmp:
        tok = tokenizer(Path(tmp), cfg["text_encoder"]["vocab_size"])
    pipe = diffusers.StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text, tokenizer=tok,
        scheduler=diffusers.PNDMScheduler.from_config(cfg["scheduler"]),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def attention_processors(pipe) -> list[str]:
    """Class names of the UNet's and VAE's attention processors (AttnProcessor2_0 = SDPA)."""
    names = {type(p).__name__ for m in (pipe.unet, pipe.vae) for p in m.attn_processors.values()}
    return sorted(names)


def time_setting(pipe, s: Setting, resolution: int, repeats: int, device: str) -> dict:
    """Warm-up call, then `repeats` timed calls of `s`; images/s = batch * repeats / seconds."""
    from ffr_lib.generation.stable_diffusion import SDConfig, StableDiffusionSource, make_scheduler

    pipe.scheduler = make_scheduler(s.scheduler, SCHEDULER_V1_4)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(s.batch)]
    if s.per_image_seeds:
        source = StableDiffusionSource(
            SDConfig(steps=s.steps, guidance=GUIDANCE, resolution=resolution, device=device), pipeline=pipe
        )

        def call(k: int) -> None:
            source.run(prompts, [1000 * k + i for i in range(s.batch)])
    else:

        def call(k: int) -> None:
            with torch.inference_mode():
                pipe(prompt=prompts, num_inference_steps=s.steps, guidance_scale=GUIDANCE, height=resolution,
                     width=resolution, output_type="np")  # fmt: skip

    row = asdict(s) | {"scheduler_class": type(pipe.scheduler).__name__}
    reset_peak_memory(device)
    try:
        call(0)  # warm-up
        seconds = []
        for k in range(repeats):
            synchronize(device)
            t0 = time.perf_counter()
            call(k + 1)
            synchronize(device)
            seconds.append(time.perf_counter() - t0)
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        return row | {"images_per_s": None, "seconds": [], "peak_memory_gib": None, "error": f"out of memory: {err}"}
    return row | {
        "images_per_s": s.batch * repeats / sum(seconds),
        "seconds": seconds,
        "peak_memory_gib": peak_memory_bytes(device) / 2**30,
        "error": None,
    }


def with_ratios(rows: list[dict]) -> list[dict]:
    """Adds `ratio_vs_authors`: images/s over that of the row's reference authors' setting."""
    ref = {r["name"]: r["images_per_s"] for r in rows if r["name"].startswith("authors")}
    out = []
    for r in rows:
        base = ref.get(r["reference"])
        ratio = r["images_per_s"] / base if r["images_per_s"] and base else None
        out.append(r | {"ratio_vs_authors": ratio})
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda if visible)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32], help="prompts per call (ours)")
    p.add_argument("--steps", type=int, nargs="+", default=[50, 25], help="PNDM steps (ours and the authors')")
    p.add_argument("--dpm-steps", type=int, nargs="*", default=[20, 25], help="DPM-Solver++ steps (none: skip)")
    p.add_argument("--authors-batch", type=int, default=AUTHORS_BATCH, help="prompts per call, authors' rows")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per setting, after one warm-up call")
    p.add_argument("--resolution", type=int, help="image side in px (default 512, 64 with --tiny)")
    p.add_argument("--tiny", action="store_true", help="drastically shrunk architecture at 64 px (CPU smoke run)")
    p.add_argument("--out", type=Path, help="JSON path (default bench/results/sd_throughput_<device>[_tiny].json)")
    args = p.parse_args(argv)
    if min([args.repeats, args.authors_batch, *args.batches, *args.steps, *args.dpm_steps]) < 1:
        p.error("--repeats, --authors-batch, --batches, --steps and --dpm-steps must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from _common import RESULTS, default_device, is_cuda

    args = parse_args(argv)
    device = args.device or default_device()
    dtype = torch.float16 if is_cuda(device) else torch.float32
    resolution = args.resolution or (64 if args.tiny else 512)
    out = args.out or RESULTS / f"sd_throughput_{device.replace(':', '')}{'_tiny' if args.tiny else ''}.json"

    t0 = time.perf_counter()
    pipe = build_pipeline(args.tiny, device, dtype)
    processors = attention_processors(pipe)
    print(f"built {'tiny' if args.tiny else 'v1.4'} pipeline (random weights) on {device} in "
          f"{time.perf_counter() - t0:.1f} s; attention: {', '.join(processors)}")  # fmt: skip
    import diffusers
    import transformers

    machine = machine_info(device)
    if argv is not None:  # called in-process: sys.argv is the caller's
        machine["command"] = " ".join(["python", "bench/sd_throughput.py", *map(str, argv)])
    payload = {
        "benchmark": "sd_throughput",
        "complete": False,  # True once every setting is timed (the JSON is rewritten after each one)
        "tiny": bool(args.tiny),
        "model": ("tiny SD-like architecture" if args.tiny else "Stable Diffusion v1.4 architecture")
        + ", random weights (speed does not depend on weight values)",
        "dtype": str(dtype).removeprefix("torch."),
        "resolution": resolution,
        "guidance": GUIDANCE,
        "output_type": "np",
        "repeats": args.repeats,
        "attention_processors": processors,
        "peak_memory": "torch.cuda.max_memory_allocated" if is_cuda(device) else "peak RSS of the process",
        "quality": QUALITY_CLAIM,
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__},  # fmt: skip
        "configs": configs(args.tiny),
        "machine": machine,
        "rows": [],
    }
    settings = plan(args.batches, args.steps, args.dpm_steps, args.authors_batch)
    rows = []
    for k, s in enumerate(settings):
        rows.append(time_setting(pipe, s, resolution, args.repeats, device))
        r = rows[-1]
        print(f"  {s.name:<16} {s.scheduler:<14} steps {s.steps:>3} batch {s.batch:>3}: "
              + (f"{r['images_per_s']:.3f} images/s" if r["error"] is None else r["error"]), flush=True)  # fmt: skip
        payload |= {"rows": with_ratios(rows), "complete": k == len(settings) - 1}
        write_json(out, payload)  # so a run cut short keeps what it measured
    print()
    table(payload["rows"], [("name", "setting"), ("scheduler_class", "scheduler"), "steps", "batch",
                            ("images_per_s", "images/s"), ("peak_memory_gib", "peak mem GiB"),
                            ("ratio_vs_authors", "vs authors"), ("reference", "compared with")])  # fmt: skip
    print(f"wrote {out}\n{QUALITY_CLAIM}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

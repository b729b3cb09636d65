"""The `ffr generate` command line of a synthetic set, read back from its set.json.

Messages about a damaged set quote it: a resumed set regenerates its missing and damaged
images, so the command that made the set is the one that repairs it. A set whose set.json
records what no `ffr generate` flag sets (a world seed, SD guidance, no ratio: made through
the Python API) gets the general form instead.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.world import WorldConfig

if TYPE_CHECKING:
    from .synthetic_set import SetSpec


def general_command(folder: str | Path) -> str:
    """What to run when the exact command cannot be read back from set.json."""
    return f"ffr generate --out {shlex.quote(str(folder))} with the arguments that made the set (set.json records them)"


def generate_command(spec: SetSpec, folder: str | Path) -> str:
    """The `ffr generate` command that makes (and resumes) `spec` in `folder`, or the general form."""
    flags = _flags(spec)
    if flags is None:
        return general_command(folder)
    command = shlex.join(["ffr", "generate", *flags, "--out", str(folder)])
    if not spec.dataset.startswith("shapes-"):  # the real images' folder is not part of the set
        command += f' --root "$FFR_DATA_ROOT/{spec.dataset}"'
    return command


def _default(cls: type, field: str):
    return cls.__dataclass_fields__[field].default


def _flags(spec: SetSpec) -> list[str] | None:
    if spec.ratio is None:
        return None
    recipe = spec.recipe
    flags = ["--dataset", spec.dataset, "--recipe", recipe["name"]]
    if recipe.get("total") is not None:
        flags += ["--total", str(recipe["total"])]
    if recipe["name"] == "scaled":
        flags += ["--scale", str(recipe["scale"])]
    flags += [
        "--ratio", str(spec.ratio), "--generator", spec.generator, "--seed", str(spec.seed),
        "--prompts", spec.prompts, "--corruption-severity", str(spec.corruption_severity), "--size", str(spec.size),
    ]  # fmt: skip
    settings = spec.settings
    if spec.generator == "procedural":
        from .procedural import ProceduralGenerator

        world = WorldConfig(layout=spec.dataset.removeprefix("shapes-"), size=spec.size)  # the command's world
        if settings.get("world") != json.loads(json.dumps(asdict(world))):
            return None
        if settings.get("prior_majority") != _default(ProceduralGenerator, "prior_majority"):
            return None
        return flags + ["--fingerprint", str(settings["fingerprint"]), "--fidelity", str(settings["fidelity"])]
    if spec.generator == "sd":
        from .stable_diffusion import SDConfig

        if any(settings.get(k) != _default(SDConfig, k) for k in ("guidance", "blank_std", "max_attempts")):
            return None
        flags += ["--model", settings["model"], "--steps", str(settings["steps"]),
                  "--resolution", str(settings["resolution"])]  # fmt: skip
        return flags + (["--scheduler", settings["scheduler"]] if settings.get("scheduler") else [])
    if spec.generator == "diffusion":
        from .diffusion import DiffusionGenerator

        if settings.get("guidance") != _default(DiffusionGenerator, "guidance"):
            return None
        return flags + ["--model", settings["model"], "--steps", str(settings["steps"]),
                        "--batch-size", str(settings["batch"])]  # fmt: skip
    return None

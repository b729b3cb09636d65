"""Generation: prompts, recipes, the generators (procedural world, Stable Diffusion, small
diffusion model), corruptions, and the on-disk synthetic set with its manifest.

Stable Diffusion (diffusers, transformers) is imported only when a source of it is built.
"""

from .generate import generate_dataset_set, generate_in_memory, generate_set, make_spec, plan, real_split
from .procedural import ProceduralGenerator
from .prompts import PROMPT_SETS, load_prompts, make_prompts
from .recipes import RECIPES, Recipe, recipe_counts_table, synthetic_counts
from .sources import SOURCES, ProceduralSource, make_source
from .synthetic_set import SetMismatchError, SetSpec, load_synthetic_set, read_manifest

__all__ = [
    "PROMPT_SETS",
    "RECIPES",
    "SOURCES",
    "ProceduralGenerator",
    "ProceduralSource",
    "Recipe",
    "SetMismatchError",
    "SetSpec",
    "generate_dataset_set",
    "generate_in_memory",
    "generate_set",
    "load_prompts",
    "load_synthetic_set",
    "make_prompts",
    "make_source",
    "make_spec",
    "plan",
    "read_manifest",
    "real_split",
    "recipe_counts_table",
    "synthetic_counts",
]
